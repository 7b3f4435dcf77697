using System.Globalization;
using System.Text.RegularExpressions;
using Celeriac.IntegrationTests.Support;
using Celeriac.TestServers;

namespace Celeriac.IntegrationTests.Beat;

/// <summary>
/// Three real beat processes (and, separately, three <c>worker -B</c>) on one store, for half a minute, with an every-second
/// entry: each due run is sent exactly once, and when the holder of the lease is killed with SIGKILL another takes over,
/// losing at most a lease time of runs (with catch-up run_all, at most the one the killed holder had recorded) and repeating none.
/// Each case takes half a minute of the wall clock (about five lease times before the kill and five after), mostly
/// waiting: the cases are in three classes, so that they run side by side.
/// </summary>
public abstract partial class BeatProcessTests : IAsyncLifetime
{
    private const string Queue = "beat-q";
    private static readonly TimeSpan s_lease = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan s_grace = TimeSpan.FromSeconds(2);
    private readonly string _dir = Directory.CreateTempSubdirectory("celeriac-beat-").FullName;
    private RedisServer? _redis;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }

        Directory.Delete(_dir, recursive: true);
    }

    protected async Task ThreeBeatsAsync(string store, string mode, string catchUp)
    {
        string broker = store == "redis"
            ? (_redis = await RedisServer.StartAsync(Ct)).Url(0)
            : "sqlite:///" + Path.Join(_dir, "celeriac.db");
        await File.WriteAllTextAsync(Path.Join(_dir, "appsettings.json"), $$"""
            { "Celeriac": { "BeatSchedule": { "each-second": { "task": "tasks.add", "schedule": 1.0, "args": [1, 1], "options": { "queue": "{{Queue}}" }, "catch_up": "{{catchUp}}" } } } }
            """, Ct);
        var env = new Dictionary<string, string>
        {
            ["CELERIAC_BROKER_URL"] = broker,
            ["CELERIAC_BEAT_LEASE_TIME"] = s_lease.TotalSeconds.ToString(CultureInfo.InvariantCulture),
            ["CELERIAC_BEAT_MISFIRE_GRACE"] = s_grace.TotalSeconds.ToString(CultureInfo.InvariantCulture),
        };
        string[] command = mode == "beat" ? ["beat", "-l", "info"] : ["worker", "-B", "-l", "info", "-c", "1", "--without-mingle"];
        var beats = new List<ChildProcess>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                beats.Add(ChildProcess.Start(_dir, env, [.. command, .. mode == "worker" ? new[] { "-n", $"b{i}@%h" } : []]));
            }

            Assert.True(await PollAsync(() => beats.Count(b => Log(b).Contains("holds the lease", StringComparison.Ordinal)) == 1, TimeSpan.FromSeconds(60)), "no beat took the lease\n" + string.Join("\n---\n", beats.Select(Log)));
            await Task.Delay(TimeSpan.FromSeconds(15), Ct);

            ChildProcess holder = beats.Single(b => Log(b).Contains("holds the lease", StringComparison.Ordinal));
            await holder.SignalAsync("KILL");
            DateTimeOffset killedAt = TimeProvider.System.GetUtcNow();
            Assert.True(await PollAsync(() => beats.Count(b => b != holder && Log(b).Contains("holds the lease", StringComparison.Ordinal)) == 1, TimeSpan.FromSeconds(30)), "no beat took over");
            await Task.Delay(TimeSpan.FromSeconds(15), Ct);
            foreach (ChildProcess b in beats.Where(b => b != holder))
            {
                await b.SignalAsync("TERM");
                Assert.Equal(0, await b.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            }

            DateTimeOffset[] sent = [.. beats.SelectMany(b => DueRegex().Matches(Log(b)).Select(m => DateTimeOffset.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture))).Order()];
            await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = broker });

            // Each run once, and every one that was logged reached the broker.
            Assert.Equal(sent.Length, sent.Distinct().Count());
            Assert.Equal(sent.Length, await app.Transport.GetQueueLengthAsync(Queue, Ct));

            // Between the first and the last, only runs due while no beat held the lease may be missing.
            DateTimeOffset[] expected = [.. Enumerable.Range(0, (int)(sent[^1] - sent[0]).TotalSeconds + 1).Select(i => sent[0].AddSeconds(i))];
            DateTimeOffset[] missing = [.. expected.Except(sent)];
            Assert.True(sent.Length >= 20, $"only {sent.Length} runs in half a minute");
            Assert.All(missing, m => Assert.InRange(m, killedAt - TimeSpan.FromSeconds(2), killedAt + s_lease + s_grace + TimeSpan.FromSeconds(2)));

            // Catching up on every missed run, the one that takes over sends what fell due meanwhile; only a run the
            // killed holder had recorded but not yet sent can be missing (recorded first, so that none is sent twice).
            if (catchUp == "run_all")
            {
                Assert.True(missing.Length <= 1, "missing with run_all: " + string.Join(", ", missing.Select(m => m.ToString("O", CultureInfo.InvariantCulture))));
            }
        }
        finally
        {
            foreach (ChildProcess b in beats)
            {
                await b.DisposeAsync();
            }
        }
    }

    private static string Log(ChildProcess p) => p.Stdout + p.Stderr;

    private static async Task<bool> PollAsync(Func<bool> condition, TimeSpan timeout)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                return false;
            }

            await Task.Delay(100, Ct);
        }

        return true;
    }

    [GeneratedRegex(@"Sending due task each-second \(tasks\.add\) due (\S+)")]
    private static partial Regex DueRegex();
}

/// <summary>Three beats on the embedded SQLite store, as <c>beat</c> processes and as <c>worker -B</c>.</summary>
public sealed class SqliteBeatProcessTests : BeatProcessTests
{
    [Theory]
    [InlineData("beat")]
    [InlineData("worker")]
    public Task ThreeBeats_HalfAMinuteEverySecond_HolderKilled_EachRunOnceAndAtMostALeaseLost(string mode) => ThreeBeatsAsync("sqlite", mode, "skip");
}

/// <summary>Three beats on Redis, as <c>beat</c> processes and as <c>worker -B</c>.</summary>
public sealed class RedisBeatProcessTests : BeatProcessTests
{
    [Theory]
    [InlineData("beat")]
    [InlineData("worker")]
    public Task ThreeBeats_HalfAMinuteEverySecond_HolderKilled_EachRunOnceAndAtMostALeaseLost(string mode) => ThreeBeatsAsync("redis", mode, "skip");
}

/// <summary>Three beats on Redis catching up on every missed run (<c>run_all</c>).</summary>
public sealed class RedisRunAllBeatProcessTests : BeatProcessTests
{
    [Fact]
    public Task ThreeBeats_HalfAMinuteEverySecond_HolderKilled_CatchUpRunAll_AtMostTheRecordedRunLost() => ThreeBeatsAsync("redis", "beat", "run_all");
}
