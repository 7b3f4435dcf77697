using System.Diagnostics;
using System.Globalization;
using Celeriac;
using Celeriac.Cli;
using Celeriac.Cli.Logging;
using Celeriac.Worker;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Quickstart;

/// <summary>The one-command demo: a worker and a producer in one process, on the default broker.</summary>
internal static class Demo
{
    public static async Task<int> RunAsync(CeleriacApp app, int count)
    {
        using ILoggerFactory logging = CliLogging.CreateFactory(LogLevel.Error, app.Options.TimeProvider);
        app.Options.LoggerFactory ??= logging;
        try
        {
            // Open the broker and result store now: a bad URL is one clear line, not a stack trace.
            _ = app.Transport;
            _ = app.ResultBackend;
        }
        catch (CeleriacConfigurationException ex)
        {
            await Console.Error.WriteLineAsync("Error: " + ex.Message);
            return ExitCodes.Usage;
        }

        bool fancy = AnsiConsole.Profile.Capabilities.Interactive && AnsiConsole.Profile.Capabilities.Ansi;
        string header = $"broker {UrlText.Mask(app.Options.BrokerUrl)}, results {UrlText.Mask(app.EffectiveResultBackendUrl)}: {count} x tasks.add";
        if (fancy)
        {
            AnsiConsole.MarkupLine($"[bold]Celeriac quickstart[/] {Markup.Escape(header)}");
        }
        else
        {
            // Not a terminal (CI, a pipe): plain lines, never wrapped at a guessed width.
            Console.WriteLine("Celeriac quickstart " + header);
        }

        using var stop = new CancellationTokenSource();
        var worker = new CeleriacWorker(app);
        Task running = worker.RunAsync(stop.Token);
        await Task.WhenAny(worker.Ready, running);
        if (running.IsCompleted)
        {
            await running; // it ended before it consumed: report why
        }

        var outcome = new Outcome();
        var clock = Stopwatch.StartNew();
        if (fancy)
        {
            await AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
                .StartAsync(async ctx =>
                {
                    ProgressTask sending = ctx.AddTask("Sending", maxValue: count);
                    ProgressTask waiting = ctx.AddTask("Waiting for results", maxValue: count);
                    await SendAndWaitAsync(app, count, outcome, () => sending.Increment(1), () => waiting.Increment(1));
                });
        }
        else
        {
            // Plain lines at every tenth, no cursor movement.
            var sent = new PlainProgress("Sending", count);
            var done = new PlainProgress("Waiting for results", count);
            await SendAndWaitAsync(app, count, outcome, sent.Step, done.Step);
        }

        clock.Stop();
        await stop.CancelAsync();
        await running;

        double seconds = clock.Elapsed.TotalSeconds;
        var table = new Table().AddColumn("").AddColumn(new TableColumn("").RightAligned()).HideHeaders();
        table.AddRow("Sent", count.ToString(CultureInfo.InvariantCulture));
        table.AddRow("Succeeded", $"[green]{outcome.Succeeded}[/]");
        table.AddRow("Failed", outcome.Failed == 0 ? "0" : $"[red]{outcome.Failed}[/]");
        table.AddRow("Elapsed", seconds.ToString("0.00 s", CultureInfo.InvariantCulture));
        table.AddRow("Tasks/s", (count / Math.Max(seconds, 1e-9)).ToString("0", CultureInfo.InvariantCulture));
        AnsiConsole.Write(table);
        if (outcome.FirstError is { } error)
        {
            AnsiConsole.MarkupLine($"[red]First failure:[/] {Markup.Escape(error)}");
        }

        return outcome.Failed == 0 ? ExitCodes.Ok : ExitCodes.Failure;
    }

    private static async Task SendAndWaitAsync(CeleriacApp app, int count, Outcome outcome, Action sent, Action done)
    {
        var results = new AsyncResult[count];
        for (int i = 0; i < count; i++)
        {
            results[i] = await app.SendTaskAsync("tasks.add", [(long)i, (long)i]);
            sent();
        }

        await Task.WhenAll(results.Select(async (result, i) =>
        {
            try
            {
                long sum = await result.GetAsync<long>(TimeSpan.FromSeconds(60));
                if (sum == 2L * i)
                {
                    Interlocked.Increment(ref outcome.Succeeded);
                }
                else
                {
                    outcome.Fail($"tasks.add({i}, {i}) returned {sum}");
                }
            }
            catch (Exception ex) when (ex is TaskFailedException or TimeoutException)
            {
                outcome.Fail($"tasks.add({i}, {i}): {ex.Message}");
            }

            done();
        }));
    }

    private sealed class Outcome
    {
        public int Succeeded;
        public int Failed;
        public string? FirstError;

        public void Fail(string error)
        {
            Interlocked.Increment(ref Failed);
            Interlocked.CompareExchange(ref FirstError, error, null);
        }
    }

    private sealed class PlainProgress(string label, int total)
    {
        private int _done;

        public void Step()
        {
            int done = Interlocked.Increment(ref _done);
            if (done == total || done % Math.Max(1, total / 10) == 0)
            {
                Console.WriteLine($"{label}: {done}/{total}");
            }
        }
    }
}
