using Celeriac.Redis;
using Celeriac.Tests.Support;
using StackExchange.Redis;

namespace Celeriac.Tests.Redis;

/// <summary>
/// A worker with its broker on db 0 and its result backend on db 1 has a connection to each database of one server:
/// one outage of that server is said once when it starts and once when it ends, however many of them see it.
/// </summary>
public sealed class RedisOutageLogTests
{
    private static readonly RedisConnectionException s_gone = new RedisConnectionException(ConnectionFailureType.SocketClosed, CommandFlags.None, "SocketClosed", null, CommandStatus.Unknown);

    // Unreachable (400) or, before the server first answered, NeverReached (407); Reachable is 401.
    private static int Down(CollectingLoggerFactory log) => log.Count(400) + log.Count(407);

    [Fact]
    public async Task TwoDatabasesOfOneServer_OneOutage_SaidOnceDownAndOnceUp_AnotherServerSaysItsOwn()
    {
        // A password of its own keeps this server apart from every other test's (outages are shared per process).
        string server = "redis://:" + Guid.NewGuid().ToString("N") + "@127.0.0.1:1";
        var log = new CollectingLoggerFactory();
        RedisConnection broker = RedisConnection.Acquire(RedisEndpoint.Parse(new Uri(server + "/0")), log);
        RedisConnection backend = RedisConnection.Acquire(RedisEndpoint.Parse(new Uri(server + "/1")), log);
        RedisConnection other = RedisConnection.Acquire(RedisEndpoint.Parse(new Uri("redis://:" + Guid.NewGuid().ToString("N") + "@127.0.0.1:1/0")), log);
        try
        {
            Assert.NotSame(broker, backend);

            broker.MarkDown(s_gone);
            backend.MarkDown(s_gone);
            Assert.Equal(1, Down(log));

            other.MarkDown(s_gone);
            Assert.Equal(2, Down(log));

            // Back: a reply a while (1 s) after the last failure ends the outage; the other database's reply after
            // that ends nothing more.
            await Task.Delay(TimeSpan.FromMilliseconds(1100), TestContext.Current.CancellationToken);
            backend.MarkUp();
            Assert.Equal(1, log.Count(401));
            broker.MarkUp();
            Assert.Equal(1, log.Count(401));

            // A later outage of the server is a new one, said again.
            broker.MarkDown(s_gone);
            Assert.Equal(3, Down(log));
        }
        finally
        {
            await broker.ReleaseAsync();
            await backend.ReleaseAsync();
            await other.ReleaseAsync();
        }
    }

    [Fact]
    public async Task AnOutageNeverSeenToEnd_IsForgottenWithTheServersLastConnection_ALaterAppSaysItAgain()
    {
        string url = "redis://:" + Guid.NewGuid().ToString("N") + "@127.0.0.1:1/0";
        var log = new CollectingLoggerFactory();

        RedisConnection first = RedisConnection.Acquire(RedisEndpoint.Parse(new Uri(url)), log);
        first.MarkDown(s_gone);
        await first.ReleaseAsync();
        Assert.Equal(1, Down(log));

        RedisConnection later = RedisConnection.Acquire(RedisEndpoint.Parse(new Uri(url.Replace("/0", "/1", StringComparison.Ordinal))), log);
        try
        {
            later.MarkDown(s_gone);
            Assert.Equal(2, Down(log));
        }
        finally
        {
            await later.ReleaseAsync();
        }
    }
}
