using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Text.Json;
using Celeriac.Protocol;
using Celeriac.Transport;

namespace Celeriac;

/// <summary>
/// Celery's <c>Task.retry</c> and <c>autoretry_for</c>: the checks against <c>max_retries</c>, the delay, and the
/// message that sends the task again, as a Celery worker builds it (<c>signature_from_request</c> + <c>apply_async</c>).
/// </summary>
internal static class TaskRetry
{
    /// <summary>
    /// Sends <paramref name="message"/> again with <c>retries</c> + 1 and returns the <see cref="RetryException"/> for the
    /// task to throw. Past the limit nothing is sent: <paramref name="reason"/> is thrown, or
    /// <see cref="MaxRetriesExceededException"/> when there is none.
    /// </summary>
    public static async ValueTask<RetryException> RetryAsync(
        CeleriacTask task, TaskMessage message, string deliveryQueue,
        Exception? reason, TimeSpan? countdown, DateTimeOffset? eta, int? maxRetries, string? queue, CancellationToken ct)
    {
        TaskHeaders h = message.Headers;
        if ((maxRetries ?? task.Options.MaxRetries) is { } max && h.Retries + 1 > max)
        {
            if (reason is not null)
            {
                ExceptionDispatchInfo.Throw(reason);
            }

            throw new MaxRetriesExceededException($"Can't retry {h.Task}[{h.Id}] args:{PythonRepr.OfTuple(message.Args)} kwargs:{PythonRepr.Of(message.Kwargs)}");
        }

        if (eta is null && countdown is null)
        {
            countdown = task.Options.DefaultRetryDelay;
        }

        CeleriacApp app = task.App;
        DateTimeOffset now = app.Time.GetUtcNow();

        // As Celery's as_task_v2: a countdown wins over an eta, and a zero countdown means now.
        DateTimeOffset? due = countdown is { } c && c > TimeSpan.Zero ? now + c : eta;
        TransportMessage retry = app.SignIfOn(Build(message, app.Origin, due, now));
        ITransport transport = app.Transport;
        string destination = queue is { Length: > 0 } ? queue : message.Transport.RoutingKey is { Length: > 0 } key ? key : deliveryQueue;
        System.Diagnostics.Activity? span = PublishTelemetry.Start(retry, destination, app.MessagingSystem);
        try
        {
            if (queue is { Length: > 0 })
            {
                await app.EnsureQueueAsync(transport, queue, ct).ConfigureAwait(false);
                await transport.PublishAsync("", queue, [retry], ct).ConfigureAwait(false);
            }
            else
            {
                // Where it came from (Celery's signature_from_request): the same exchange and routing key, or the
                // queue it was taken from when the transport does not say.
                string exchange = message.Transport.Exchange;
                string routingKey = message.Transport.RoutingKey;
                await transport.PublishAsync(routingKey.Length == 0 ? "" : exchange, routingKey.Length == 0 ? deliveryQueue : routingKey, [retry], ct).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            PublishTelemetry.Stop(span, destination, app.MessagingSystem, ex);
            throw;
        }

        PublishTelemetry.Stop(span, destination, app.MessagingSystem, null);

        return new RetryException(reason, countdown, eta, maxRetries) { Sent = true };
    }

    /// <summary>
    /// The retry of a task message: the same id, arguments, callbacks, group, limits, reply address and priority;
    /// <c>retries</c> + 1, the new <c>eta</c>, this process as <c>origin</c>, and the retried task as its own parent
    /// (Celery sends the retry from inside the task, so the task is the sender).
    /// </summary>
    public static TransportMessage Build(TaskMessage message, string origin, DateTimeOffset? eta, DateTimeOffset now)
    {
        TaskHeaders h = message.Headers;
        var headers = new TaskHeaders
        {
            Task = h.Task,
            Id = h.Id,
            Shadow = h.Shadow,
            Eta = eta,
            Expires = h.Expires,
            Group = h.Group,
            GroupIndex = h.GroupIndex,
            Retries = h.Retries + 1,
            HardTimeLimit = h.HardTimeLimit,
            SoftTimeLimit = h.SoftTimeLimit,
            RootId = h.RootId ?? h.Id,
            ParentId = h.ParentId ?? h.Id,
            Origin = origin,
            IgnoreResult = h.IgnoreResult,
        };
        foreach (KeyValuePair<string, object?> kv in h.Extra)
        {
            headers.Extra[kv.Key] = kv.Value;
        }

        object?[] args = [.. message.Args.EnumerateArray().Select(static a => (object?)a)];
        Dictionary<string, object?> kwargs = message.Kwargs.EnumerateObject().ToDictionary(static p => p.Name, static p => (object?)p.Value, StringComparer.Ordinal);
        string? expiration = h.Expires is { } expires
            ? ((long)Math.Max(0, (expires - now).TotalMilliseconds)).ToString(CultureInfo.InvariantCulture)
            : null;
        return TaskMessage.Encode(headers, args, kwargs, EmbedOf(message.Embed), message.Transport.ReplyTo, message.Transport.Priority, expiration);
    }

    /// <summary>
    /// The <c>children</c> of a RETRY document: the retry itself, as Celery records the result of the
    /// <c>apply_async</c> made inside the task (<c>[[[id, null], null]]</c>).
    /// </summary>
    public static byte[] Children(string id) => JsonBuffers.Write(id, static (w, id) =>
    {
        w.WriteStartArray();
        TaskResultMeta.WriteResultTuple(w, id);
        w.WriteEndArray();
    });

    /// <summary>Whether an exception the task threw retries it by itself (<c>autoretry_for</c>, subtypes too).</summary>
    public static bool IsAutoRetried(TaskOptions options, Exception exception) =>
        options.AutoRetryFor.Count > 0 &&
        exception is not (RetryException or TaskArgumentException) && // arguments that do not fit never will
        options.AutoRetryFor.Any(t => t.IsInstanceOfType(exception));

    /// <summary>
    /// The countdown of an automatic retry: Celery's <c>get_exponential_backoff_interval</c> when
    /// <see cref="TaskOptions.RetryBackoff"/> is set (with TimeSpans, so below a second too), else
    /// <see langword="null"/> for the task's <see cref="TaskOptions.DefaultRetryDelay"/>.
    /// </summary>
    public static TimeSpan? AutoRetryCountdown(TaskOptions options, int retries, Random random) =>
        options.RetryBackoff is { } factor ? Backoff(factor, retries, options.RetryBackoffMax, options.RetryJitter, random) : null;

    /// <summary>
    /// min(<paramref name="maximum"/>, <paramref name="factor"/> × 2^<paramref name="retries"/>); with full jitter a
    /// random delay from 0 to that, both ends included.
    /// </summary>
    public static TimeSpan Backoff(TimeSpan factor, int retries, TimeSpan maximum, bool fullJitter, Random random)
    {
        double exponential = factor.Ticks * Math.Pow(2, Math.Max(0, retries));
        long ticks = (long)Math.Max(0, Math.Min(maximum.Ticks, exponential));
#pragma warning disable CA5394 // jitter spreads retries out; it guards nothing
        return TimeSpan.FromTicks(fullJitter ? random.NextInt64(ticks + 1) : ticks);
#pragma warning restore CA5394
    }

    private static TaskEmbed? EmbedOf(JsonElement embed)
    {
        if (embed.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        JsonElement? Get(string name) => embed.TryGetProperty(name, out JsonElement e) && e.ValueKind != JsonValueKind.Null ? e : null;
        return new TaskEmbed(Get("callbacks"), Get("errbacks"), Get("chain"), Get("chord"));
    }
}
