using System.Collections.Concurrent;
using System.Text.Json;
using Celeriac.Worker;

namespace Celeriac.InteropTests;

/// <summary>
/// An in-process Celeriac worker on an app whose <c>tasks.echo</c> records each value it runs, in order (to check
/// the order a broker served the tasks in). Disposing stops it (warm shutdown) and waits up to 15 s.
/// </summary>
internal sealed class RecordingEchoWorker : IAsyncDisposable
{
    private readonly ConcurrentQueue<string> _order = new();
    private readonly CancellationTokenSource _stop = new();
    private Task _run = Task.CompletedTask;

    /// <summary>The values echoed so far, in the order they ran.</summary>
    public IReadOnlyCollection<string> Order => _order;

    /// <summary>Registers the recording <c>tasks.echo</c> on <paramref name="app"/> and starts a worker on it.</summary>
    public static RecordingEchoWorker Start(CeleriacApp app)
    {
        var recorder = new RecordingEchoWorker();
        app.Task("tasks.echo", (JsonElement value) =>
        {
            recorder._order.Enqueue(value.GetString()!);
            return value;
        });
        var worker = new CeleriacWorker(app);
        CancellationToken abort = TestContext.Current.CancellationToken;
        recorder._run = Task.Run(() => worker.RunAsync(recorder._stop.Token, abort), abort);
        return recorder;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _run.WaitAsync(TimeSpan.FromSeconds(15), CancellationToken.None);
        _stop.Dispose();
    }
}
