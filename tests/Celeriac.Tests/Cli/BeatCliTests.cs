using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Celeriac.Tests.Cli;

/// <summary><c>celeriac beat list/add/remove/enable/disable</c> on a SQLite schedule store, and their bad input.</summary>
public sealed class BeatCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("celeriac-beat-cli-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string Store => "sqlite:///" + Path.Join(_dir, "beat.db");

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private Task<CliRun> BeatAsync(params string[] args) => CliRun.RunAsync(["beat", .. args, "--schedule", Store, "--broker", CliRun.NewBroker()], ct: Ct);

    [Fact]
    public async Task AddListDisableEnableRemove_TheStoreFollowsAndListShowsIt()
    {
        CliRun added = await BeatAsync("add", "nightly", "--task", "tasks.cleanup", "--every", "0 3 * * *", "--queue", "low", "--args", "[1, \"x\"]");
        CliRun second = await BeatAsync("add", "often", "--task", "tasks.add", "--every", "2.5");
        CliRun disabled = await BeatAsync("disable", "nightly");
        CliRun json = await BeatAsync("list", "--json");
        CliRun table = await BeatAsync("list");

        Assert.Equal((0, 0, 0, 0, 0), (added.ExitCode, second.ExitCode, disabled.ExitCode, json.ExitCode, table.ExitCode));
        JsonElement[] entries = [.. JsonDocument.Parse(json.Out).RootElement.EnumerateArray()];
        JsonElement nightly = entries.Single(e => e.GetProperty("name").GetString() == "nightly");
        JsonElement often = entries.Single(e => e.GetProperty("name").GetString() == "often");
        Assert.Equal(("tasks.cleanup", "crontab", false), (nightly.GetProperty("task").GetString(), nightly.GetProperty("schedule").GetProperty("type").GetString(), nightly.GetProperty("enabled").GetBoolean()));
        Assert.Equal(("interval", 2.5, true), (often.GetProperty("schedule").GetProperty("type").GetString(), often.GetProperty("schedule").GetProperty("seconds").GetDouble(), often.GetProperty("enabled").GetBoolean()));
        Assert.True(DateTimeOffset.Parse(nightly.GetProperty("next_run_at").GetString()!, System.Globalization.CultureInfo.InvariantCulture).Hour == 3);
        Assert.Contains("nightly", table.Out, StringComparison.Ordinal);
        Assert.Contains("<crontab: 0 3 * * * (m/h/dM/MY/d)>", table.Out, StringComparison.Ordinal);

        Assert.Equal(0, (await BeatAsync("enable", "nightly")).ExitCode);
        Assert.Equal(0, (await BeatAsync("remove", "often")).ExitCode);
        JsonElement[] after = [.. JsonDocument.Parse((await BeatAsync("list", "--json")).Out).RootElement.EnumerateArray()];
        Assert.Equal(["nightly"], after.Select(e => e.GetProperty("name").GetString()));
        Assert.True(after[0].GetProperty("enabled").GetBoolean());
    }

    [Theory]
    [InlineData("61 * * * *", "minute")]
    [InlineData("0", "more than 0 seconds")]
    [InlineData("* * * *", "five")]
    public async Task Add_BadSchedule_OneLineNamingTheEntryAndUsageExit(string schedule, string reason)
    {
        CliRun run = await BeatAsync("add", "broken", "--task", "tasks.x", "--every", schedule);

        Assert.Equal(2, run.ExitCode);
        string line = Assert.Single(run.ErrorLines);
        Assert.Contains("Beat entry 'broken'", line, StringComparison.Ordinal);
        Assert.Contains(reason, line, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Disable_UnknownEntry_OneLineAndFailure()
    {
        CliRun run = await BeatAsync("disable", "nope");

        Assert.Equal(1, run.ExitCode);
        Assert.Equal("Error: no beat entry named 'nope'.", Assert.Single(run.ErrorLines));
    }
}
