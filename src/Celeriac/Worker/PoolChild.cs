using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Celeriac.Concurrency;
using Celeriac.Diagnostics;
using Celeriac.Protocol;
using Celeriac.Results;
using Microsoft.Extensions.Logging;

namespace Celeriac.Worker;

/// <summary>
/// What a prefork pool's child does instead of running a worker: it connects to its parent's socket, says it is
/// ready, and runs the requests it is sent one at a time with the app it built (the same as its parent's: same
/// executable, same arguments), sending back each outcome. The celeriac CLI's <c>worker</c> command and the hosted
/// worker of <c>AddWorker()</c> call it when <see cref="IsCurrentProcess"/>; a program that starts
/// <see cref="CeleriacWorker"/> itself with the prefork pool must do the same.
/// </summary>
public static class PoolChild
{
    /// <summary>Whether this process was started by a prefork pool to serve it.</summary>
    public static bool IsCurrentProcess => PreforkPool.IsChildProcess;

    /// <summary>
    /// Serves the parent until it closes the socket (then a task still running ends with the process), and returns
    /// the exit code. <paramref name="ct"/> cancels only the wait to connect: once it serves, the parent alone decides
    /// when the child ends, so SIGINT, SIGTERM and SIGQUIT (a terminal's Ctrl+C reaches the whole process group) are
    /// ignored.
    /// </summary>
    public static async Task<int> RunAsync(CeleriacApp app, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(app);
        CanvasBuiltins.Register(app);
        string path = Environment.GetEnvironmentVariable(PreforkPool.ChildVariable) is { Length: > 0 } p
            ? p
            : throw new InvalidOperationException($"This process is not a prefork pool child ({PreforkPool.ChildVariable} is not set).");
        List<PosixSignalRegistration> signals = [];
        foreach (PosixSignal signal in (PosixSignal[])[PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGQUIT])
        {
            try
            {
                signals.Add(PosixSignalRegistration.Create(signal, static c => c.Cancel = true));
            }
            catch (PlatformNotSupportedException)
            {
                // Not on this platform.
            }
        }

        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(PreforkPool.EndPointOf(path), ct).ConfigureAwait(false);
            var stream = new NetworkStream(socket, ownsSocket: false);
            await using (stream.ConfigureAwait(false))
            {
                return await ServeAsync(app, stream, ct).ConfigureAwait(false);
            }
        }
        finally
        {
            foreach (PosixSignalRegistration registration in signals)
            {
                registration.Dispose();
            }
        }
    }

    private static async Task<int> ServeAsync(CeleriacApp app, NetworkStream stream, CancellationToken ct)
    {
        ILogger logger = app.LoggerFactory.CreateLogger("Celeriac.Worker");
        string node = app.Options.EffectiveNodeName;
        var runner = new TaskRunner(app, node);
        var documents = new ResultDocuments(app, node);
        byte[] ready = System.Text.Encoding.UTF8.GetBytes($"{{\"pid\":{Environment.ProcessId}}}");
        await PoolFrames.WriteAsync(stream, PoolFrameType.Ready, ready, ct).ConfigureAwait(false);

        var busy = new StrongBox<bool>();
        while (true)
        {
            (PoolFrameType Type, byte[] Payload)? frame;
            try
            {
                frame = await PoolFrames.ReadAsync(stream, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or SocketException or InvalidDataException)
            {
                Log.ChildBadRequest(logger, ex.Message);
                frame = null;
            }

            if (frame is null)
            {
                break;
            }

            if (frame.Value.Type != PoolFrameType.Run || Volatile.Read(ref busy.Value))
            {
                Log.ChildBadRequest(logger, $"an unexpected {frame.Value.Type} frame");
                break;
            }

            // Off the read loop, so that a task blocking its thread cannot keep this child from seeing its parent go.
            byte[] payload = frame.Value.Payload;
            Volatile.Write(ref busy.Value, true);
            _ = Task.Run(() => RunOneAsync(app, runner, documents, logger, stream, payload, busy), CancellationToken.None);
        }

        if (Volatile.Read(ref busy.Value))
        {
            // The parent is gone (a parent that means to close a child waits until it is idle): so is the task.
            Environment.Exit(1);
        }

        return 0;
    }

    private static async Task RunOneAsync(CeleriacApp app, TaskRunner runner, ResultDocuments documents, ILogger logger, NetworkStream stream, byte[] payload, StrongBox<bool> busy)
    {
        TaskOutcome outcome;
        TaskMessage? message = null;
        try
        {
            outcome = await RunRequestAsync(payload).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Whatever happens here is the task's outcome: the parent must get one.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            outcome = Failure(TaskRunner.Encode(ex), ex.ToString());
        }
        finally
        {
            message?.Dispose();
        }

        // Free before the parent can read the outcome: its next request may follow at once.
        Volatile.Write(ref busy.Value, false);
        try
        {
            await PoolFrames.WriteAsync(stream, PoolFrameType.Outcome, TaskOutcomeCodec.Encode(outcome), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            // The parent is gone: the read loop ends this child.
        }

        async ValueTask<TaskOutcome> RunRequestAsync(byte[] bytes)
        {
            if (!PoolRequest.TryDecode(bytes, out PoolRequest? request, out string? error))
            {
                Log.ChildBadRequest(logger, error!);
                return Failure(new ExceptionInfo("ContentDisallowed", error!, "kombu.exceptions"), null);
            }

            if (!TaskMessage.TryDecode(request!.Transport, out message, out _, out _, out error))
            {
                Log.ChildBadRequest(logger, error!);
                return Failure(new ExceptionInfo("ContentDisallowed", error!, "kombu.exceptions"), null);
            }

            TaskMessage decoded = message!;
            if (!app.Tasks.TryGet(decoded.Headers.Task, out CeleriacTask? task) || task.Invoker is null)
            {
                return Failure(new ExceptionInfo("NotRegistered", decoded.Headers.Task, "celery.exceptions"), null);
            }

            var job = new ChildJob(runner, app, documents, decoded, task, request.Queue, request.ResultJson, request.SoftTimeLimit);

            // The soft limit is applied here, where the task's token lives; the hard one by the parent, which kills this process.
            return job.SoftTimeLimit is null
                ? await job.RunAsync(CancellationToken.None).ConfigureAwait(false)
                : await TimeLimitGuard.RunAsync(job, t => job.RunAsync(t).AsTask(), null, app.Time, logger, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>A request as the child runs it, and the store of the states its task reports.</summary>
    private sealed class ChildJob : PoolJob, ITaskStateStore
    {
        private readonly TaskRunner _runner;
        private readonly CeleriacApp _app;
        private readonly ResultDocuments _documents;
        private readonly TaskMessage _message;
        private readonly CeleriacTask _task;
        private readonly string _queue;
        private readonly bool _resultJson;

        public ChildJob(TaskRunner runner, CeleriacApp app, ResultDocuments documents, TaskMessage message, CeleriacTask task, string queue, bool resultJson, double? soft)
        {
            _runner = runner;
            _app = app;
            _documents = documents;
            _message = message;
            _task = task;
            _queue = queue;
            _resultJson = resultJson;
            SoftTimeLimit = soft;
        }

        public override string TaskId => _message.Headers.Id;

        public override string TaskName => _message.Headers.Task;

        public override ValueTask<TaskOutcome> RunAsync(CancellationToken ct) =>
            _runner.RunAsync(_message, _task, _queue, _resultJson, this, ct, CancellationToken.None);

        public ValueTask StoreStateAsync(string state, object? meta, CancellationToken ct) =>
            _app.ResultBackend.StoreAsync(_documents.State(_message, _queue, state, meta), ct);
    }

    private static TaskOutcome Failure(ExceptionInfo error, string? traceback) => new()
    {
        Kind = TaskOutcomeKind.Failed,
        Result = TaskResultMeta.SerializeException(error),
        Traceback = traceback,
        ErrorType = error.Type,
        ErrorMessage = error.Message,
        ErrorModule = error.Module,
    };
}
