-- Celeriac's PostgreSQL broker (postgresql://): the tables it creates on first use. Teams that manage schemas
-- themselves run this script (or `celeriac migrate -b postgresql://...`) once; it is idempotent. The transport
-- takes the same advisory lock around it, so two workers starting together do not race.
SELECT pg_advisory_xact_lock(7212946041327063409);

-- One row per message waiting or held. A row is ready when leased_until is NULL (never taken, or given back) or in
-- the past (its consumer died: live consumers renew their leases). Acking deletes the row. id is never reused, so a
-- late ack of a message another consumer took over deletes nothing (the DELETE also checks lease_owner).
CREATE TABLE IF NOT EXISTS celeriac_messages (
    id bigserial PRIMARY KEY,
    queue text NOT NULL,
    priority smallint NOT NULL DEFAULT 0,
    payload bytea NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    lease_owner uuid NULL,
    leased_until timestamptz NULL,
    deliveries integer NOT NULL DEFAULT 0
) WITH (fillfactor = 70);

-- The take walks a queue's messages that no consumer holds in (priority, id) order: a lower priority number first
-- (kombu's order on Redis), FIFO within. The index is partial, so that the messages consumers hold (thousands of ETA
-- tasks, say) are not walked past by every take; messages whose lease ran out (a dead consumer's) are found by the
-- second index, by lease end. Pages keep room (fillfactor) for the updates.
CREATE INDEX IF NOT EXISTS celeriac_messages_ready ON celeriac_messages (queue, priority, id) WHERE lease_owner IS NULL;
CREATE INDEX IF NOT EXISTS celeriac_messages_leased ON celeriac_messages (queue, leased_until) WHERE lease_owner IS NOT NULL;

-- Exchanges declared with a type (fanout ones do not route to queues) and the bindings of named exchanges.
CREATE TABLE IF NOT EXISTS celeriac_exchanges (
    name text PRIMARY KEY,
    type text NOT NULL
);

CREATE TABLE IF NOT EXISTS celeriac_bindings (
    exchange text NOT NULL,
    routing_key text NOT NULL,
    queue text NOT NULL,
    PRIMARY KEY (exchange, routing_key, queue)
);

-- Fanout messages (events, remote control) too large for a NOTIFY payload (8000 bytes): the notification carries the
-- row's id and subscribers read it; rows older than a minute are deleted by later publishers.
CREATE TABLE IF NOT EXISTS celeriac_fanout (
    id bigserial PRIMARY KEY,
    payload bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS celeriac_fanout_created ON celeriac_fanout (created_at);
