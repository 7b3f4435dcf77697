using System.Globalization;
using System.Numerics;
using redis.exceptions;
using StackExchange.Redis;

namespace Celeriac.SuiteWorker;

/// <summary>
/// The suite's <c>get_redis_connection()</c>: Redis at <c>REDIS_HOST</c> (default localhost) and <c>REDIS_PORT</c>
/// (default 6379, as redis-py's), database 0. scripts/celery-suite.sh sets both for the worker and for its copy of
/// the suite's conftest.py, so tasks and tests meet on the same private Redis.
/// </summary>
internal static class SuiteRedis
{
    private static readonly Lazy<ConnectionMultiplexer> s_connection = new(Connect, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Database 0.</summary>
    public static IDatabase Db => s_connection.Value.GetDatabase(0);

    /// <summary>A value as redis-py writes it: a string as is, a number as Python's <c>repr</c>; anything else is a <c>DataError</c>.</summary>
    public static RedisValue Encode(object? value) => value switch
    {
        string s => s,
        long or BigInteger or double => Py.Str(value),
        _ => throw new DataError($"Invalid input of type: '{Py.TypeName(value)}'. Convert to a bytes, string, int or float first."),
    };

    private static ConnectionMultiplexer Connect()
    {
        string host = Environment.GetEnvironmentVariable("REDIS_HOST") is { Length: > 0 } h ? h : "localhost";
        int port = Environment.GetEnvironmentVariable("REDIS_PORT") is { Length: > 0 } p ? int.Parse(p, CultureInfo.InvariantCulture) : 6379;
        var options = new ConfigurationOptions { AbortOnConnectFail = false, ConnectTimeout = 5000 };
        options.EndPoints.Add(host, port);
        return ConnectionMultiplexer.Connect(options);
    }
}
