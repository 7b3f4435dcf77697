using System.Globalization;
using System.Net;
using System.Text.Json;
using StackExchange.Redis;

namespace Celeriac.Dashboard.Store;

/// <summary>
/// A store on Redis (<c>redis://[:password@]host:port/db[?prefix=P]</c>), under the key prefix <c>P</c>
/// (<c>celeriac-dashboard:</c> unless given): a task is a hash (<c>P task:id</c>, a field per set value, so an update's
/// null field keeps the stored one), ordered by the sorted sets <c>P ts</c> (by timestamp) and <c>P received</c>,
/// indexed by a set per state, name, worker, parent and retried task (<c>P state:SUCCESS</c>, ...); a task's events are a list (<c>P events:id</c>),
/// workers one hash (<c>P workers</c>). A batch is one Lua script (one round trip, applied atomically).
/// </summary>
/// <remarks>
/// Bounded work: the newest-first list without filters reads only its page; any filter or search reads every candidate
/// task (all tasks, or those of the state, name, worker, parent or retried task the query pins) and applies
/// <see cref="TaskSearch.Matches(DashboardTask)"/> in this process, so a search over N stored tasks reads N hashes.
/// Stats read the tasks since their start. Pruning removes at most 1,000 tasks per script, so that Redis is never
/// blocked long, and repeats until done. The scripts name keys they compute, so the store needs a single Redis, not a cluster.
/// </remarks>
public sealed class RedisDashboardStore : IDashboardStore
{
    /// <summary>The key prefix when the URL gives none.</summary>
    public const string DefaultPrefix = "celeriac-dashboard:";

    private const int PruneChunk = 1000;
    private const int ReadChunk = 1000;

    private static readonly JsonSerializerOptions s_json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    // Fields with a set of their own (exact values), so a filter on them reads only its candidates.
    private static readonly string[] s_indexed = ["state", "name", "worker", "parent_id", "retry_of"];

    private const string WriteScript = """
        local p = ARGV[1]
        local indexed = {'state', 'name', 'worker', 'parent_id', 'retry_of'}
        local i = 2
        local nt = tonumber(ARGV[i]); i = i + 1
        for _ = 1, nt do
          local uuid = ARGV[i]; local nf = tonumber(ARGV[i + 1]); i = i + 2
          local key = p .. 'task:' .. uuid
          local old = redis.call('HMGET', key, unpack(indexed))
          local fields = {}
          local new = {}
          for _ = 1, nf do
            local k, v = ARGV[i], ARGV[i + 1]; i = i + 2
            fields[#fields + 1] = k; fields[#fields + 1] = v
            new[k] = v
          end
          redis.call('HSET', key, unpack(fields))
          for j, f in ipairs(indexed) do
            local v = new[f]
            if v and v ~= old[j] then
              if old[j] then
                local set = p .. f .. ':' .. old[j]
                redis.call('SREM', set, uuid)
                if redis.call('SCARD', set) == 0 then redis.call('SREM', p .. 'values:' .. f, old[j]) end
              end
              redis.call('SADD', p .. f .. ':' .. v, uuid)
              redis.call('SADD', p .. 'values:' .. f, v)
            end
          end
          redis.call('ZADD', p .. 'ts', new['timestamp'], uuid)
          if new['received'] then redis.call('ZADD', p .. 'received', new['received'], uuid) end
        end
        local ne = tonumber(ARGV[i]); i = i + 1
        for _ = 1, ne do
          redis.call('RPUSH', p .. 'events:' .. ARGV[i], ARGV[i + 1]); i = i + 2
        end
        local nw = tonumber(ARGV[i]); i = i + 1
        for _ = 1, nw do
          redis.call('HSET', p .. 'workers', ARGV[i], ARGV[i + 1]); i = i + 2
        end
        return nt
        """;

    private const string PruneScript = """
        local p, older, max, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
        local indexed = {'state', 'name', 'worker', 'parent_id', 'retry_of'}
        local ids = redis.call('ZRANGEBYSCORE', p .. 'ts', '-inf', '(' .. older, 'LIMIT', 0, limit)
        if #ids < limit then
          local over = redis.call('ZCARD', p .. 'ts') - #ids - max
          if over > 0 then
            local more = redis.call('ZRANGE', p .. 'ts', #ids, #ids + math.min(over, limit - #ids) - 1)
            for _, id in ipairs(more) do ids[#ids + 1] = id end
          end
        end
        for _, uuid in ipairs(ids) do
          local key = p .. 'task:' .. uuid
          local old = redis.call('HMGET', key, unpack(indexed))
          for j, f in ipairs(indexed) do
            if old[j] then
              local set = p .. f .. ':' .. old[j]
              redis.call('SREM', set, uuid)
              if redis.call('SCARD', set) == 0 then redis.call('SREM', p .. 'values:' .. f, old[j]) end
            end
          end
          redis.call('DEL', key, p .. 'events:' .. uuid)
          redis.call('ZREM', p .. 'ts', uuid)
          redis.call('ZREM', p .. 'received', uuid)
        end
        return #ids
        """;

    private readonly ConnectionMultiplexer _connection;
    private readonly IDatabase _db;
    private readonly string _prefix;

    private RedisDashboardStore(ConnectionMultiplexer connection, int database, string prefix)
    {
        _connection = connection;
        _db = connection.GetDatabase(database);
        _prefix = prefix;
    }

    /// <summary>The key prefix.</summary>
    public string Prefix => _prefix;

    /// <summary>Connects to the Redis a URL names (<c>redis://[:password@]host:port/db[?prefix=P]</c>).</summary>
    public static async Task<RedisDashboardStore> OpenAsync(string url, CancellationToken ct = default)
    {
        (ConfigurationOptions config, int database, string prefix) = ParseUrl(url);
        ConnectionMultiplexer connection = await ConnectionMultiplexer.ConnectAsync(config).WaitAsync(ct).ConfigureAwait(false);
        return new RedisDashboardStore(connection, database, prefix);
    }

    /// <summary>Reads a store URL; an <see cref="ArgumentException"/> says what is wrong with it.</summary>
    internal static (ConfigurationOptions Config, int Database, string Prefix) ParseUrl(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out Uri? uri) || !uri.Scheme.Equals("redis", StringComparison.OrdinalIgnoreCase) || uri.Host.Length == 0)
        {
            throw new ArgumentException($"bad Redis store URL: write redis://[:password@]host:port/db[?prefix=P]");
        }

        string path = uri.AbsolutePath.Trim('/');
        int database = 0;
        if (path.Length > 0 && (!int.TryParse(path, NumberStyles.None, CultureInfo.InvariantCulture, out database) || database > 15_999))
        {
            throw new ArgumentException($"bad Redis store URL: the database '{path}' is not a number (redis://host:port/db)");
        }

        string prefix = DefaultPrefix;
        foreach (string pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] kv = pair.Split('=', 2);
            if (kv[0] == "prefix" && kv.Length == 2)
            {
                prefix = Uri.UnescapeDataString(kv[1]);
            }
            else
            {
                throw new ArgumentException($"bad Redis store URL: unknown option '{kv[0]}' (the store takes ?prefix=P)");
            }
        }

        string host = uri.Host.Trim('[', ']');
        int port = uri.IsDefaultPort || uri.Port <= 0 ? 6379 : uri.Port;
        var config = new ConfigurationOptions
        {
            AbortOnConnectFail = false,
            ConnectTimeout = 5000,
            AsyncTimeout = 30_000,
            SyncTimeout = 30_000,
            ClientName = "celeriac-dashboard",
        };
        config.EndPoints.Add(IPAddress.TryParse(host, out IPAddress? ip) ? new IPEndPoint(ip, port) : new DnsEndPoint(host, port));
        if (uri.UserInfo.Length > 0)
        {
            string[] parts = uri.UserInfo.Split(':', 2);
            if (parts[0].Length > 0)
            {
                config.User = Uri.UnescapeDataString(parts[0]);
            }

            if (parts.Length == 2)
            {
                config.Password = Uri.UnescapeDataString(parts[1]);
            }
        }

        return (config, database, prefix);
    }

    /// <inheritdoc />
    public async ValueTask WriteAsync(DashboardBatch batch, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var args = new List<RedisValue>((batch.Tasks.Count * 24) + (batch.Events.Count * 2) + (batch.Workers.Count * 2) + 4) { _prefix, batch.Tasks.Count };
        foreach (DashboardTask t in batch.Tasks)
        {
            args.Add(t.Uuid);
            int countAt = args.Count;
            args.Add(0);
            int fields = 0;
            foreach ((string name, string? value) in Fields(t))
            {
                if (value is not null)
                {
                    args.Add(name);
                    args.Add(value);
                    fields++;
                }
            }

            args[countAt] = fields;
        }

        args.Add(batch.Events.Count);
        foreach (TaskEventRecord e in batch.Events)
        {
            args.Add(e.Uuid);
            args.Add(JsonSerializer.Serialize(e, s_json));
        }

        args.Add(batch.Workers.Count);
        foreach (DashboardWorker w in batch.Workers)
        {
            args.Add(w.Hostname);
            args.Add(JsonSerializer.Serialize(w, s_json));
        }

        await _db.ScriptEvaluateAsync(WriteScript, values: [.. args]).WaitAsync(ct).ConfigureAwait(false);
    }

    private static string D(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static string? D(double? value) => value is { } v ? D(v) : null;

    private static string? L(long? value) => value?.ToString(CultureInfo.InvariantCulture);

    private static IEnumerable<(string Name, string? Value)> Fields(DashboardTask t) =>
    [
        ("uuid", t.Uuid), ("state", t.State), ("name", t.Name), ("sent", D(t.Sent)), ("received", D(t.Received)), ("started", D(t.Started)),
        ("succeeded", D(t.Succeeded)), ("failed", D(t.Failed)), ("retried", D(t.Retried)), ("revoked", D(t.Revoked)), ("rejected", D(t.Rejected)),
        ("timestamp", D(t.Timestamp)), ("runtime", D(t.Runtime)), ("args", t.Args), ("kwargs", t.Kwargs), ("result", t.Result),
        ("exception", t.Exception), ("traceback", t.Traceback), ("worker", t.Worker), ("retries", L(t.Retries)), ("eta", t.Eta),
        ("expires", t.Expires), ("routing_key", t.RoutingKey), ("exchange", t.Exchange), ("root_id", t.RootId), ("parent_id", t.ParentId),
        ("client", t.Client), ("clock", L(t.Clock)), ("retry_of", t.RetryOf),
    ];

    private static DashboardTask? ReadTask(HashEntry[] entries)
    {
        if (entries.Length == 0)
        {
            return null;
        }

        var f = new Dictionary<string, string>(entries.Length, StringComparer.Ordinal);
        foreach (HashEntry e in entries)
        {
            f[e.Name!] = e.Value!;
        }

        string? S(string name) => f.GetValueOrDefault(name);
        double? Dn(string name) => f.TryGetValue(name, out string? v) ? double.Parse(v, CultureInfo.InvariantCulture) : null;
        long? Ln(string name) => f.TryGetValue(name, out string? v) ? long.Parse(v, CultureInfo.InvariantCulture) : null;
        return new DashboardTask
        {
            Uuid = f["uuid"], State = S("state") ?? "PENDING", Name = S("name"), Sent = Dn("sent"), Received = Dn("received"), Started = Dn("started"),
            Succeeded = Dn("succeeded"), Failed = Dn("failed"), Retried = Dn("retried"), Revoked = Dn("revoked"), Rejected = Dn("rejected"),
            Timestamp = Dn("timestamp") ?? 0, Runtime = Dn("runtime"), Args = S("args"), Kwargs = S("kwargs"), Result = S("result"),
            Exception = S("exception"), Traceback = S("traceback"), Worker = S("worker"), Retries = Ln("retries"), Eta = S("eta"),
            Expires = S("expires"), RoutingKey = S("routing_key"), Exchange = S("exchange"), RootId = S("root_id"), ParentId = S("parent_id"),
            Client = S("client"), Clock = Ln("clock") ?? 0, RetryOf = S("retry_of"),
        };
    }

    private RedisKey Key(string name) => _prefix + name;

    /// <inheritdoc />
    public async ValueTask<DashboardTask?> GetTaskAsync(string uuid, CancellationToken ct = default) =>
        ReadTask(await _db.HashGetAllAsync(Key("task:" + uuid)).WaitAsync(ct).ConfigureAwait(false));

    /// <summary>Tasks by id, read in pipelined chunks; ids gone meanwhile (pruned) are left out.</summary>
    private async Task<List<DashboardTask>> ReadTasksAsync(List<string> ids, CancellationToken ct)
    {
        var tasks = new List<DashboardTask>(ids.Count);
        for (int start = 0; start < ids.Count; start += ReadChunk)
        {
            IBatch batch = _db.CreateBatch();
            var reads = new List<Task<HashEntry[]>>(Math.Min(ReadChunk, ids.Count - start));
            for (int i = start; i < Math.Min(ids.Count, start + ReadChunk); i++)
            {
                reads.Add(batch.HashGetAllAsync(Key("task:" + ids[i])));
            }

            batch.Execute();
            foreach (Task<HashEntry[]> read in reads)
            {
                if (ReadTask(await read.WaitAsync(ct).ConfigureAwait(false)) is { } task)
                {
                    tasks.Add(task);
                }
            }
        }

        return tasks;
    }

    /// <inheritdoc />
    public async ValueTask<TaskPage> QueryTasksAsync(TaskQuery query, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        (string field, bool descending) = query.Sort();
        int offset = Math.Max(0, query.Offset), limit = Math.Max(0, query.Limit);
        bool filtered = query.Name is not null || query.Worker is not null || query.State is not null || query.ParentId is not null
            || query.RetryOf is not null || query.ReceivedStart is not null || query.ReceivedEnd is not null || query is { Search.MatchesAll: false };
        if (!filtered && field == "timestamp")
        {
            // The sorted set's order is the query's: by timestamp, then by id (Redis orders equal scores by member).
            long total = await _db.SortedSetLengthAsync(Key("ts")).WaitAsync(ct).ConfigureAwait(false);
            if (limit == 0 || offset >= total)
            {
                return new TaskPage(total, []);
            }

            RedisValue[] page = await _db.SortedSetRangeByRankAsync(Key("ts"), offset, offset + limit - 1, descending ? Order.Descending : Order.Ascending)
                .WaitAsync(ct).ConfigureAwait(false);
            return new TaskPage(total, await ReadTasksAsync([.. page.Select(v => (string)v!)], ct).ConfigureAwait(false));
        }

        // The candidates' searchable and sortable fields only; then the whole of the page's tasks.
        List<string> candidates = await CandidatesAsync(query, ct).ConfigureAwait(false);
        RedisValue[] fields = [.. s_filterFields.Append(field).Distinct(StringComparer.Ordinal).Select(f => (RedisValue)f)];
        List<DashboardTask> matches = (await ReadTasksAsync(candidates, fields, ct).ConfigureAwait(false)).Where(t => MemoryDashboardStore.Filter(query, t)).ToList();
        List<string> pageIds = [.. MemoryDashboardStore.Sorted(matches, field, descending).Skip(offset).Take(limit).Select(t => t.Uuid)];
        return new TaskPage(matches.Count, await ReadTasksAsync(pageIds, ct).ConfigureAwait(false));
    }

    // What MemoryDashboardStore.Filter and TaskSearch.Matches read.
    private static readonly string[] s_filterFields = ["uuid", "state", "name", "worker", "args", "kwargs", "result", "received", "parent_id", "retry_of", "timestamp"];

    // HMGET of the same fields for many tasks in one call: a chunk is one round trip and one reply, not a command per task.
    private const string ReadFieldsScript = """
        local p, nf = ARGV[1], tonumber(ARGV[2])
        local fields = {}
        for i = 1, nf do fields[i] = ARGV[2 + i] end
        local out = {}
        for i = 3 + nf, #ARGV do
          local values = redis.call('HMGET', p .. 'task:' .. ARGV[i], unpack(fields))
          for j = 1, nf do out[#out + 1] = values[j] end
        end
        return out
        """;

    /// <summary>Some fields of tasks by id, read in chunks of one script call each; ids gone meanwhile are left out.</summary>
    private async Task<List<DashboardTask>> ReadTasksAsync(List<string> ids, RedisValue[] fields, CancellationToken ct)
    {
        var tasks = new List<DashboardTask>(ids.Count);
        for (int start = 0; start < ids.Count; start += ReadChunk)
        {
            int end = Math.Min(ids.Count, start + ReadChunk);
            RedisValue[] args = [_prefix, fields.Length, .. fields, .. ids.Skip(start).Take(end - start).Select(id => (RedisValue)id)];
            var values = (RedisValue[])(await _db.ScriptEvaluateAsync(ReadFieldsScript, values: args).WaitAsync(ct).ConfigureAwait(false))!;
            for (int row = 0; row < end - start; row++)
            {
                ArraySegment<RedisValue> task = new(values, row * fields.Length, fields.Length);
                if (!task[0].IsNull && ReadTask([.. fields.Zip(task).Where(p => !p.Second.IsNull).Select(p => new HashEntry(p.First, p.Second))]) is { } read)
                {
                    tasks.Add(read);
                }
            }
        }

        return tasks;
    }

    /// <summary>Every task that can match: the intersection of the index sets the query pins, or all tasks.</summary>
    private async Task<List<string>> CandidatesAsync(TaskQuery query, CancellationToken ct)
    {
        HashSet<string>? ids = null;
        async Task Narrow(Func<Task<IEnumerable<string>>> read)
        {
            if (ids is { Count: 0 })
            {
                return;
            }

            IEnumerable<string> found = await read().ConfigureAwait(false);
            if (ids is null)
            {
                ids = new HashSet<string>(found, StringComparer.Ordinal);
            }
            else
            {
                ids.IntersectWith(found);
            }
        }

        async Task<IEnumerable<string>> Members(string field, string value) =>
            (await _db.SetMembersAsync(Key(field + ":" + value)).WaitAsync(ct).ConfigureAwait(false)).Select(v => (string)v!);

        // The search's own state: or name: terms pick the sets whose value matches as the search compares it.
        async Task<IEnumerable<string>> MembersWhere(string field, Func<string, bool> matches)
        {
            var all = new List<string>();
            foreach (RedisValue value in await _db.SetMembersAsync(Key("values:" + field)).WaitAsync(ct).ConfigureAwait(false))
            {
                if (matches(value!))
                {
                    all.AddRange(await Members(field, value!).ConfigureAwait(false));
                }
            }

            return all;
        }

        foreach ((string field, string? value) in new[] { ("state", query.State), ("name", query.Name), ("worker", query.Worker), ("parent_id", query.ParentId), ("retry_of", query.RetryOf) })
        {
            if (value is not null)
            {
                await Narrow(() => Members(field, value)).ConfigureAwait(false);
            }
        }

        if (query.Search?.Required("state") is { } state)
        {
            await Narrow(() => MembersWhere("state", s => string.Equals(s.ToLowerInvariant(), state, StringComparison.Ordinal))).ConfigureAwait(false);
        }

        if (query.Search?.Required("name") is { Length: > 0 } name)
        {
            await Narrow(() => MembersWhere("name", n => n.ToLowerInvariant().Contains(name, StringComparison.Ordinal))).ConfigureAwait(false);
        }

        if (ids is not null)
        {
            return [.. ids];
        }

        return [.. (await _db.SortedSetRangeByRankAsync(Key("ts")).WaitAsync(ct).ConfigureAwait(false)).Select(v => (string)v!)];
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<TaskEventRecord>> GetEventsAsync(string uuid, int limit = 1000, CancellationToken ct = default)
    {
        if (limit <= 0)
        {
            return [];
        }

        RedisValue[] items = await _db.ListRangeAsync(Key("events:" + uuid), 0, limit - 1).WaitAsync(ct).ConfigureAwait(false);
        return [.. items.Select(i => JsonSerializer.Deserialize<TaskEventRecord>((string)i!, s_json)).OfType<TaskEventRecord>()];
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<DashboardWorker>> GetWorkersAsync(CancellationToken ct = default)
    {
        HashEntry[] entries = await _db.HashGetAllAsync(Key("workers")).WaitAsync(ct).ConfigureAwait(false);
        return [.. entries.Select(e => JsonSerializer.Deserialize<DashboardWorker>((string)e.Value!, s_json)).OfType<DashboardWorker>()
            .OrderBy(w => w.Hostname, StringComparer.Ordinal)];
    }

    /// <inheritdoc />
    public async ValueTask<DashboardStats> GetStatsAsync(double since, CancellationToken ct = default)
    {
        RedisValue[] byTimestamp = await _db.SortedSetRangeByScoreAsync(Key("ts"), since, double.PositiveInfinity).WaitAsync(ct).ConfigureAwait(false);
        RedisValue[] byReceived = await _db.SortedSetRangeByScoreAsync(Key("received"), since, double.PositiveInfinity).WaitAsync(ct).ConfigureAwait(false);
        var ids = new HashSet<string>(byTimestamp.Select(v => (string)v!), StringComparer.Ordinal);
        ids.UnionWith(byReceived.Select(v => (string)v!));
        var stats = new StatsBuilder(since);
        foreach (DashboardTask t in await ReadTasksAsync([.. ids], ct).ConfigureAwait(false))
        {
            stats.Add(t.Name, t.Received, t.Succeeded, t.Failed, t.Retried, t.Revoked, t.Runtime);
        }

        return stats.Build();
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<string>> GetTaskNamesAsync(CancellationToken ct = default) =>
        [.. (await _db.SetMembersAsync(Key("values:name")).WaitAsync(ct).ConfigureAwait(false)).Select(v => (string)v!).Order(StringComparer.Ordinal)];

    /// <inheritdoc />
    public async ValueTask<long> PruneAsync(int maxTasks, double olderThan, CancellationToken ct = default)
    {
        long removed = 0;

        // Bounded by count as well as by the chunk: a write racing the prune cannot keep it looping.
        for (int round = 0; round < 100_000; round++)
        {
            var gone = (long)await _db.ScriptEvaluateAsync(PruneScript, values: [_prefix, D(olderThan), Math.Max(0, maxTasks), PruneChunk])
                .WaitAsync(ct).ConfigureAwait(false);
            removed += gone;
            if (gone < PruneChunk)
            {
                break;
            }
        }

        return removed;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await _connection.DisposeAsync().ConfigureAwait(false);
}
