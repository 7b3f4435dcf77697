using System.Text.Json.Nodes;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Celeriac.Dashboard.Ingestion;

/// <summary>One queue's length as the broker told it.</summary>
/// <param name="Name">The queue.</param>
/// <param name="Messages">Messages waiting (the transport's queue length), or null when the broker could not say.</param>
/// <param name="Ready">Messages ready for a consumer, where the broker tells them apart.</param>
/// <param name="Unacked">Messages delivered and not acknowledged, where the broker tells them.</param>
/// <param name="Consumers">Online workers consuming it (from their <c>active_queues</c>).</param>
public sealed record QueueLength(string Name, long? Messages, long? Ready, long? Unacked, int? Consumers);

/// <summary>A queue's length at a time, for the charts.</summary>
/// <param name="T">When, in unix seconds.</param>
/// <param name="Name">The queue.</param>
/// <param name="Messages">Its length.</param>
public sealed record QueueSample(double T, string Name, long Messages);

/// <summary>
/// The queues the workers consume (their <c>active_queues</c>) and the app's default queue, with the broker's real
/// lengths; sampled every 15 s for the charts (the last hour kept, at most 100 queues).
/// </summary>
public sealed class QueueLengths(CeleriacApp app, DashboardIngestor ingestor, WorkerInspections inspections, TimeProvider time, ILogger<QueueLengths> logger)
    : BackgroundService
{
    private const int MaxQueues = 100;
    private readonly Lock _gate = new();
    private readonly Queue<QueueSample> _history = new();

    /// <summary>The samples kept, oldest first.</summary>
    public IReadOnlyList<QueueSample> History
    {
        get
        {
            lock (_gate)
            {
                return [.. _history];
            }
        }
    }

    /// <summary>The queue names: every queue an inspected or known worker consumes, and the default queue.</summary>
    public IReadOnlyList<string> Names()
    {
        var names = new SortedSet<string>(StringComparer.Ordinal) { app.Options.DefaultQueue };
        foreach (WorkerInspection i in inspections.Workers.Values)
        {
            names.UnionWith(i.QueueNames ?? []);
        }

        foreach (var w in ingestor.Workers)
        {
            names.UnionWith(w.Queues);
        }

        return [.. names.Take(MaxQueues)];
    }

    /// <summary>Every queue's length now.</summary>
    public async Task<IReadOnlyList<QueueLength>> CurrentAsync(CancellationToken ct = default)
    {
        double now = time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;
        var online = ingestor.Workers.Where(w => w.IsOnline(now)).ToList();
        var lengths = new List<QueueLength>();
        foreach (string name in Names())
        {
            long? messages = null;
            try
            {
                messages = await app.Transport.GetQueueLengthAsync(name, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                logger.LogDebug(ex, "Could not read the length of queue {Queue}", name);
            }

            // Celeriac's transports count the messages waiting; none yet tells unacked ones apart (null: unknown).
            lengths.Add(new QueueLength(name, messages, messages, null, online.Count(w => w.Queues.Contains(name))));
        }

        return lengths;
    }

    /// <summary>The contract's JSON for <c>api/dashboard/queues</c>.</summary>
    public static JsonArray ToJson(IReadOnlyList<QueueLength> queues) => new([.. queues.Select(q => (JsonNode)new JsonObject
    {
        ["name"] = q.Name, ["messages"] = q.Messages ?? 0, ["ready"] = q.Ready, ["unacked"] = q.Unacked, ["consumers"] = q.Consumers,
    })]);

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                IReadOnlyList<QueueLength> now = await CurrentAsync(stoppingToken).ConfigureAwait(false);
                double t = time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;
                lock (_gate)
                {
                    foreach (QueueLength q in now)
                    {
                        _history.Enqueue(new QueueSample(t, q.Name, q.Messages ?? 0));
                    }

                    while (_history.Count > 0 && (_history.Peek().T < t - 3600 || _history.Count > MaxQueues * 240))
                    {
                        _history.Dequeue();
                    }
                }

                await Task.Delay(TimeSpan.FromSeconds(15), time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
        }
    }
}
