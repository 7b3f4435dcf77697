namespace Celeriac.PostgreSql;

/// <summary>The broker's tables (<c>schema.sql</c>, embedded) and its statements.</summary>
internal static class Schema
{
    /// <summary>The channel publishers notify with a queue's name when they put messages in it.</summary>
    public const string MessagesChannel = "celeriac_messages";

    /// <summary>The channel of fanout exchanges (events, remote control).</summary>
    public const string FanoutChannel = "celeriac_fanout";

    /// <summary>The idempotent creation script, as shipped beside the assembly for teams that manage schemas.</summary>
    public static string Script { get; } = ReadScript();

    private static string ReadScript()
    {
        using Stream stream = typeof(Schema).Assembly.GetManifestResourceStream("Celeriac.PostgreSql.schema.sql")
            ?? throw new InvalidOperationException("schema.sql is not embedded in Celeriac.PostgreSql.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    public const string TablesExist = """
        SELECT to_regclass('celeriac_messages') IS NOT NULL AND to_regclass('celeriac_exchanges') IS NOT NULL
            AND to_regclass('celeriac_bindings') IS NOT NULL AND to_regclass('celeriac_fanout') IS NOT NULL
        """;

    // Routing and notifying in one statement (and so one transaction), for the publishes of the moment together: each
    // message goes to the queues bound to its exchange with its key, else (the default exchange, or no binding) to the
    // queue named by its key, as Celery's default exchanges route. Messages keep their order (ids follow the unnest
    // order); each target queue is notified once, at commit.
    public const string Publish = """
        WITH m AS (
            SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[], $4::bytea[]) WITH ORDINALITY AS m(exchange, routing_key, priority, payload, ord)
        ), inserted AS (
            INSERT INTO celeriac_messages (queue, priority, payload)
            SELECT coalesce(b.queue, m.routing_key), m.priority, m.payload
            FROM m LEFT JOIN celeriac_bindings b ON m.exchange <> '' AND b.exchange = m.exchange AND b.routing_key = m.routing_key
            ORDER BY m.ord, b.queue
            RETURNING queue
        )
        SELECT q, pg_notify('celeriac_messages', q) FROM (SELECT DISTINCT queue AS q FROM inserted) n
        """;

    // The lease is set in the statement that locks the rows, and no transaction stays open after it: a held message is
    // a row whose lease is in the future, not a lock. SKIP LOCKED lets consumers take side by side. RETURNING has no
    // order: the caller sorts by (priority, id).
    // Free messages and lapsed leases are looked up apart, each by its own index (a held message is in neither scan).
    public const string Take = """
        WITH free AS (
            SELECT id, priority FROM celeriac_messages
            WHERE queue = $1 AND lease_owner IS NULL
            ORDER BY priority, id
            LIMIT $3
            FOR UPDATE SKIP LOCKED
        ), lapsed AS (
            SELECT id, priority FROM celeriac_messages
            WHERE queue = $1 AND lease_owner IS NOT NULL AND leased_until <= now()
            ORDER BY leased_until
            LIMIT $3
            FOR UPDATE SKIP LOCKED
        ), picked AS (
            SELECT id FROM (SELECT id, priority FROM free UNION ALL SELECT id, priority FROM lapsed) u
            ORDER BY priority, id
            LIMIT $3
        )
        UPDATE celeriac_messages m
        SET lease_owner = $2, leased_until = now() + $4, deliveries = m.deliveries + 1
        FROM picked
        WHERE m.id = picked.id
        RETURNING m.id, m.priority, m.deliveries, m.payload
        """;

    // Seconds until the earliest lease of these queues runs out (a dead consumer's messages become ready then), or NULL.
    public const string EarliestExpiry = """
        SELECT extract(epoch FROM min(leased_until) - now())::float8
        FROM celeriac_messages WHERE lease_owner IS NOT NULL AND queue = ANY($1)
        """;

    public const string Renew = "UPDATE celeriac_messages SET leased_until = now() + $2 WHERE id = ANY($3) AND lease_owner = $1";

    public const string Delete = "DELETE FROM celeriac_messages WHERE id = ANY($1) AND lease_owner = $2";

    public const string Release = """
        WITH released AS (
            UPDATE celeriac_messages SET lease_owner = NULL, leased_until = NULL
            WHERE id = ANY($1) AND lease_owner = $2
            RETURNING queue
        )
        SELECT pg_notify('celeriac_messages', q) FROM (SELECT DISTINCT queue AS q FROM released) n
        """;

    public const string QueueLength = "SELECT count(*) FROM celeriac_messages WHERE queue = $1 AND (leased_until IS NULL OR leased_until <= now())";

    public const string Purge = "DELETE FROM celeriac_messages WHERE queue = $1 AND (leased_until IS NULL OR leased_until <= now())";

    public const string DeclareExchange = "INSERT INTO celeriac_exchanges (name, type) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET type = excluded.type";

    public const string DeclareBinding = "INSERT INTO celeriac_bindings (exchange, routing_key, queue) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

    public const string ExchangeType = "SELECT type FROM celeriac_exchanges WHERE name = $1";

    public const string InsertFanout = "INSERT INTO celeriac_fanout (payload) VALUES ($1) RETURNING id";

    public const string Notify = "SELECT pg_notify('celeriac_fanout', $1)";

    public const string ReadFanout = "SELECT payload FROM celeriac_fanout WHERE id = $1";

    public const string SweepFanout = "DELETE FROM celeriac_fanout WHERE created_at < now() - interval '1 minute'";
}
