namespace Celeriac.Sqlite;

/// <summary>The tables of a Celeriac SQLite file. Times are milliseconds since the Unix epoch.</summary>
internal static class Schema
{
    /// <summary>
    /// Creates what is missing. <c>messages.id</c> is AUTOINCREMENT so that an id is never reused: a late
    /// ack of a message whose lease another consumer took over must not delete a newer message.
    /// A row is ready when <c>lease_until &lt;= now</c> (0 = never taken or given back).
    /// </summary>
    public const string Create = """
        CREATE TABLE IF NOT EXISTS messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            queue TEXT NOT NULL,
            priority INTEGER NOT NULL DEFAULT 0,
            payload BLOB NOT NULL,
            lease_owner TEXT NULL,
            lease_until INTEGER NOT NULL DEFAULT 0,
            deliveries INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, priority, id, lease_until);
        CREATE TABLE IF NOT EXISTS exchanges (
            name TEXT PRIMARY KEY,
            type TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS bindings (
            exchange TEXT NOT NULL,
            routing_key TEXT NOT NULL,
            queue TEXT NOT NULL,
            PRIMARY KEY (exchange, routing_key, queue)
        );
        CREATE TABLE IF NOT EXISTS fanout (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            exchange TEXT NOT NULL,
            payload BLOB NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS fanout_exchange ON fanout (exchange, seq);
        CREATE INDEX IF NOT EXISTS fanout_created ON fanout (created_at);
        CREATE TABLE IF NOT EXISTS kv (
            key TEXT PRIMARY KEY,
            value BLOB,
            expires_at INTEGER NULL
        );
        CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires_at) WHERE expires_at IS NOT NULL;
        """;

    public const string Insert = "INSERT INTO messages (queue, priority, payload) VALUES ($queue, $priority, $payload)";

    public const string InsertFanout = "INSERT INTO fanout (exchange, payload, created_at) VALUES ($exchange, $payload, $now)";

    public const string ExchangeType = "SELECT type FROM exchanges WHERE name = $exchange";

    public const string BoundQueues = "SELECT queue FROM bindings WHERE exchange = $exchange AND routing_key = $key";

    public const string DeclareExchange = "INSERT INTO exchanges (name, type) VALUES ($exchange, $type) ON CONFLICT (name) DO UPDATE SET type = excluded.type";

    public const string DeclareBinding = "INSERT OR IGNORE INTO bindings (exchange, routing_key, queue) VALUES ($exchange, $key, $queue)";

    // RETURNING gives no order; the caller sorts by (priority, id).
    public const string Take = """
        UPDATE messages SET lease_owner = $owner, lease_until = $until, deliveries = deliveries + 1
        WHERE id IN (SELECT id FROM messages WHERE queue = $queue AND lease_until <= $now ORDER BY priority, id LIMIT $limit)
        RETURNING id, priority, deliveries, payload
        """;

    public const string Renew = "UPDATE messages SET lease_until = $until WHERE id = $id AND lease_owner = $owner";

    public const string Delete = "DELETE FROM messages WHERE id = $id AND lease_owner = $owner";

    public const string Release = "UPDATE messages SET lease_owner = NULL, lease_until = 0 WHERE id = $id AND lease_owner = $owner";

    public const string Purge = "DELETE FROM messages WHERE queue = $queue AND lease_until <= $now";

    public const string QueueLength = "SELECT count(*) FROM messages WHERE queue = $queue AND lease_until <= $now";

    public const string FanoutMax = "SELECT coalesce(max(seq), 0) FROM fanout";

    public const string FanoutAfter = "SELECT seq, payload FROM fanout WHERE exchange = $exchange AND seq > $seq ORDER BY seq LIMIT 256";

    public const string SweepFanout = "DELETE FROM fanout WHERE created_at < $cutoff";

    public const string KvGet = "SELECT value FROM kv WHERE key = $key AND (expires_at IS NULL OR expires_at > $now)";

    public const string KvSet = "INSERT INTO kv (key, value, expires_at) VALUES ($key, $value, $expires) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at";

    public const string KvDelete = "DELETE FROM kv WHERE key = $key";

    // An expired counter starts again from 1, as a Redis key that expired would.
    public const string KvIncrement = """
        INSERT INTO kv (key, value, expires_at) VALUES ($key, 1, $expires)
        ON CONFLICT (key) DO UPDATE SET
            value = CASE WHEN kv.expires_at IS NOT NULL AND kv.expires_at <= $now THEN 1 ELSE CAST(kv.value AS INTEGER) + 1 END,
            expires_at = excluded.expires_at
        RETURNING CAST(value AS INTEGER)
        """;

    public const string SweepKv = "DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= $now";
}
