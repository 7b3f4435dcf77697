using Celeriac.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Celeriac.Beat;

/// <summary>
/// Celery's <c>celery beat</c>: sends each periodic entry's task when it falls due. Any number of beats may run on one
/// store: the one that holds the store's lease sends, the others stand by and take over within the lease time when it
/// dies; each run is recorded in the store in the same atomic step that decides it is sent, so no run is sent twice.
/// Entries come from code, from configuration (<see cref="CeleriacOptions.BeatSchedule"/>) and from the store, which
/// may be edited while beat runs (seen within <see cref="CeleriacOptions.BeatMaxInterval"/>).
/// </summary>
public sealed class CeleriacBeat
{
    /// <summary>At most this many missed runs are sent at once by <see cref="BeatCatchUp.RunAll"/>.</summary>
    public const int MaxCatchUpRuns = 1_000;

    // Past this many missed occurrences the search for the latest one stops (an every-second entry down for a day).
    private const int MaxOccurrenceScan = 200_000;

    private readonly CeleriacApp _app;
    private readonly IReadOnlyList<BeatEntry> _entries;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly HashSet<string> _reported = new(StringComparer.Ordinal);
    private IBeatStore? _store;
    private bool _leader;

    /// <summary>
    /// A beat for <paramref name="app"/> that sends the app's entries (<c>app.Beat</c>, then <paramref name="entries"/>,
    /// then <see cref="CeleriacOptions.BeatSchedule"/>) and those of <paramref name="store"/> (by default the app's, see
    /// <see cref="CeleriacOptions.BeatScheduleUrl"/>).
    /// </summary>
    public CeleriacBeat(CeleriacApp app, IEnumerable<BeatEntry>? entries = null, IBeatStore? store = null)
    {
        ArgumentNullException.ThrowIfNull(app);
        _app = app;
        _store = store;
        _logger = app.LoggerFactory.CreateLogger("Celeriac.Beat");
        _time = app.Options.TimeProvider;
        _entries = [.. BeatScheduleBuilder.For(app).Entries, .. entries ?? []];
        Holder = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";
    }

    /// <summary>This beat's name in the lease.</summary>
    public string Holder { get; }

    /// <summary>Whether this beat holds the lease now (it is the one that sends).</summary>
    public bool IsLeader => Volatile.Read(ref _leader);

    /// <summary>Raised after each run is sent: the entry, when it was due, and the task id.</summary>
    public event EventHandler<BeatRunEventArgs>? Sent;

    /// <summary>
    /// Runs until <paramref name="stop"/>: adds the code and configuration entries to the store (keeping the state of
    /// those it has), then holds or waits for the lease and sends what falls due. A warm stop releases the lease.
    /// </summary>
    public async Task RunAsync(CancellationToken stop)
    {
        IBeatStore store = _store ??= BeatStores.Open(_app);
        CeleriacOptions o = _app.Options;
        Log.BeatStarting(_logger, Holder, UrlText.Mask(o.BeatScheduleUrl ?? BeatStores.DefaultUrl(_app)), o.BeatMaxInterval.TotalSeconds, o.BeatLeaseTime.TotalSeconds);
        TimeSpan backoff = TimeSpan.FromSeconds(1);
        bool synced = false;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    if (!synced)
                    {
                        await SyncEntriesAsync(store, stop).ConfigureAwait(false);
                        synced = true;
                    }

                    TimeSpan wait = await TickAsync(store, stop).ConfigureAwait(false);
                    backoff = TimeSpan.FromSeconds(1);
                    await DelayAsync(wait, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // A store that went away: nothing is decided without it; try again.
                    Log.BeatStoreError(_logger, UrlText.Mask(o.BeatScheduleUrl ?? BeatStores.DefaultUrl(_app)), ex.Message, backoff.TotalSeconds);
                    Volatile.Write(ref _leader, false);
                    await DelayAsync(backoff, stop).ConfigureAwait(false);
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Stopping.
        }
        finally
        {
            if (IsLeader)
            {
                try
                {
                    await store.ReleaseLeaseAsync(Holder, CancellationToken.None).ConfigureAwait(false);
                }
#pragma warning disable CA1031 // The lease expires by itself; a failed release only delays the next holder.
                catch (Exception)
#pragma warning restore CA1031
                {
                }

                Volatile.Write(ref _leader, false);
            }

            Log.BeatStopped(_logger, Holder);
        }
    }

    /// <summary>Every entry the app defines: those of code, then those of configuration (a bad one is logged and left out).</summary>
    public IReadOnlyList<BeatEntry> DefinedEntries()
    {
        var all = new List<BeatEntry>(_entries);
        foreach ((string name, System.Text.Json.JsonElement definition) in _app.Options.BeatSchedule)
        {
            try
            {
                all.Add(BeatEntry.FromJson(name, definition));
            }
            catch (FormatException ex)
            {
                ReportOnce(ex.Message);
            }
        }

        return all;
    }

    private async Task SyncEntriesAsync(IBeatStore store, CancellationToken ct)
    {
        DateTimeOffset now = _time.GetUtcNow();
        foreach (BeatEntry entry in DefinedEntries())
        {
            // A new entry's first run is its first time after now; an entry the store has keeps its own last run.
            await store.SaveAsync(entry with { LastRunAt = entry.LastRunAt ?? now }, ct).ConfigureAwait(false);
        }
    }

    /// <summary>One look: hold the lease, send what is due; returns how long to sleep.</summary>
    private async Task<TimeSpan> TickAsync(IBeatStore store, CancellationToken ct)
    {
        CeleriacOptions o = _app.Options;
        bool leader = await store.TryHoldLeaseAsync(Holder, o.BeatLeaseTime, ct).ConfigureAwait(false);
        if (leader != IsLeader)
        {
            Volatile.Write(ref _leader, leader);
            if (leader)
            {
                Log.BeatLeader(_logger, Holder);
            }
            else
            {
                Log.BeatStandby(_logger, Holder);
            }
        }

        // A standby looks often enough to take over soon after the holder's lease runs out.
        TimeSpan renewEvery = o.BeatLeaseTime / 3;
        if (!leader)
        {
            return Min(renewEvery, o.BeatMaxInterval);
        }

        DateTimeOffset now = _time.GetUtcNow();
        DateTimeOffset wake = now + Min(o.BeatMaxInterval, renewEvery);
        foreach (BeatEntry entry in await store.LoadAsync(ct).ConfigureAwait(false))
        {
            if (!entry.Enabled)
            {
                continue;
            }

            try
            {
                (DateTimeOffset? next, bool lost) = await RunDueAsync(store, entry, now, ct).ConfigureAwait(false);
                if (lost)
                {
                    return TimeSpan.Zero; // the lease or the entry moved on: look again at once
                }

                if (next is { } n && n < wake)
                {
                    wake = n;
                }
            }
            catch (FormatException ex)
            {
                ReportOnce($"Beat entry '{entry.Name}': {ex.Message}");
            }
        }

        return wake - _time.GetUtcNow();
    }

    /// <summary>Sends an entry's due runs per its catch-up policy; returns its next time, or that the record was refused.</summary>
    private async Task<(DateTimeOffset? Next, bool Lost)> RunDueAsync(IBeatStore store, BeatEntry entry, DateTimeOffset now, CancellationToken ct)
    {
        TimeZoneInfo zone = entry.ZoneOr(_app.Options.Timezone);
        if (entry.LastRunAt is not { } last)
        {
            // Added to the store by hand without a last run: it starts now, as a new entry does.
            bool started = await store.TryRecordRunAsync(Holder, entry.Name, null, now, ct).ConfigureAwait(false);
            return (started ? entry.Schedule.NextAfter(now, zone) : null, !started);
        }

        DateTimeOffset? first = entry.Schedule.NextAfter(last, zone);
        if (first is not { } due || due > now)
        {
            return (first, false);
        }

        // Every occurrence up to now; only the latest ones are kept.
        var occurrences = new Queue<DateTimeOffset>();
        occurrences.Enqueue(due);
        int count = 1;
        DateTimeOffset latest = due;
        while (count < MaxOccurrenceScan && entry.Schedule.NextAfter(latest, zone) is { } n && n <= now)
        {
            latest = n;
            count++;
            occurrences.Enqueue(n);
            if (occurrences.Count > MaxCatchUpRuns)
            {
                occurrences.Dequeue();
            }
        }

        bool onTime = now - latest <= _app.Options.BeatMisfireGrace;
        DateTimeOffset[] send = entry.CatchUp switch
        {
            BeatCatchUp.RunAll => [.. occurrences],
            BeatCatchUp.RunOnce => [latest],
            _ => onTime ? [latest] : [],
        };
        if (count > send.Length)
        {
            Log.BeatMissed(_logger, entry.Name, count - send.Length, entry.CatchUp.ToString());
        }

        if (!await store.TryRecordRunAsync(Holder, entry.Name, last, latest, ct).ConfigureAwait(false))
        {
            return (null, true);
        }

        foreach (DateTimeOffset runAt in send)
        {
            await SendAsync(entry, runAt, ct).ConfigureAwait(false);
        }

        return (entry.Schedule.NextAfter(latest, zone), false);
    }

    private async Task SendAsync(BeatEntry entry, DateTimeOffset runAt, CancellationToken ct)
    {
        var headers = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (KeyValuePair<string, string> kv in entry.Headers ?? new Dictionary<string, string>())
        {
            headers[kv.Key] = kv.Value;
        }

        // As Celery 5.6's beat: the entry's name travels with each run.
        headers["periodic_task_name"] = entry.Name;
        var options = new ApplyOptions
        {
            Queue = entry.Queue ?? entry.RoutingKey,
            Priority = entry.Priority,
            Expires = entry.Expires is { } expires ? runAt + expires : null,
            Headers = headers,
        };
        List<object?> args = [.. entry.Args.EnumerateArray().Select(a => (object?)a.Clone())];
        Dictionary<string, object?> kwargs = entry.Kwargs.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone(), StringComparer.Ordinal);
        Log.BeatSending(_logger, entry.Name, entry.Task, Protocol.CeleryJson.FormatIso(runAt));
        try
        {
            AsyncResult sent = await _app.SendTaskAsync(entry.Task, args, kwargs, options, ct).ConfigureAwait(false);
            Sent?.Invoke(this, new BeatRunEventArgs(entry.Name, entry.Task, runAt, sent.Id));
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // Recorded first so that no other beat sends it too: a run the broker refused is lost, said once here.
            Log.BeatSendFailed(_logger, entry.Name, Protocol.CeleryJson.FormatIso(runAt), ex.Message);
        }
    }

    private void ReportOnce(string message)
    {
        lock (_reported)
        {
            if (!_reported.Add(message))
            {
                return;
            }
        }

        Log.BeatBadEntry(_logger, message);
    }

    private async Task DelayAsync(TimeSpan wait, CancellationToken stop)
    {
        if (wait > TimeSpan.Zero)
        {
            // Rounded up: a timer that fires early would only make beat look again before anything is due.
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(wait.TotalMilliseconds)), _time, stop).ConfigureAwait(false);
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}

/// <summary>A run beat sent.</summary>
public sealed class BeatRunEventArgs(string entry, string task, DateTimeOffset dueAt, string taskId) : EventArgs
{
    /// <summary>The entry's name.</summary>
    public string Entry { get; } = entry;

    /// <summary>The task.</summary>
    public string Task { get; } = task;

    /// <summary>When the run was due.</summary>
    public DateTimeOffset DueAt { get; } = dueAt;

    /// <summary>The id of the message sent.</summary>
    public string TaskId { get; } = taskId;
}

/// <summary>Opens the beat store an app is configured with.</summary>
public static class BeatStores
{
    /// <summary>
    /// The store of <paramref name="url"/> (else <see cref="CeleriacOptions.BeatScheduleUrl"/>, else
    /// <see cref="DefaultUrl"/>): <c>memory://</c>, or a provider's (<c>sqlite://</c>, <c>redis://</c>).
    /// </summary>
    /// <exception cref="CeleriacConfigurationException">No store for the URL's scheme.</exception>
    public static IBeatStore Open(CeleriacApp app, string? url = null)
    {
        ArgumentNullException.ThrowIfNull(app);
        url ??= app.Options.BeatScheduleUrl ?? DefaultUrl(app);
        if (!Uri.TryCreate(url, UriKind.Absolute, out Uri? uri))
        {
            throw new CeleriacConfigurationException($"The beat schedule URL '{UrlText.Mask(url)}' is not a URL (sqlite:///path, redis://host:port/db, memory://).");
        }

        if (uri.Scheme == "memory")
        {
            return new MemoryBeatStore(app.Options.TimeProvider);
        }

        return app.Providers.CreateExtension<IBeatStore>(uri, app)
            ?? throw new CeleriacConfigurationException($"No beat store for '{uri.Scheme}://' in '{UrlText.Mask(url)}' (known: sqlite://, redis://, memory://).");
    }

    /// <summary>
    /// Where beat keeps its schedule when the app names no store: next to a SQLite broker's file, in a Redis broker's
    /// database, else <c>celeriac-beat.db</c> in the working directory.
    /// </summary>
    public static string DefaultUrl(CeleriacApp app)
    {
        ArgumentNullException.ThrowIfNull(app);
        string broker = app.Options.BrokerUrl;
        string scheme = broker.Split(':')[0].ToUpperInvariant();
        if (scheme is "REDIS" or "REDISS")
        {
            return broker;
        }

        if (scheme == "SQLITE" && Uri.TryCreate(broker, UriKind.Absolute, out Uri? sqlite))
        {
            string? directory = Path.GetDirectoryName(UrlText.FilePath(sqlite));
            string file = string.IsNullOrEmpty(directory) ? "celeriac-beat.db" : Path.Join(directory, "celeriac-beat.db");
            return Path.IsPathRooted(file) ? "sqlite:///" + file : "sqlite:///" + file.Replace('\\', '/');
        }

        return "sqlite:///celeriac-beat.db";
    }
}
