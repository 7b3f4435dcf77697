using System.Diagnostics;
using Celeriac.TestServers;

namespace Celeriac.IntegrationTests.Prefork;

/// <summary>The prefork pool on a real redis-server; the time-limited task comes from Python Celery.</summary>
public sealed class RedisPreforkPoolTests : PreforkPoolTests
{
    private const string Python = "/usr/bin/python3";
    private RedisServer _redis = null!;

    public override async ValueTask InitializeAsync() => _redis = await RedisServer.StartAsync(Ct);

    public override async ValueTask DisposeAsync()
    {
        await _redis.DisposeAsync();
        await base.DisposeAsync();
    }

    protected override Dictionary<string, string> Env() => new()
    {
        ["CELERIAC_BROKER_URL"] = _redis.Url(0),
        ["CELERIAC_RESULT_BACKEND"] = _redis.Url(1),
    };

    protected override CeleriacApp Client() => new(new CeleriacOptions { BrokerUrl = _redis.Url(0), ResultBackend = _redis.Url(1) });

    protected override async Task<string> SendBlockWithTimeLimitAsync(CeleriacApp client)
    {
        const string Script = """
            import sys
            from celery import Celery
            app = Celery(broker=sys.argv[1], backend=sys.argv[2])
            print(app.send_task('tasks.block', (30,), time_limit=2).id)
            """;
        Assert.True(File.Exists(Python), $"{Python} is missing: scripts/provision.sh installs python3-celery");
        var start = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in (string[])["-c", Script, _redis.Url(0), _redis.Url(1)])
        {
            start.ArgumentList.Add(arg);
        }

        using Process python = Process.Start(start)!;
        Task<string> stdout = python.StandardOutput.ReadToEndAsync(Ct);
        Task<string> stderr = python.StandardError.ReadToEndAsync(Ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        await python.WaitForExitAsync(timeout.Token);
        Assert.True(python.ExitCode == 0, $"python exited {python.ExitCode}:\n{await stderr}");
        string id = (await stdout).Trim();
        Assert.Matches("^[0-9a-f-]{36}$", id);
        return id;
    }
}
