using System.Diagnostics;
using Celeriac.TestServers;

namespace Celeriac.Benchmarks;

/// <summary>
/// RabbitMQ: Celeriac and Python Celery 5.2 on one rabbitmq-server the benchmark starts, results by rpc:// on both
/// sides (each result a message to the client's reply queue). Every drain reads the same messages: sent by a Python
/// Celery client once, consumed into memory by the probe, and published again, as they came, before each worker starts.
/// </summary>
internal static partial class Bench
{
    private static Task<Comparison> RabbitMqAsync(BenchOptions o, Report report) =>
        VersusCeleryAsync(o, report, "rabbitmq", "RabbitMQ: Celeriac and Python Celery 5.2 on one rabbitmq-server, results by rpc://", RabbitMqProbe.Ends,
            RabbitMqNode.StartAsync, async node => await RabbitMqProbe.ConnectAsync(node.Server));
}

/// <summary>
/// The test fixture's RabbitMQ node, and the epmd daemon its Erlang VM starts when none runs. The fixture leaves epmd
/// running (nodes share it); the benchmark stops what it started: epmd too, if none ran before and no other node is
/// registered with it by then (<c>epmd -kill</c> refuses while one is).
/// </summary>
internal sealed class RabbitMqNode : IAsyncDisposable
{
    private const string Epmd = "/usr/bin/epmd";
    private readonly bool _stopEpmd;

    private RabbitMqNode(RabbitMqServer server, bool stopEpmd)
    {
        Server = server;
        _stopEpmd = stopEpmd;
    }

    public RabbitMqServer Server { get; }

    public static async Task<RabbitMqNode> StartAsync(CancellationToken ct)
    {
        bool epmdRan = await EpmdAsync("-names") is (0, _);
        try
        {
            return new RabbitMqNode(await RabbitMqServer.StartAsync(ct), stopEpmd: !epmdRan);
        }
        catch
        {
            if (!epmdRan)
            {
                await StopEpmdAsync();
            }

            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        if (_stopEpmd)
        {
            await StopEpmdAsync();
        }
    }

    private static async Task StopEpmdAsync()
    {
        (int code, string output) = await EpmdAsync("-kill");
        Progress.Say(code == 0 ? "rabbitmq: stopped the epmd the node started" : $"rabbitmq: left epmd running: {output.Trim()}");
    }

    private static async Task<(int Code, string Output)> EpmdAsync(string command)
    {
        var start = new ProcessStartInfo(Epmd, [command])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"{Epmd} did not start");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
            process.Kill();
            throw;
        }

        return (process.ExitCode, await stdout + await stderr);
    }
}
