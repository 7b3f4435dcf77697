using System.Text.Json;

namespace Celeriac.InteropTests;

/// <summary>What a Python Celery client observes of a Celeriac worker, whatever the broker: the checks both interop suites run.</summary>
internal static class CeleryToCeleriac
{
    /// <summary>
    /// A Python client sends a countdown task to the Celeriac worker <paramref name="node"/> on <paramref name="queue"/>
    /// and revokes it with <c>app.control.revoke(id, reply=True)</c> (a kombu pidbox broadcast) while the worker holds
    /// it: the worker's reply names it, the Python client's <c>get</c> raises TaskRevokedError with state REVOKED, and
    /// the worker logged the discard and never ran it. <paramref name="runPython"/> runs a snippet with arguments
    /// against the broker and returns its stdout. Returns the task id.
    /// </summary>
    public static async Task<string> RevokeOfHeldTaskAsync(Func<string, string[], Task<string>> runPython, string queue, string node, CapturedLog workerLog)
    {
        // The countdown keeps the task held in the Celeriac worker's timer until the revoke has been answered.
        string output = await runPython("""
            import sys, json
            from interop_tasks import add, app
            q, node = sys.argv[1], sys.argv[2]
            r = add.apply_async((1, 1), countdown=3, queue=q)
            out = {'id': r.id, 'replies': app.control.revoke(r.id, reply=True, timeout=5, limit=1, destination=[node])}
            try:
                out['value'] = r.get(timeout=30)
            except Exception as e:
                out['exc'] = [type(e).__name__, str(e)]
            out['state'] = r.state
            print(json.dumps(out))
            """, [queue, node]);

        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement root = doc.RootElement;
        string id = root.GetProperty("id").GetString()!;
        JsonElement reply = Assert.Single(root.GetProperty("replies").EnumerateArray().ToList());
        Assert.Equal($"tasks {id} flagged as revoked", reply.GetProperty(node).GetProperty("ok").GetString());

        // The held task ends REVOKED when its countdown ends, and never runs.
        Assert.False(root.TryGetProperty("value", out _), $"the revoked task ran: {output}");
        Assert.Equal(["TaskRevokedError", "revoked"], root.GetProperty("exc").EnumerateArray().Select(e => e.GetString()!));
        Assert.Equal("REVOKED", root.GetProperty("state").GetString());
        Assert.Contains($"Discarding revoked task: tasks.add[{id}]", workerLog.Text, StringComparison.Ordinal);
        Assert.DoesNotContain($"tasks.add[{id}] succeeded", workerLog.Text, StringComparison.Ordinal);
        return id;
    }
}
