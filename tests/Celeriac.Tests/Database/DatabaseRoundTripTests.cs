using System.Diagnostics;
using System.Globalization;
using Celeriac.Database;
using Celeriac.Results;
using Celeriac.Tests.Conformance;

namespace Celeriac.Tests.Database;

/// <summary>A store followed by a get, timed on each engine (the figure the README quotes); printed to the test output.</summary>
public abstract class DatabaseRoundTripTests
{
    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected abstract Task<string> UrlAsync();

    [Fact]
    public async Task StoreThenGet_TwoHundredTimes_EachReadsWhatWasStored()
    {
        await using var b = new DatabaseResultBackend(new ResultBackendOptions { Url = new Uri(await UrlAsync()) });
        await b.GetAsync("warm-up", Ct);
        var times = new List<double>();
        for (int i = 0; i < 200; i++)
        {
            string id = Guid.NewGuid().ToString();
            var clock = Stopwatch.StartNew();
            await b.StoreAsync(new TaskResultMeta { TaskId = id, Status = TaskStates.Success, Result = "{\"value\":[1,2.5,\"x\"]}"u8.ToArray(), DateDone = TimeProvider.System.GetUtcNow() }, Ct);
            TaskResultMeta? got = await b.GetAsync(id, Ct);
            times.Add(clock.Elapsed.TotalMilliseconds);
            Assert.Equal(TaskStates.Success, got?.Status);
        }

        times.Sort();
        TestContext.Current.TestOutputHelper?.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{GetType().Name}: store+get p50 {times[100]:F2} ms, p95 {times[190]:F2} ms, mean {times.Average():F2} ms"));
    }
}

public sealed class PostgresRoundTripTests(PostgresDatabaseFixture pg) : DatabaseRoundTripTests, IClassFixture<PostgresDatabaseFixture>
{
    protected override async Task<string> UrlAsync() => pg.Server.Url(await pg.Server.CreateDatabaseAsync(Ct), "db+postgresql");
}

public sealed class MariaDbRoundTripTests(MariaDbFixture mariadb) : DatabaseRoundTripTests, IClassFixture<MariaDbFixture>
{
    protected override async Task<string> UrlAsync() => mariadb.Server.Url(await mariadb.Server.CreateDatabaseAsync(Ct), "db+mariadb");
}

public sealed class SqliteRoundTripTests : DatabaseRoundTripTests, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-db-").FullName;

    protected override Task<string> UrlAsync() => Task.FromResult("db+sqlite:///" + Path.Combine(_directory, "results.db"));

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}
