using System.Diagnostics;
using System.Text;
using Celeriac.Database;
using Celeriac.Results;
using Celeriac.TestServers;

namespace Celeriac.Tests.Conformance;

/// <summary>
/// The database result backend and its server's outages: a server never reached fails after the connect timeout with a
/// clear error; a server that answered before and restarts is waited for, and a result written meanwhile is kept.
/// </summary>
public sealed class DatabaseOutageTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("db+postgresql")]
    [InlineData("db+mysql")]
    public async Task NeverReached_ReadAndWait_BrokerUnreachableAfterTheConnectTimeout_PasswordMasked(string scheme)
    {
        int port = FreePort.Next();
        await using var backend = new DatabaseResultBackend(new ResultBackendOptions
        {
            Url = new Uri($"{scheme}://celery:s3cret@127.0.0.1:{port}/results"),
            ConnectTimeout = TimeSpan.FromSeconds(1),
        });

        // Both ways a client asks for a result: a read, and a wait (on PostgreSQL it first sets up LISTEN).
        Func<Task>[] calls = [async () => await backend.GetAsync("t1", Ct), async () => await backend.WaitAsync("t1", Ct)];
        foreach (Func<Task> call in calls)
        {
            long start = Stopwatch.GetTimestamp();
            BrokerUnreachableException e = await Assert.ThrowsAsync<BrokerUnreachableException>(call);
            TimeSpan took = Stopwatch.GetElapsedTime(start);

            Assert.InRange(took, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(8));
            Assert.Equal($"{scheme}://celery:**@127.0.0.1:{port}/results", e.Url);
            Assert.Contains($"Cannot reach {scheme}://celery:**@127.0.0.1:{port}/results", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("s3cret", e.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task PostgresRestarted_AResultWrittenWhileItIsDown_IsStoredOnceItIsBack()
    {
        await using PostgresServer server = await PostgresServer.StartAsync(ct: Ct);
        string url = server.Url(await server.CreateDatabaseAsync(Ct), "db+postgresql");
        await using var backend = new DatabaseResultBackend(new ResultBackendOptions { Url = new Uri(url), ConnectTimeout = TimeSpan.FromSeconds(1) });
        await backend.StoreAsync(Success("before"), Ct);

        await server.StopAsync();
        Task write = backend.StoreAsync(Success("during"), Ct).AsTask();

        // A backend that never reached the server gives up after its connect timeout; the one that did, started as
        // early, is still waiting: a restart is waited for, not given up on.
        await using var fresh = new DatabaseResultBackend(new ResultBackendOptions { Url = new Uri(url), ConnectTimeout = TimeSpan.FromSeconds(1) });
        await Assert.ThrowsAsync<BrokerUnreachableException>(async () => await fresh.GetAsync("during", Ct));
        Assert.False(write.IsCompleted, write.Exception?.ToString());
        await server.StartAgainAsync(Ct);
        await write.WaitAsync(TimeSpan.FromSeconds(60), Ct);

        TaskResultMeta? got = await backend.GetAsync("during", Ct);
        Assert.NotNull(got);
        Assert.Equal(TaskStates.Success, got.Status);
        Assert.Equal("42", Encoding.UTF8.GetString(got.Result.Span));
        Assert.NotNull(await backend.GetAsync("before", Ct));
    }

    private static TaskResultMeta Success(string id) => new()
    {
        TaskId = id,
        Status = TaskStates.Success,
        Result = "42"u8.ToArray(),
        DateDone = new DateTimeOffset(2026, 12, 5, 12, 0, 0, TimeSpan.Zero),
    };
}
