using System.Globalization;
using System.Text;
using Celeriac.Events;
using Celeriac.Results;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Celeriac.Cli.Commands.Monitor;

/// <summary>
/// The live view of <c>celeriac events</c>, the counterpart of Celery's curses monitor (<c>celery events</c>): the
/// workers (online while their heartbeats come, active, processed, load average) and the latest tasks, redrawn in
/// place from a <see cref="ClusterState"/> fed by an <see cref="EventReceiver"/>. Keys work when stdin is a terminal;
/// without one it only draws.
/// </summary>
internal sealed class EventsMonitor : IDisposable
{
    private const string Keys = "↑/↓ select  r revoke  t terminate  i/Enter result  Esc close  q quit";

    private readonly CliContext _context;
    private readonly CeleriacApp _app;
    private readonly TimeSpan _refresh;
    private readonly ClusterState _state;
    private readonly IAnsiConsole _console;
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Lock _gate = new();
    private string? _selected;
    private string _message = "";
    private string? _detail;
    private IReadOnlyList<ClusterTask> _shown = [];

    public EventsMonitor(CliContext context, CeleriacApp app, TimeSpan refresh)
    {
        _context = context;
        _app = app;
        _refresh = refresh;
        _state = new ClusterState(app.Options.TimeProvider);
        _console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(context.Out) });
    }

    public async Task RunAsync(CancellationTokenSource stop)
    {
        CancellationToken token = stop.Token;
        var receiver = new EventReceiver(_app);
        Task reading = Task.Run(() => ReadAsync(receiver, token), CancellationToken.None);
        Task keys = KeysAvailable ? Task.Run(() => ReadKeysAsync(stop), CancellationToken.None) : Task.CompletedTask;
        try
        {
            await _console.Live(Render())
                .AutoClear(false)
                .Overflow(VerticalOverflow.Crop)
                .Cropping(VerticalOverflowCropping.Bottom)
                .StartAsync(async live =>
                {
                    while (!token.IsCancellationRequested && !reading.IsCompleted)
                    {
                        live.UpdateTarget(Render());
                        live.Refresh();
                        try
                        {
                            await _wake.WaitAsync(_refresh, token).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException) when (token.IsCancellationRequested)
                        {
                            break;
                        }
                    }
                }).ConfigureAwait(false);
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await keys.ConfigureAwait(false);
        }

        // A receiver that failed (the broker went away) ends the view with its error.
        await reading.ConfigureAwait(false);
    }

    public void Dispose() => _wake.Dispose();

    /// <summary>Keys only from the real console's stdin, and only when it is a terminal.</summary>
    private bool KeysAvailable => ReferenceEquals(_context.In, Console.In) && !Console.IsInputRedirected;

    private async Task ReadAsync(EventReceiver receiver, CancellationToken token)
    {
        try
        {
            await foreach (CeleryEvent e in receiver.ReadAsync(token).ConfigureAwait(false))
            {
                _state.Apply(e);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // Stopped.
        }
    }

    private async Task ReadKeysAsync(CancellationTokenSource stop)
    {
        CancellationToken token = stop.Token;
        try
        {
            while (!token.IsCancellationRequested)
            {
                // Polled: Console.ReadKey cannot be cancelled, and a blocked read would outlive the view.
                while (Console.KeyAvailable)
                {
                    ConsoleKeyInfo key = Console.ReadKey(intercept: true);
                    if (key.Key == ConsoleKey.Q || (key.Key == ConsoleKey.C && key.Modifiers.HasFlag(ConsoleModifiers.Control)))
                    {
                        await stop.CancelAsync().ConfigureAwait(false);
                        return;
                    }

                    await OnKeyAsync(key, token).ConfigureAwait(false);
                    _wake.Release();
                }

                await Task.Delay(50, token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // Stopped.
        }
        catch (InvalidOperationException)
        {
            // stdin is not a console after all: the view goes on without keys.
        }
    }

    private async Task OnKeyAsync(ConsoleKeyInfo key, CancellationToken token)
    {
        switch (key.Key)
        {
            case ConsoleKey.UpArrow or ConsoleKey.K:
                Move(-1);
                break;
            case ConsoleKey.DownArrow or ConsoleKey.J:
                Move(1);
                break;
            case ConsoleKey.Escape:
                SetDetail(null);
                break;
            case ConsoleKey.R when Selected is { } revoke:
                await ActAsync(() => _app.Control.RevokeAsync([revoke], terminate: false, ct: token), $"Revoked {revoke}").ConfigureAwait(false);
                break;
            case ConsoleKey.T when Selected is { } terminate:
                await ActAsync(() => _app.Control.TerminateAsync([terminate], ct: token), $"Terminated {terminate} (SIGTERM)").ConfigureAwait(false);
                break;
            case ConsoleKey.I or ConsoleKey.Enter when Selected is { } info:
                SetDetail(await DescribeAsync(info, token).ConfigureAwait(false));
                break;
            case ConsoleKey.R or ConsoleKey.T or ConsoleKey.I or ConsoleKey.Enter:
                Say("No task selected: use up/down first.");
                break;
        }
    }

    private string? Selected
    {
        get
        {
            lock (_gate)
            {
                return _selected;
            }
        }
    }

    private void Move(int by)
    {
        lock (_gate)
        {
            if (_shown.Count == 0)
            {
                _selected = null;
                return;
            }

            int at = _selected is null ? -1 : IndexOf(_shown, _selected);
            int next = at < 0 ? (by > 0 ? 0 : _shown.Count - 1) : Math.Clamp(at + by, 0, _shown.Count - 1);
            _selected = _shown[next].Uuid;
        }
    }

    private async Task ActAsync(Func<Task> action, string done)
    {
        try
        {
            await action().ConfigureAwait(false);
            Say(done);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Say($"Failed: {ex.GetType().Name}: {ex.Message}");
        }
    }

    /// <summary>The task's result or traceback from the result backend, else what its events said.</summary>
    private async Task<string> DescribeAsync(string uuid, CancellationToken token)
    {
        var text = new StringBuilder();
        ClusterTask? task = _state.GetTask(uuid);
        text.Append(CultureInfo.InvariantCulture, $"{task?.Name ?? "?"}[{uuid}]  {task?.State ?? "?"}\n");
        try
        {
            TaskResultMeta? meta = await _app.AsyncResult(uuid).RefreshAsync(token).ConfigureAwait(false);
            if (meta is null)
            {
                text.Append("No result stored (PENDING).\n");
            }
            else if (meta.Status == TaskStates.Success)
            {
                text.Append(CultureInfo.InvariantCulture, $"Result: {Encoding.UTF8.GetString(meta.Result.Span)}\n");
            }
            else if (meta.Exception is { } error)
            {
                text.Append(CultureInfo.InvariantCulture, $"{meta.Status}: {error.Type}: {error.Message}\n");
                if (meta.Traceback is { Length: > 0 } traceback)
                {
                    text.Append(traceback.TrimEnd()).Append('\n');
                }
            }
            else
            {
                text.Append(CultureInfo.InvariantCulture, $"State: {meta.Status}\n");
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            text.Append(CultureInfo.InvariantCulture, $"Result backend: {ex.GetType().Name}: {ex.Message}\n");
            if (task?.Result is { } result)
            {
                text.Append(CultureInfo.InvariantCulture, $"Result (event): {result}\n");
            }

            if (task?.Exception is { } exception)
            {
                text.Append(CultureInfo.InvariantCulture, $"Exception (event): {exception}\n{task.Traceback}\n");
            }
        }

        return text.ToString().TrimEnd();
    }

    private void Say(string message)
    {
        lock (_gate)
        {
            _message = message;
        }
    }

    private void SetDetail(string? detail)
    {
        lock (_gate)
        {
            _detail = detail;
        }
    }

    private Rows Render()
    {
        IReadOnlyList<ClusterWorker> workers = _state.Workers;
        string? detail;
        string message;
        lock (_gate)
        {
            detail = _detail;
            message = _message;
        }

        int height = Math.Max(20, _console.Profile.Height);
        int detailLines = detail is null ? 0 : Math.Min(12, detail.Split('\n').Length) + 2;
        int taskRows = Math.Max(3, height - workers.Count - detailLines - 14);
        IReadOnlyList<ClusterTask> tasks = _state.Tasks(taskRows);
        string? selected;
        lock (_gate)
        {
            _shown = tasks;
            selected = _selected;
        }

        int online = workers.Count(w => w.Alive);
        var header = new Markup(string.Create(CultureInfo.InvariantCulture,
            $"[bold]celeriac events[/]  {Markup.Escape(UrlText.Mask(_app.Options.BrokerUrl))}  workers: {online} online, {workers.Count - online} offline  tasks: {_state.TaskCount}  events: {_state.EventCount}"));

        var workerTable = new Table().Border(TableBorder.Simple).Expand().Title("Workers");
        foreach (string column in (string[])["Hostname", "Status", "Active", "Processed", "Load average", "Last heartbeat"])
        {
            workerTable.AddColumn(column);
        }

        DateTimeOffset now = _app.Options.TimeProvider.GetUtcNow();
        foreach (ClusterWorker w in workers)
        {
            workerTable.AddRow(
                new Text(w.Hostname),
                new Text(w.Status, new Style(w.Alive ? Color.Green : Color.Red)),
                new Text(Number(w.Active)),
                new Text(Number(w.Processed)),
                new Text(w.LoadAverage is { Count: > 0 } load ? string.Join(", ", load.Select(l => l.ToString("0.00", CultureInfo.InvariantCulture))) : "-"),
                new Text(w.LastHeartbeat is { } beat ? Ago(now - beat) : "-"));
        }

        if (workers.Count == 0)
        {
            workerTable.AddRow(new Text("(no worker seen yet)", new Style(decoration: Decoration.Dim)));
        }

        var taskTable = new Table().Border(TableBorder.Simple).Expand().Title("Tasks (latest first)");
        foreach (string column in (string[])["UUID", "Name", "State", "Args", "Runtime", "Worker"])
        {
            taskTable.AddColumn(column);
        }

        foreach (ClusterTask t in tasks)
        {
            bool isSelected = t.Uuid == selected;
            Style style = isSelected ? new Style(decoration: Decoration.Invert) : Style.Plain;
            taskTable.AddRow(
                new Text((isSelected ? "> " : "  ") + t.Uuid, style),
                new Text(t.Name ?? "?", style),
                new Text(t.State, isSelected ? style : new Style(StateColor(t.State))),
                new Text(Shorten(t.Args ?? "", 40), style),
                new Text(t.Runtime is { } r ? Seconds(r) : "", style),
                new Text(t.Worker ?? "", style));
        }

        if (tasks.Count == 0)
        {
            taskTable.AddRow(new Text("(no task events yet: start workers with -E)", new Style(decoration: Decoration.Dim)));
        }

        var parts = new List<IRenderable> { header, workerTable, taskTable };
        if (detail is not null)
        {
            string shown = string.Join('\n', detail.Split('\n').Take(12));
            parts.Add(new Panel(new Text(shown)).Header("Task (Esc closes)").Expand());
        }

        parts.Add(new Text(Keys + (message.Length > 0 ? "   " + message : ""), new Style(decoration: Decoration.Dim)));
        return new Rows(parts);
    }

    private static int IndexOf(IReadOnlyList<ClusterTask> tasks, string uuid)
    {
        for (int i = 0; i < tasks.Count; i++)
        {
            if (tasks[i].Uuid == uuid)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>A runtime with its significant digits: tasks of a few microseconds are not shown as 0.000s.</summary>
    private static string Seconds(double seconds) =>
        seconds.ToString(seconds < 1 ? "0.000###" : "0.00", CultureInfo.InvariantCulture) + "s";

    private static string Number(long? n) => n is { } v ? v.ToString(CultureInfo.InvariantCulture) : "-";

    private static string Ago(TimeSpan span) =>
        span < TimeSpan.Zero ? "now" : span.TotalSeconds.ToString("0", CultureInfo.InvariantCulture) + "s ago";

    private static string Shorten(string text, int max) => text.Length <= max ? text : text[..(max - 3)] + "...";

    private static Color StateColor(string state) => state switch
    {
        TaskStates.Success => Color.Green,
        TaskStates.Failure or TaskStates.Revoked or ClusterState.Rejected => Color.Red,
        TaskStates.Started => Color.Yellow,
        TaskStates.Retry => Color.Orange1,
        _ => Color.Default,
    };
}
