using Celeriac.Sqlite;
using Celeriac.Worker;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;

namespace Celeriac.Tests.Sqlite;

public sealed class SqliteWorkerSharingTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-sqlite-").FullName;

    private string FilePath => Path.Join(_directory, "shared.db");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>An app whose broker and backend have a connection of their own, as a separate process has.</summary>
    private CeleriacApp NewApp()
    {
        var app = new CeleriacApp(new CeleriacOptions
        {
            BrokerUrl = "sqlite:///" + FilePath,
            Concurrency = 4,
            VisibilityTimeout = TimeSpan.FromSeconds(2),
        });
        app.Providers.AddTransport("sqlite", o => new SqliteTransport(o, SqliteStore.OpenPrivate(FilePath, NullLoggerFactory.Instance)));
        app.Providers.AddResultBackend("sqlite", o => new SqliteResultBackend(o, SqliteStore.OpenPrivate(FilePath, NullLoggerFactory.Instance)));
        return app;
    }

    [Fact]
    public async Task TwoWorkersOnOneFile_4000Tasks_EachRunsExactlyOnce()
    {
        const int count = 4000;
        int[] runs = new int[count];
        await using CeleriacApp first = NewApp();
        await using CeleriacApp second = NewApp();
        foreach (CeleriacApp app in new[] { first, second })
        {
            app.Task("tests.mark", (int i) =>
            {
                Interlocked.Increment(ref runs[i]);
                return i;
            });
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var w1 = new CeleriacWorker(first);
        var w2 = new CeleriacWorker(second);
        Task run1 = w1.RunAsync(stop.Token);
        Task run2 = w2.RunAsync(stop.Token);
        await Task.WhenAll(w1.Ready, w2.Ready).WaitAsync(TimeSpan.FromSeconds(10), Ct);

        // Half the calls from each app, all at once, so publishes group-commit and workers race for rows.
        AsyncResult[] results = await Task.WhenAll(Enumerable.Range(0, count).Select(i =>
            (i % 2 == 0 ? first : second).SendTaskAsync("tests.mark", [i], ct: Ct)));

        int last = results.Length - 1;
        int done = 0;
        long started = TimeProvider.System.GetTimestamp();
        while (TimeProvider.System.GetElapsedTime(started) < TimeSpan.FromSeconds(60) && (done = runs.Count(r => r > 0)) < count)
        {
            await Task.Delay(50, Ct);
        }

        Assert.Equal(count, done);
        Assert.Equal(last, await results[last].GetAsync<int>(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(7, await results[7].GetAsync<int>(TimeSpan.FromSeconds(10), Ct));

        // Past the visibility timeout: a lost lease would show up as a second run now.
        await Task.Delay(TimeSpan.FromSeconds(2.5), Ct);
        Assert.All(runs, r => Assert.Equal(1, r));
        Assert.Equal(count, w1.Processed + w2.Processed);
        Assert.True(w1.Processed > 0 && w2.Processed > 0, $"split {w1.Processed}/{w2.Processed}");
        await stop.CancelAsync();
        await Task.WhenAll(run1, run2).WaitAsync(TimeSpan.FromSeconds(10), Ct);
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}
