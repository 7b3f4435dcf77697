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

        Dictionary<string, object?> reply;
        switch (request.Method)
        {
            case "revoke":
                reply = new(StringComparer.Ordinal) { ["ok"] = Revoke(Control.Mailbox.RevokedIds(request), Control.Mailbox.Terminates(request)) };
                break;
            case "ping":
                reply = new(StringComparer.Ordinal) { ["ok"] = "pong" };
                break;
            case "rate_limit":
                reply = OnRateLimitCommand(request);
                break;
            case "time_limit":
                reply = OnTimeLimitCommand(request);
                break;
            case "heartbeat":
                reply = await OnHeartbeatCommandAsync().ConfigureAwait(false);
                break;
            default:
                Log.UnknownControlCommand(_logger, request.Method);
                reply = new(StringComparer.Ordinal) { ["error"] = $"No such command: {request.Method}" };
                break;
        }

        if (request.ReplyExchange is not null && request.ReplyRoutingKey is not null)
        {
            await transport.PublishAsync(request.ReplyExchange, request.ReplyRoutingKey, [Control.Mailbox.Reply(request, _node, reply)]).ConfigureAwait(false);
        }
    }
}
