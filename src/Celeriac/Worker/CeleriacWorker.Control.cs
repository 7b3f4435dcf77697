using Celeriac.Diagnostics;
using Celeriac.Transport;

namespace Celeriac.Worker;

/// <summary>Revokes, the state file that keeps them, and the remote-control commands the worker answers.</summary>
public sealed partial class CeleriacWorker
{
    /// <summary>
    /// Revokes tasks on this worker, as Celery's <c>revoke</c> command: they are skipped when they arrive (and stored
    /// as REVOKED, and kept in the state file when there is one); with <paramref name="terminate"/>, those running now
    /// are cancelled and end REVOKED ("terminated").
    /// Returns Celery's reply text.
    /// </summary>
    public string Revoke(IReadOnlyList<string> taskIds, bool terminate = false)
    {
        ArgumentNullException.ThrowIfNull(taskIds);
        _revoked.Add(taskIds);
        SaveStateDb();
        if (terminate)
        {
            var terminated = new List<string>();
            foreach (string id in taskIds.Distinct(StringComparer.Ordinal))
            {
                if (_registry.TryGetActive(id, out WorkerRequest? request) && request!.Running is { } running && running.Terminate())
                {
                    terminated.Add(id);
                }
            }

            return terminated.Count == 0 ? "terminate: tasks unknown" : "terminate: " + string.Join(", ", terminated);
        }

        string list = string.Join(", ", taskIds);
        Log.TasksRevoked(_logger, list);
        return $"tasks {list} flagged as revoked";
    }

    /// <summary>Reads the revoked ids a previous run kept in the state file; a bad file is logged, not fatal.</summary>
    private void LoadStateDb()
    {
        if (_app.Options.StateDb is not { } path || !File.Exists(path))
        {
            return;
        }

        try
        {
            int count = _revoked.Load(File.ReadAllBytes(path));
            Log.StateDbLoaded(_logger, path, count);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            Log.StateDbUnreadable(_logger, path, e);
        }
    }

    /// <summary>Writes the revoked ids to the state file (a new file renamed over the old, so a crash leaves one whole file).</summary>
    private void SaveStateDb()
    {
        if (_app.Options.StateDb is not { } path)
        {
            return;
        }

        // Revokes are rare and the file small: written at once, one writer at a time.
        lock (_stateDbGate)
        {
            try
            {
                string temporary = path + ".tmp";
                File.WriteAllBytes(temporary, _revoked.Save());
                File.Move(temporary, path, overwrite: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Log.StateDbUnwritable(_logger, path, e);
            }
        }
    }

    private async ValueTask OnControlAsync(ITransport transport, TransportMessage m)
    {
        if (!_app.TryOpenControl(m, out TransportMessage? opened, out string? refusal))
        {
            Log.ControlMessageRefused(_logger, "request", refusal!);
            return;
        }

        m = opened!;
        if (!Control.Mailbox.TryParse(m, out Control.ControlRequest? request))
        {
            Log.BadControlMessage(_logger);
            return;
        }

        if (request!.Destination is { } destination && !destination.Contains(_node, StringComparer.Ordinal)
            || request.Expires is { } expires && expires < _app.Time.GetUtcNow())
        {
            return;
        }

        if (m.Headers.TryGetValue("clock", out object? clock) && clock is long c)
        {
            _app.Clock.Adjust(c);
        }

        object? reply;
        try
        {
            reply = await DispatchAsync(request, new ControlArguments(request.Method, request.Arguments)).ConfigureAwait(false);
        }
        catch (ControlCommandException ex)
        {
            Log.ControlCommandFailed(_logger, request.Method, ex.Repr);
            reply = new Dictionary<string, object?>(StringComparer.Ordinal) { ["error"] = ex.Repr };
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            string repr = $"{ex.GetType().Name}({Protocol.PythonRepr.OfString(ex.Message)})";
            Log.ControlCommandFailed(_logger, request.Method, repr);
            reply = new Dictionary<string, object?>(StringComparer.Ordinal) { ["error"] = repr };
        }

        // Celery's shutdown raises SystemExit in the handler, so its caller gets no reply.
        if (request.ReplyExchange is not null && request.ReplyRoutingKey is not null && request.Method != "shutdown")
        {
            await transport.PublishAsync(request.ReplyExchange, request.ReplyRoutingKey, [_app.SignIfOn(Control.Mailbox.Reply(request, _node, reply, _app.Clock.Forward()))]).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Before a listing inspect: gives the consumer up to 250 ms to take what the broker already holds (see
    /// <see cref="ICatchUpTransport"/>), so that a task sent just before the inspect is listed. Real time, as it waits
    /// for the broker.
    /// </summary>
    private async ValueTask CatchUpAsync()
    {
        if (_app.Transport is not ICatchUpTransport transport)
        {
            return;
        }

        using var bound = new CancellationTokenSource(TimeSpan.FromMilliseconds(250));
        try
        {
            await transport.CatchUpAsync(bound.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (bound.IsCancellationRequested)
        {
            // Answer with what the worker holds.
        }
    }

    /// <summary>Celery's <c>Panel</c>: each command's reply, in Celery's shape (see <see cref="Control.ControlCommands"/>).</summary>
    private async ValueTask<object?> DispatchAsync(Control.ControlRequest request, ControlArguments a)
    {
        string method = Control.ControlCommands.TryGet(request.Method, out Control.ControlCommandInfo? info) ? info!.Name : request.Method;
        switch (method)
        {
            case "ping":
                return Ok("pong");
            case "active":
                await CatchUpAsync().ConfigureAwait(false);
                return RequestInfos(RequestState.Active, a.Flag("safe"));
            case "reserved":
                await CatchUpAsync().ConfigureAwait(false);
                return RequestInfos(RequestState.Reserved, safe: false);
            case "scheduled":
                await CatchUpAsync().ConfigureAwait(false);
                return ScheduledInfos();
            case "revoked":
                return _revoked.Snapshot().Select(kv => (object?)kv.Key).ToList();
            case "registered":
                return RegisteredInfos(a.List("taskinfoitems"), a.Flag("builtins"));
            case "stats":
                return Stats();
            case "active_queues":
                return ActiveQueues();
            case "conf":
                return Conf(a.Flag("with_defaults"));
            case "query_task":
                await CatchUpAsync().ConfigureAwait(false);
                return QueryTasks(a.List("ids"));
            case "report":
                return Ok(Report());
            case "clock":
                return new Dictionary<string, object?>(StringComparer.Ordinal) { ["clock"] = _app.Clock.Value };
            case "hello":
                return Hello(a.RequiredText("from_node"), a.Get("revoked"));
            case "revoke":
                return Ok(Revoke(a.List("task_id"), a.Flag("terminate")));
            case "terminate":
                a.RequiredText("signal");
                return Ok(Revoke(a.List("task_id"), terminate: true));
            case "rate_limit":
                a.RequiredText("task_name");
                return OnRateLimitCommand(request);
            case "time_limit":
                return OnTimeLimitCommand(request);
            case "shutdown":
                Log.RemoteShutdown(_logger, a.Text("msg") ?? "Got shutdown from remote");
                _requestStop?.Invoke();
                return null;
            case "pool_grow" or "pool_shrink":
                return ResizeCommand(method, (int)Math.Clamp(a.Integer("n") ?? 1, 0, 10_000));
            case "pool_restart":
                // .NET cannot reload a task's code in place; Celery refuses it too unless worker_pool_restarts is set.
                throw new ControlCommandException("ValueError", "Pool restarts not enabled");
            case "autoscale":
                return AutoscaleCommand(a.Integer("max"), a.Integer("min"));
            case "add_consumer":
                return Ok(await AddConsumerAsync(a.RequiredText("queue"), a.Text("exchange"), a.Text("exchange_type"), a.Text("routing_key")).ConfigureAwait(false));
            case "cancel_consumer":
                return Ok(CancelConsumer(a.RequiredText("queue")));
            case "enable_events":
                return Ok(SwitchTaskEvents(on: true));
            case "disable_events":
                return Ok(SwitchTaskEvents(on: false));
            case "heartbeat":
                await OnHeartbeatCommandAsync().ConfigureAwait(false);
                return null;
            case "election":
                // Celery answers through gossip, which Celeriac's workers take no part in: the reply is None, as Celery's
                // without gossip.
                a.RequiredText("id");
                a.RequiredText("topic");
                return null;
            default:
                Log.UnknownControlCommand(_logger, request.Method);
                throw new ControlCommandException("KeyError", request.Method);
        }
    }

    private static Dictionary<string, object?> Ok(string value) => new(StringComparer.Ordinal) { ["ok"] = value };

    private static Dictionary<string, object?> Error(string value) => new(StringComparer.Ordinal) { ["error"] = value };

    private Dictionary<string, object?> ResizeCommand(string method, int n)
    {
        bool grow = method == "pool_grow";
        if (_autoscaler is not null)
        {
            return Error($"{method} is not supported with autoscale. Adjust autoscale range instead.");
        }

        if (grow)
        {
            GrowPool(n);
        }
        else
        {
            ShrinkPool(n);
        }

        return Ok(grow ? "pool will grow" : "pool will shrink");
    }

    private Dictionary<string, object?> AutoscaleCommand(long? max, long? min)
    {
        if (_autoscaler is null)
        {
            throw new ControlCommandException("ValueError", "Autoscale not enabled");
        }

        int newMax = (int)(max ?? _autoscaler.Max);
        int newMin = (int)(min ?? _autoscaler.Min);
        if (!SetAutoscale(newMax, newMin))
        {
            throw new ControlCommandException("ValueError", $"autoscale bounds max={newMax} min={newMin} are not valid");
        }

        return Ok($"autoscale now max={newMax} min={newMin}");
    }

    /// <summary>
    /// Mingle's <c>hello</c> from another worker: takes the ids it revoked, and answers with ours and our clock, so that
    /// a revoke made before a worker started holds on it too. A worker's own hello gets no answer.
    /// </summary>
    private Dictionary<string, object?>? Hello(string fromNode, System.Text.Json.JsonElement? revoked)
    {
        if (fromNode == _node)
        {
            return null;
        }

        Log.SyncWith(_logger, fromNode);
        if (revoked is { } r)
        {
            _revoked.Merge(RevokedEntries(r));
            SaveStateDb();
        }

        return new Dictionary<string, object?>(StringComparer.Ordinal) { ["revoked"] = RevokedForMingle(), ["clock"] = _app.Clock.Forward() };
    }

    /// <summary>
    /// Celery's mingle, before the worker consumes: a <c>hello</c> to the other workers (a second for replies), then their
    /// revoked ids and clocks are taken. As Celery's, only on Redis and AMQP; a failure is logged, never fatal.
    /// </summary>
    private async Task MingleAsync(CancellationToken ct)
    {
        string scheme = _app.Options.BrokerUrl.Split(':')[0];
        if (_app.Options.WithoutMingle || scheme is not ("redis" or "rediss" or "amqp" or "amqps" or "pyamqp"))
        {
            return;
        }

        try
        {
            var arguments = new Dictionary<string, object?>(StringComparer.Ordinal) { ["from_node"] = _node, ["revoked"] = RevokedForMingle() };
            Control.ReplyDictionary<System.Text.Json.JsonElement> replies = await Control.ControlClient.For(_app)
                .Inspect(new Control.ControlOptions { Timeout = Control.ControlClient.DefaultTimeout, KeepListening = false })
                .AskAsync("hello", arguments, ct).ConfigureAwait(false);
            var nodes = new List<string>();
            foreach ((string node, System.Text.Json.JsonElement reply) in replies)
            {
                if (node == _node || reply.ValueKind != System.Text.Json.JsonValueKind.Object)
                {
                    continue;
                }

                nodes.Add(node);
                if (reply.TryGetProperty("clock", out System.Text.Json.JsonElement clock) && clock.TryGetInt64(out long c))
                {
                    _app.Clock.Adjust(c);
                }
                else
                {
                    _app.Clock.Forward();
                }

                if (reply.TryGetProperty("revoked", out System.Text.Json.JsonElement revoked))
                {
                    _revoked.Merge(RevokedEntries(revoked));
                }
            }

            if (nodes.Count == 0)
            {
                Log.MingleAlone(_logger);
                return;
            }

            SaveStateDb();
            Log.MingleSynced(_logger, nodes.Count, string.Join(", ", nodes));
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            Log.MingleFailed(_logger, ex.Message);
        }
    }

    /// <summary>This worker's revoked ids as mingle exchanges them: Celery's <c>LimitedSet._data</c>, <c>{id: [timestamp, id]}</c>.</summary>
    private Dictionary<string, object?> RevokedForMingle()
    {
        var revoked = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (KeyValuePair<string, DateTimeOffset> kv in _revoked.Snapshot())
        {
            revoked[kv.Key] = new List<object?> { kv.Value.ToUnixTimeMilliseconds() / 1000.0, kv.Key };
        }

        return revoked;
    }

    /// <summary>Revoked ids as mingle sends them: Celery's <c>{id: [timestamp, id]}</c> or <c>{id: timestamp}</c>, or a list of ids.</summary>
    internal IEnumerable<(string Id, DateTimeOffset Added)> RevokedEntries(System.Text.Json.JsonElement revoked)
    {
        DateTimeOffset now = _app.Time.GetUtcNow();
        if (revoked.ValueKind == System.Text.Json.JsonValueKind.Array)
        {
            foreach (System.Text.Json.JsonElement id in revoked.EnumerateArray())
            {
                if (id.ValueKind == System.Text.Json.JsonValueKind.String)
                {
                    yield return (id.GetString()!, now);
                }
            }

            yield break;
        }

        if (revoked.ValueKind != System.Text.Json.JsonValueKind.Object)
        {
            yield break;
        }

        foreach (System.Text.Json.JsonProperty p in revoked.EnumerateObject())
        {
            System.Text.Json.JsonElement stamp = p.Value.ValueKind == System.Text.Json.JsonValueKind.Array && p.Value.GetArrayLength() > 0 ? p.Value[0] : p.Value;
            yield return (p.Name, stamp.ValueKind == System.Text.Json.JsonValueKind.Number ? DateTimeOffset.FromUnixTimeMilliseconds((long)(stamp.GetDouble() * 1000)) : now);
        }
    }
}
