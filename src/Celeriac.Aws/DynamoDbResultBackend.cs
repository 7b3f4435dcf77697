using System.Globalization;
using Amazon.DynamoDBv2;
using Amazon.DynamoDBv2.Model;
using Amazon.Runtime;
using Celeriac.Results;
using Microsoft.Extensions.Logging;

namespace Celeriac.Aws;

/// <summary>
/// Celery's DynamoDB result backend (<c>dynamodb://key:secret@region:port/table?read=N&amp;write=N&amp;ttl_seconds=N</c>):
/// one item per key in Celery's table layout, the hash key <c>id</c> (a string: Celery 5.2's <c>str()</c> of the key's
/// bytes, e.g. <c>b'celery-task-meta-&lt;id&gt;'</c>, see <see cref="ItemId"/>),
/// the document in <c>result</c> (binary, Celery's JSON), <c>timestamp</c> (seconds since the epoch) and, when results
/// expire, <c>ttl</c> (DynamoDB's Time to Live attribute), so that Python Celery reads what Celeriac writes and the
/// other way round. The table is created when missing, as Celery creates it (provisioned read/write capacity).
/// </summary>
/// <remarks>
/// <para>Expiry: <c>ttl_seconds</c> (Celery's setting) if given, else <c>result_expires</c>, written as the <c>ttl</c>
/// attribute. With <c>ttl_seconds</c> the table's Time to Live is turned on (off for a negative value) as Celery does;
/// DynamoDB deletes expired items late (within days), so a read ignores an item whose <c>ttl</c> has passed.</para>
/// <para>Chords: joined natively by an atomic counter (<c>UpdateItem ADD chord_count</c> on the item
/// <c>chord-unlock-&lt;group&gt;</c>, laid out as Celery 5.3+ does, under Celery 5.2's form of the id). Celery 5.2 has no counter on DynamoDB and joins
/// its chords with <c>celery.chord_unlock</c> instead; a member of such a chord (no counter item) reports nothing.</para>
/// </remarks>
public sealed class DynamoDbResultBackend : KeyValueResultBackend
{
    private const string KeyAttribute = "id";
    private const string ValueAttribute = "result";
    private const string TimestampAttribute = "timestamp";
    private const string TtlAttribute = "ttl";
    private const string CountAttribute = "chord_count";

    private readonly AmazonDynamoDBClient _client;
    private readonly DynamoDbSettings _settings;
    private readonly Outage _outage;
    private readonly ILogger _logger;
    private Lazy<Task> _table;

    /// <summary>Reads the URL and settings and makes the client; the table is checked (and created) on first use.</summary>
    public DynamoDbResultBackend(ResultBackendOptions options)
        : base(options)
    {
        _settings = DynamoDbSettings.Parse(options);
        _logger = options.LoggerFactory.CreateLogger("Celeriac.Aws.DynamoDB");
        var config = new AmazonDynamoDBConfig();
        AwsClientSetup.Configure(config, _settings.Endpoint, _settings.Region);
        bool local = AwsClientSetup.IsLocal(_settings.Endpoint);
        if (local && _settings.Endpoint is { } endpoint)
        {
            Log.LocalEndpoint(_logger, endpoint.ToString());
        }

        AWSCredentials? credentials = AwsClientSetup.Credentials(_settings.AccessKey, _settings.SecretKey, local, "dynamodb://");
        _client = credentials is null ? new AmazonDynamoDBClient(config) : new AmazonDynamoDBClient(credentials, config);
        _outage = new Outage("DynamoDB", (_settings.Endpoint?.ToString() ?? _settings.Region) + " table " + _settings.Table, _logger, options.ConnectTimeout);
        _table = new Lazy<Task>(EnsureTableAsync);
    }

    /// <summary>The table (the URL's path, else Celery's <c>celery</c>).</summary>
    public string Table => _settings.Table;

    /// <summary>How long a read retries while DynamoDB is away before it fails. <value>60 s</value></summary>
    internal TimeSpan ReadPatience { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a write retries while DynamoDB is away before it fails. <value>5 min</value></summary>
    internal TimeSpan WritePatience { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How long results live: <c>ttl_seconds</c> if given (negative: forever), else <c>result_expires</c>.</summary>
    private TimeSpan? Expiry => _settings.TtlSeconds is { } ttl ? (ttl < 0 ? null : TimeSpan.FromSeconds(ttl)) : Options.ResultExpires;

    private async Task ReadyAsync(CancellationToken ct)
    {
        Lazy<Task> current = Volatile.Read(ref _table);
        Task table = current.Value;
        if (!table.IsCompletedSuccessfully)
        {
            try
            {
                await table.WaitAsync(ct).ConfigureAwait(false);
            }
            catch (Exception) when (table.IsFaulted)
            {
                // The next call tries again (the service may have been away); this one fails with the reason.
                Interlocked.CompareExchange(ref _table, new Lazy<Task>(EnsureTableAsync), current);
                throw;
            }
        }
    }

    private static Dictionary<string, AttributeValue> Key(string key) => new(StringComparer.Ordinal) { [KeyAttribute] = new AttributeValue { S = ItemId(key) } };

    /// <summary>
    /// The item's <c>id</c> for a backend key, byte for byte as Celery 5.2 writes it: its <c>get</c>/<c>set</c>/<c>delete</c>
    /// take the key as bytes and use <c>str(key)</c>, Python's repr of them, so the id of <c>celery-task-meta-X</c> is
    /// <c>b'celery-task-meta-X'</c> (Celery 5.3 and later use the key itself).
    /// </summary>
    internal static string ItemId(string key)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(key);
        char quote = bytes.Contains((byte)'\'') && !bytes.Contains((byte)'"') ? '"' : '\'';
        var id = new System.Text.StringBuilder(bytes.Length + 3).Append('b').Append(quote);
        foreach (byte b in bytes)
        {
            _ = b switch
            {
                (byte)'\\' => id.Append(@"\\"),
                (byte)'\t' => id.Append(@"\t"),
                (byte)'\n' => id.Append(@"\n"),
                (byte)'\r' => id.Append(@"\r"),
                _ when b == quote => id.Append('\\').Append(quote),
                < 0x20 or >= 0x7f => id.Append(CultureInfo.InvariantCulture, $"\\x{b:x2}"),
                _ => id.Append((char)b),
            };
        }

        return id.Append(quote).ToString();
    }

    private string Now() => (Options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0).ToString("0.0##", CultureInfo.InvariantCulture);

    /// <inheritdoc />
    protected override async ValueTask<byte[]?> GetValueAsync(string key, CancellationToken ct)
    {
        Dictionary<string, AttributeValue>? item = await GetItemAsync(key, ct).ConfigureAwait(false);
        return item is not null && item.TryGetValue(ValueAttribute, out AttributeValue? value) && value.B is { } bytes ? bytes.ToArray() : null;
    }

    /// <summary>Reads an item (strongly consistent: a waiter must see a write that has returned), or null when missing or expired.</summary>
    private async Task<Dictionary<string, AttributeValue>?> GetItemAsync(string key, CancellationToken ct)
    {
        await ReadyAsync(ct).ConfigureAwait(false);
        GetItemResponse response = await _outage.RunAsync(
            token => _client.GetItemAsync(new GetItemRequest { TableName = Table, Key = Key(key), ConsistentRead = true }, token),
            ReadPatience,
            ct).ConfigureAwait(false);
        Dictionary<string, AttributeValue>? item = response.Item is { Count: > 0 } found ? found : null;
        if (item is not null && item.TryGetValue(TtlAttribute, out AttributeValue? ttl) &&
            long.TryParse(ttl.N, NumberStyles.Integer, CultureInfo.InvariantCulture, out long expires) &&
            expires <= Options.TimeProvider.GetUtcNow().ToUnixTimeSeconds())
        {
            // DynamoDB deletes expired items late (within days): until then it is gone to a reader.
            return null;
        }

        return item;
    }

    /// <inheritdoc />
    protected override async ValueTask SetValueAsync(string key, byte[] value, TimeSpan? expiry, CancellationToken ct)
    {
        await ReadyAsync(CancellationToken.None).ConfigureAwait(false);
        Dictionary<string, AttributeValue> item = Key(key);
        item[ValueAttribute] = new AttributeValue { B = new MemoryStream(value, writable: false) };
        item[TimestampAttribute] = new AttributeValue { N = Now() };
        AddTtl(item);
        await _outage.RunAsync(
            async token =>
            {
                item[ValueAttribute].B.Position = 0;
                return await _client.PutItemAsync(new PutItemRequest { TableName = Table, Item = item }, token).ConfigureAwait(false);
            },
            WritePatience,
            CancellationToken.None).ConfigureAwait(false);
    }

    private void AddTtl(Dictionary<string, AttributeValue> item)
    {
        if (Expiry is { } expiry)
        {
            long at = Options.TimeProvider.GetUtcNow().ToUnixTimeSeconds() + (long)expiry.TotalSeconds;
            item[TtlAttribute] = new AttributeValue { N = at.ToString(CultureInfo.InvariantCulture) };
        }
    }

    /// <inheritdoc />
    protected override async ValueTask DeleteValueAsync(string key, CancellationToken ct)
    {
        await ReadyAsync(ct).ConfigureAwait(false);
        await _outage.RunAsync(
            token => _client.DeleteItemAsync(new DeleteItemRequest { TableName = Table, Key = Key(key) }, token),
            WritePatience,
            ct).ConfigureAwait(false);
    }

    /// <summary>Celery 5.3's <c>incr</c>: an atomic <c>ADD</c> to the item's <c>chord_count</c>, which starts at 0 when missing.</summary>
    protected override async ValueTask<long> IncrementValueAsync(string key, TimeSpan? expiry, CancellationToken ct)
    {
        await ReadyAsync(ct).ConfigureAwait(false);
        var values = new Dictionary<string, AttributeValue>(StringComparer.Ordinal)
        {
            [":one"] = new AttributeValue { N = "1" },
            [":ts"] = new AttributeValue { N = Now() },
        };
        var names = new Dictionary<string, string>(StringComparer.Ordinal) { ["#count"] = CountAttribute, ["#ts"] = TimestampAttribute };
        string update = "ADD #count :one SET #ts = :ts";
        if (Expiry is { } ttl)
        {
            values[":ttl"] = new AttributeValue { N = (Options.TimeProvider.GetUtcNow().ToUnixTimeSeconds() + (long)ttl.TotalSeconds).ToString(CultureInfo.InvariantCulture) };
            names["#ttl"] = TtlAttribute;
            update += ", #ttl = :ttl";
        }

        UpdateItemResponse response = await _outage.RunAsync(
            token => _client.UpdateItemAsync(
                new UpdateItemRequest
                {
                    TableName = Table,
                    Key = Key(key),
                    UpdateExpression = update,
                    ExpressionAttributeNames = names,
                    ExpressionAttributeValues = values,
                    ReturnValues = ReturnValue.UPDATED_NEW,
                },
                token),
            WritePatience,
            ct).ConfigureAwait(false);
        return long.Parse(response.Attributes[CountAttribute].N, NumberStyles.Integer, CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// As Celery 5.3's <c>apply_chord</c> on DynamoDB: the counter item <c>chord-unlock-&lt;group&gt;</c> is put with
    /// <c>chord_count</c> 0, then the header is saved as a group.
    /// </summary>
    public override async ValueTask BeginChordAsync(string groupId, IReadOnlyList<string> headerIds, int size, ReadOnlyMemory<byte> nestedHeader = default, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(groupId);
        await ReadyAsync(ct).ConfigureAwait(false);
        Dictionary<string, AttributeValue> item = Key(ChordKeyPrefix + groupId);
        item[CountAttribute] = new AttributeValue { N = "0" };
        item[TimestampAttribute] = new AttributeValue { N = Now() };
        AddTtl(item);
        await _outage.RunAsync(token => _client.PutItemAsync(new PutItemRequest { TableName = Table, Item = item }, token), WritePatience, ct).ConfigureAwait(false);
        await base.BeginChordAsync(groupId, headerIds, size, nestedHeader, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The key-value join; a member of a chord that a Celery 5.2 client sent (no counter item and no saved group: Celery
    /// joins it with <c>celery.chord_unlock</c>) reports nothing, as Celery 5.2's DynamoDB backend.
    /// </summary>
    public override async ValueTask<ChordJoin?> AddChordPartAsync(ChordPartReturn part, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(part);
        if (await GetItemAsync(ChordKeyPrefix + part.GroupId, ct).ConfigureAwait(false) is null &&
            await GetValueAsync(GroupKeyPrefix + part.GroupId, ct).ConfigureAwait(false) is null)
        {
            return null;
        }

        return await base.AddChordPartAsync(part, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Celery's <c>_get_or_create_table</c> and <c>_set_table_ttl</c>: describes the table and creates it (hash key <c>id</c>, a string;
    /// provisioned capacity from <c>read</c>/<c>write</c>) when missing and waits until it is ACTIVE; with
    /// <c>ttl_seconds</c>, turns the table's Time to Live on the <c>ttl</c> attribute on (off when negative).
    /// </summary>
    private async Task EnsureTableAsync()
    {
        TimeSpan patience = ReadPatience;

        // Described first, as Celery 5.3 does: a process allowed only to read and write items never needs CreateTable.
        bool exists = true;
        try
        {
            await _outage.RunAsync(token => _client.DescribeTableAsync(new DescribeTableRequest { TableName = Table }, token), patience, CancellationToken.None).ConfigureAwait(false);
        }
        catch (ResourceNotFoundException)
        {
            exists = false;
        }

        if (!exists)
        {
            try
            {
                await _outage.RunAsync(
                    token => _client.CreateTableAsync(
                        new CreateTableRequest
                        {
                            TableName = Table,
                            AttributeDefinitions = [new AttributeDefinition(KeyAttribute, ScalarAttributeType.S)],
                            KeySchema = [new KeySchemaElement(KeyAttribute, KeyType.HASH)],
                            ProvisionedThroughput = new ProvisionedThroughput(_settings.ReadCapacity, _settings.WriteCapacity),
                        },
                        token),
                    patience,
                    CancellationToken.None).ConfigureAwait(false);
                Log.TableCreated(_logger, Table, _settings.ReadCapacity, _settings.WriteCapacity);
            }
            catch (ResourceInUseException)
            {
                // Another process created it meanwhile: wait until it is usable.
            }
        }

        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            DescribeTableResponse described = await _outage.RunAsync(
                token => _client.DescribeTableAsync(new DescribeTableRequest { TableName = Table }, token), patience, CancellationToken.None).ConfigureAwait(false);
            if (described.Table.TableStatus == TableStatus.ACTIVE || described.Table.TableStatus == TableStatus.UPDATING)
            {
                break;
            }

            if (waited.Elapsed > TimeSpan.FromMinutes(2))
            {
                throw new TimeoutException($"{_outage.Describe} stayed {described.Table.TableStatus} for {waited.Elapsed.TotalSeconds:F0} s.");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100)).ConfigureAwait(false);
        }

        if (_settings.TtlSeconds is { } ttl)
        {
            try
            {
                await SetTableTtlAsync(enable: ttl >= 0, patience).ConfigureAwait(false);
            }
            catch (AmazonDynamoDBException e) when (e.ErrorCode == "UnknownOperationException")
            {
                // An emulator without the Time to Live API (dynalite): items still carry ttl, and reads still ignore expired ones.
                Log.NoTimeToLive(_logger, Table, e.Message);
            }
        }
    }

    private async Task SetTableTtlAsync(bool enable, TimeSpan patience)
    {
        DescribeTimeToLiveResponse described = await _outage.RunAsync(
            token => _client.DescribeTimeToLiveAsync(new DescribeTimeToLiveRequest { TableName = Table }, token), patience, CancellationToken.None).ConfigureAwait(false);
        TimeToLiveStatus status = described.TimeToLiveDescription.TimeToLiveStatus;
        bool on = status == TimeToLiveStatus.ENABLED || status == TimeToLiveStatus.ENABLING;
        if ((on && enable && described.TimeToLiveDescription.AttributeName == TtlAttribute) || (!on && !enable))
        {
            return;
        }

        string attribute = status == TimeToLiveStatus.ENABLED ? described.TimeToLiveDescription.AttributeName : TtlAttribute;
        await _outage.RunAsync(
            token => _client.UpdateTimeToLiveAsync(
                new UpdateTimeToLiveRequest { TableName = Table, TimeToLiveSpecification = new TimeToLiveSpecification { Enabled = enable, AttributeName = attribute } },
                token),
            patience,
            CancellationToken.None).ConfigureAwait(false);
        Log.TimeToLiveUpdated(_logger, Table, enable ? "enabled" : "disabled", attribute);
    }

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
