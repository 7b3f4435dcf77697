namespace Celeriac.Redis;

/// <summary>The Lua scripts that make kombu's two-step take (pop, then note as unacked) one atomic step.</summary>
internal static class RedisScripts
{
    // kombu's QoS.append: ZADD unacked_index <now> <tag>; HSET unacked <tag> [payload, exchange, routing_key]: register
    // gathers them, and note() makes one ZADD and one HSET of all (a command from a script costs Redis more than the
    // command itself: one per message was most of a take's time).
    // The tag is the envelope's delivery_tag, as kombu uses it; a message without one (bad input) gets a
    // generated tag, so that even it is never lost between the pop and its settlement.
    // Decoding the whole envelope with cjson was most of Redis's work per task (the envelope is a few KB); the three
    // fields are found by a plain search when each name occurs once, as a simple string, in the envelope, and cjson
    // decodes only an envelope where that is not so (a name twice, escapes, another type). Likewise cjson quotes only
    // an exchange or routing key that needs escapes.
    private const string Register = """
        local function plain(raw, name)
          local key = '"' .. name .. '"'
          local s, e = string.find(raw, key, 1, true)
          if not s or string.find(raw, key, e + 1, true) then return nil end
          local q1, q2, v = string.find(raw, '^%s*:%s*"([^"\\%c]*)"', e + 1)
          return v
        end
        local function quoted(text)
          if string.find(text, '["\\%c]') then return cjson.encode(text) end
          return '"' .. text .. '"'
        end
        local scores, notes = {}, {}
        local function register(raw, queue, gentag, now)
          local tag, ex, rk = plain(raw, 'delivery_tag'), plain(raw, 'exchange'), plain(raw, 'routing_key')
          if not (tag and ex and rk and tag ~= '') then
            tag, ex, rk = nil, nil, nil
            local ok, m = pcall(cjson.decode, raw)
            if ok and type(m) == 'table' and type(m.properties) == 'table' then
              local p = m.properties
              if type(p.delivery_tag) == 'string' and p.delivery_tag ~= '' then tag = p.delivery_tag end
              local di = p.delivery_info
              if type(di) == 'table' and type(di.exchange) == 'string' and type(di.routing_key) == 'string' then
                ex = di.exchange
                rk = di.routing_key
              end
            end
          end
          if not tag then tag = gentag end
          if not ex then ex = ''; rk = queue end
          scores[#scores + 1] = now
          scores[#scores + 1] = tag
          notes[#notes + 1] = tag
          notes[#notes + 1] = '[' .. raw .. ', ' .. quoted(ex) .. ', ' .. quoted(rk) .. ']'
          return tag
        end
        local function note()
          for i = 1, #scores, 500 do
            redis.call('ZADD', KEYS[1], unpack(scores, i, math.min(i + 499, #scores)))
            redis.call('HSET', KEYS[2], unpack(notes, i, math.min(i + 499, #notes)))
          end
        end

        """;

    /// <summary>
    /// Pops up to ARGV[1] messages from KEYS[4..] (RPOP: the oldest first) and notes each as unacked. The lists come a
    /// priority step at a time, each step naming every consumed queue once in the same order; a step is served before
    /// the next, and within a step each queue gets its share of ARGV[1] first, then those that had more fill what is
    /// left (so a take is fair across queues, whatever its size).
    /// KEYS[1] = unacked_index, KEYS[2] = unacked, KEYS[3] = this consumer's last-take record;
    /// ARGV[2] = now (Unix seconds), ARGV[3] = this call's id (also the prefix of generated tags),
    /// ARGV[i] = the queue of KEYS[i] for i >= 4.
    /// Returns a flat list: list index (1-based among KEYS[4..]), payload, tag; per message.
    /// The last-take record (call id and tags) lets a consumer whose reply was lost in an outage give the
    /// messages back at once, instead of leaving them to the visibility timeout.
    /// </summary>
    public const string Take = Register + """
        local want = tonumber(ARGV[1])
        local out = {}
        local tags = {}
        local lists = #KEYS - 3
        local n = lists
        for k = 2, lists do
          if ARGV[k + 3] == ARGV[4] then n = k - 1 break end
        end
        local function take(i, count)
          local items = redis.call('RPOP', KEYS[i], count)
          if not items then return 0 end
          for _, raw in ipairs(items) do
            local tag = register(raw, ARGV[i], ARGV[3] .. (#tags + 1), ARGV[2])
            tags[#tags + 1] = tag
            out[#out + 1] = i - 3
            out[#out + 1] = raw
            out[#out + 1] = tag
          end
          want = want - #items
          return #items
        end
        for first = 4, #KEYS, n do
          if want <= 0 then break end
          local share = math.max(1, math.floor(want / n))
          local full = {}
          for i = first, first + n - 1 do
            if want <= 0 then break end
            local c = math.min(share, want)
            full[i] = take(i, c) == c
          end
          for i = first, first + n - 1 do
            if n == 1 or want <= 0 then break end
            if full[i] then take(i, want) end
          end
        end
        note()
        if #tags > 0 then
          redis.call('SET', KEYS[3], ARGV[3] .. '\n' .. table.concat(tags, '\n'), 'EX', 86400)
        end
        return out
        """;

    /// <summary>Notes one message, popped by a blocking BRPOP, as unacked. ARGV: now, payload, queue, fallback tag. Returns the tag.</summary>
    /// <summary>
    /// LPUSHes a batch to its lists only once however often the publish is retried: a retry after a reply lost in an
    /// outage, whose first try did reach Redis, finds the batch's id in the ledger KEYS[1] and adds nothing, instead of
    /// every message of the batch a second time. The ledger holds only the batches whose reply is not yet known: each
    /// call also drops the ids the publisher has since seen confirmed, and ids older than the window (a publisher gone).
    /// KEYS[2..]: the lists. ARGV: batch id, now, window (seconds), the count of confirmed ids and those ids, then per list
    /// the count of its payloads and the payloads.
    /// </summary>
    public const string PublishOnce = """
        local now = tonumber(ARGV[2])
        local confirmed = tonumber(ARGV[4])
        if confirmed > 0 then redis.call('ZREM', KEYS[1], unpack(ARGV, 5, 4 + confirmed)) end
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
        if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
        redis.call('ZADD', KEYS[1], now, ARGV[1])
        local at = 5 + confirmed
        for k = 2, #KEYS do
          local n = tonumber(ARGV[at])
          local first, last = at + 1, at + n
          while first <= last do
            local upto = math.min(first + 999, last)
            redis.call('LPUSH', KEYS[k], unpack(ARGV, first, upto))
            first = upto + 1
          end
          at = last + 1
        end
        return 1
        """;

    public const string Hold = Register + "local tag = register(ARGV[2], ARGV[3], ARGV[4], ARGV[1]); note(); return tag";

    /// <summary>kombu's Mutex release: deletes KEYS[1] only if it still holds our token ARGV[1].</summary>
    public const string ReleaseMutex = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          return redis.call('DEL', KEYS[1])
        end
        return 0
        """;

    /// <summary>Counts and deletes the lists KEYS (a queue's priority lists) at once; returns the count.</summary>
    public const string Purge = """
        local n = 0
        for i = 1, #KEYS do
          n = n + redis.call('LLEN', KEYS[i])
        end
        if #KEYS > 0 then redis.call('DEL', unpack(KEYS)) end
        return n
        """;
}
