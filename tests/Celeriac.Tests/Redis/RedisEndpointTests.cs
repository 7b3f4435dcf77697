using Celeriac.Control;
using Celeriac.Redis;
using Microsoft.Extensions.Time.Testing;

namespace Celeriac.Tests.Redis;

public sealed class RedisEndpointTests
{
    [Theory]
    [InlineData("redis://127.0.0.1:6390/3", "127.0.0.1:6390", 3, null, null, false)]
    [InlineData("redis://localhost", "Unspecified/localhost:6379", 0, null, null, false)]
    [InlineData("redis://:s%40cret@127.0.0.1:6379/0", "127.0.0.1:6379", 0, null, "s@cret", false)]
    [InlineData("redis://bob:pw@127.0.0.1/1", "127.0.0.1:6379", 1, "bob", "pw", false)]
    [InlineData("rediss://127.0.0.1:6380/2", "127.0.0.1:6380", 2, null, null, true)]
    public void Parse_TcpUrls_GiveKombusMeaning(string url, string endpoint, int db, string? user, string? password, bool tls)
    {
        RedisEndpoint e = RedisEndpoint.Parse(new Uri(url));

        Assert.Equal(endpoint, Assert.Single(e.Configuration.EndPoints).ToString());
        Assert.Equal((db, user, password, tls), (e.Database, e.Configuration.User, e.Configuration.Password, e.Configuration.Ssl));
        Assert.DoesNotContain("cret", e.Display, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_SocketUrlAndKeyPrefix()
    {
        RedisEndpoint e = RedisEndpoint.Parse(new Uri("redis+socket:///run/redis/redis.sock?virtual_host=4&global_keyprefix=app1:"));

        Assert.Contains("/run/redis/redis.sock", Assert.Single(e.Configuration.EndPoints).ToString(), StringComparison.Ordinal);
        Assert.Equal((4, "app1:"), (e.Database, e.KeyPrefix));
    }

    [Fact]
    public void Parse_OneServerTwoDatabases_TwoConnections()
    {
        Assert.NotEqual(RedisEndpoint.Parse(new Uri("redis://127.0.0.1:6379/0")).ServerKey, RedisEndpoint.Parse(new Uri("redis://127.0.0.1:6379/1")).ServerKey);
    }

    [Theory]
    [InlineData("redis://127.0.0.1:6379/zero", "the database must be a number")]
    [InlineData("redis+socket://", "names no socket file")]
    public void Parse_BadUrl_ClearError(string url, string reason)
    {
        var error = Assert.Throws<CeleriacConfigurationException>(() => RedisEndpoint.Parse(new Uri(url)));
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, "celery")]
    [InlineData(2, "celery")]
    [InlineData(3, "celery" + RedisTransport.Separator + "3")]
    [InlineData(5, "celery" + RedisTransport.Separator + "3")]
    [InlineData(8, "celery" + RedisTransport.Separator + "6")]
    [InlineData(9, "celery" + RedisTransport.Separator + "9")]
    [InlineData(200, "celery" + RedisTransport.Separator + "9")]
    public void ListName_PriorityStepsOfKombu(int priority, string list) => Assert.Equal(list, RedisTransport.ListName("celery", priority));

    [Theory]
    [InlineData("celery", "celery", true)]
    [InlineData("celery", "celeryx", false)]
    [InlineData("worker.#", "worker.online", true)]
    [InlineData("worker.#", "worker", true)]
    [InlineData("worker.*", "worker.a.b", false)]
    [InlineData("*.b", "a.b", true)]
    [InlineData("#", "anything.at.all", true)]
    public void TopicMatches_AmqpTopicRules(string pattern, string key, bool matches) => Assert.Equal(matches, Celeriac.Transport.TopicKeys.Matches(pattern, key));
}

public sealed class RevokedTasksTests
{
    [Fact]
    public void Contains_ForgetsAfterThreeHours()
    {
        var time = new FakeTimeProvider();
        var revoked = new RevokedTasks(time);
        revoked.Add(["a", "b"]);

        Assert.True(revoked.Contains("a"));
        Assert.False(revoked.Contains("c"));
        time.Advance(RevokedTasks.Expiry - TimeSpan.FromSeconds(1));
        Assert.True(revoked.Contains("b"));
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.False(revoked.Contains("b"));
    }

    [Fact]
    public void Add_BeyondTheLimit_ForgetsTheOldest()
    {
        var revoked = new RevokedTasks(new FakeTimeProvider());
        revoked.Add(Enumerable.Range(0, RevokedTasks.MaxCount + 10).Select(i => "t" + i));

        Assert.Equal(RevokedTasks.MaxCount, revoked.Count);
        Assert.False(revoked.Contains("t0"));
        Assert.True(revoked.Contains("t" + (RevokedTasks.MaxCount + 9)));
    }
}
