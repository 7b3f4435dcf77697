using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;

namespace Celeriac.InteropTests;

/// <summary>What one run of Celery's command line printed and how it ended.</summary>
internal sealed record CeleryCliResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>The JSON document that <c>--json</c> printed (the last line of stdout that starts a JSON value).</summary>
    public JsonDocument Json()
    {
        string? line = Stdout.Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.StartsWith('{') || l.StartsWith('['));
        Assert.True(line is not null, $"celery printed no JSON (exit {ExitCode}):\n{Stdout}\n{Stderr}");
        return JsonDocument.Parse(line);
    }

    /// <summary>Fails the test unless the command exited 0.</summary>
    public CeleryCliResult Succeeded()
    {
        Assert.True(ExitCode == 0, $"celery exited {ExitCode}:\n{Stdout}\n{Stderr}");
        return this;
    }
}

/// <summary>
/// Celery's own command line, <c>/usr/bin/python3 -m celery -A interop_tasks ...</c> (Debian's Celery 5.2), on the broker
/// and backend of <c>CELERY_BROKER_URL</c> / <c>CELERY_RESULT_BACKEND</c> in the environment given.
/// </summary>
internal static class CeleryCli
{
    private static readonly TimeSpan s_limit = TimeSpan.FromSeconds(60);

    /// <summary>Runs one command to its end (at most 60 s, else the test fails) and returns its exit code and output.</summary>
    public static async Task<CeleryCliResult> RunAsync(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using Process process = Process.Start(StartInfo(environment, args))!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(s_limit);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"celery {string.Join(' ', args)} did not exit within {s_limit.TotalSeconds} s:\n{await stdout}\n{await stderr}");
        }

        return new CeleryCliResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>The start of <c>python3 -m celery -A interop_tasks args...</c> with the interop modules importable.</summary>
    public static ProcessStartInfo StartInfo(IReadOnlyDictionary<string, string> environment, IEnumerable<string> args)
    {
        Assert.True(File.Exists(PythonCelery.Python), $"{PythonCelery.Python} is missing: scripts/provision.sh installs python3-celery");
        var start = new ProcessStartInfo(PythonCelery.Python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        PythonCelery.Configure(start, environment);
        foreach (string a in (string[])["-m", "celery", "-A", "interop_tasks", .. args])
        {
            start.ArgumentList.Add(a);
        }

        return start;
    }
}

/// <summary>
/// A long-running Celery command (<c>celery events --dump</c>) whose output is kept line by line; killed on dispose.
/// </summary>
internal sealed class CeleryCliProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly SemaphoreSlim _changed = new(0);

    private CeleryCliProcess(Process process) => _process = process;

    /// <summary>Everything it printed so far.</summary>
    public string Output => string.Join('\n', _lines);

    /// <summary>Starts <c>celery args...</c>; waits (up to <paramref name="timeout"/>) until a line contains <paramref name="ready"/>.</summary>
    public static async Task<CeleryCliProcess> StartAsync(IReadOnlyDictionary<string, string> environment, string ready, TimeSpan timeout, params string[] args)
    {
        var celery = new CeleryCliProcess(Process.Start(CeleryCli.StartInfo(environment, args))!);
        celery._process.OutputDataReceived += (_, e) => celery.Add(e.Data);
        celery._process.ErrorDataReceived += (_, e) => celery.Add(e.Data);
        celery._process.BeginOutputReadLine();
        celery._process.BeginErrorReadLine();
        try
        {
            await celery.WaitForAsync(l => l.Contains(ready, StringComparison.Ordinal), timeout);
        }
        catch
        {
            await celery.DisposeAsync();
            throw;
        }

        return celery;
    }

    private void Add(string? line)
    {
        if (line is not null)
        {
            _lines.Enqueue(line);
            _changed.Release();
        }
    }

    /// <summary>The first line that matches, waiting up to <paramref name="timeout"/> for it (else <see cref="TimeoutException"/> with the output).</summary>
    public async Task<string> WaitForAsync(Func<string, bool> match, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (_lines.FirstOrDefault(match) is { } line)
            {
                return line;
            }

            if (_process.HasExited && _lines.FirstOrDefault(match) is null)
            {
                throw new InvalidOperationException($"celery exited with {_process.ExitCode} before printing the line; it printed:\n{Output}");
            }

            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"celery did not print the line within {timeout.TotalSeconds} s; it printed:\n{Output}");
            }

            await _changed.WaitAsync(TimeSpan.FromMilliseconds(200));
        }
    }

    /// <summary>Warm stop (SIGTERM, as Celery's workers take it), waiting up to <paramref name="timeout"/> for the exit.</summary>
    public async Task TerminateAsync(TimeSpan timeout)
    {
        await ProcessSignals.TerminateAsync(_process.Id);
        using var wait = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(wait.Token);
    }

    /// <summary>Kills it if it still runs.</summary>
    public async ValueTask DisposeAsync()
    {
        await ProcessSignals.KillAsync(_process);
        _process.Dispose();
        _changed.Dispose();
    }
}
