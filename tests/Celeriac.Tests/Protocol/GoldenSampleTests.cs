using System.Buffers;
using System.Text;
using System.Text.Json;
using Celeriac.Protocol;
using Celeriac.Results;
using Celeriac.Tests.Support;
using Celeriac.Transport;

namespace Celeriac.Tests.Protocol;

/// <summary>
/// Every golden sample captured from Celery 5.2.6 is read here. Task messages and result documents go
/// through Celeriac's decoders. For events, remote control, kombu bindings, command traces and the AMQP
/// topology these are contract tests that pin the structure of the captured bytes (channel names, envelope
/// fields, member formats); what Celeriac itself sends as events is compared with them in Events/EventWireTests.
/// </summary>
public sealed class GoldenSampleTests
{
    private const string Separator = "\u0006\u0016";

    /// <summary>Which check reads which sample, by file-name prefix (first match wins).</summary>
    private static readonly (string Prefix, Action<JsonElement> Check)[] s_handlers =
    [
        ("redis-msg-", CheckRedisTaskMessages),
        ("amqp-msg-", CheckAmqpTaskMessage),
        ("redis-result-group-saved", CheckGroupSaved),
        ("redis-result-chord-keys", CheckChordKeys),
        ("redis-result-", CheckRedisResult),
        ("amqp-result-rpc", CheckAmqpRpcResult),
        ("amqp-topology", CheckAmqpTopology),
        ("redis-event-", CheckEvents),
        ("redis-control-", CheckControl),
        ("redis-kombu-bindings-", CheckBindings),
        ("redis-trace-", CheckTrace),
    ];

    public static TheoryData<string> SampleFiles => [.. WireSamples.FileNames];

    [Fact]
    public void Samples_EveryFile_HasAHandler()
    {
        IReadOnlyList<string> files = WireSamples.FileNames;
        string[] unhandled = [.. files.Where(f => !s_handlers.Any(h => f.StartsWith(h.Prefix, StringComparison.Ordinal)))];

        Assert.True(files.Count >= 49, $"expected the 49 captured samples in {WireSamples.Directory}, found {files.Count}");
        Assert.True(unhandled.Length == 0, "golden samples no test reads: " + string.Join(", ", unhandled));
    }

    [Theory]
    [MemberData(nameof(SampleFiles))]
    public void Sample_ReadByCeleriac_MatchesCapture(string file)
    {
        using JsonDocument doc = WireSamples.Load(file);
        Action<JsonElement> check = s_handlers.First(h => file.StartsWith(h.Prefix, StringComparison.Ordinal)).Check;
        Assert.Equal("5.2.6", doc.RootElement.GetProperty("versions").GetProperty("celery").GetString());

        check(doc.RootElement);
    }

    // ---- task messages -------------------------------------------------------------------------

    /// <summary>Every task message of a Redis sample: LPUSHed envelopes, kept as captured or MONITOR-decoded.</summary>
    private static void CheckRedisTaskMessages(JsonElement root)
    {
        int seen = 0;
        foreach (JsonElement m in CapturedMessages(root))
        {
            AssertTaskEnvelope(m.GetProperty("raw").GetString()!, m.GetProperty("envelope"), m.GetProperty("body"));
            seen++;
        }

        Assert.True(seen > 0, "the sample holds no task message");
    }

    private static IEnumerable<JsonElement> CapturedMessages(JsonElement root)
    {
        foreach (string key in new[] { "messages", "retry_messages", "member_messages" })
        {
            if (!root.TryGetProperty(key, out JsonElement list))
            {
                continue;
            }

            foreach (JsonElement m in list.EnumerateArray())
            {
                if (m.TryGetProperty("raw", out _))
                {
                    yield return m;
                }
                else
                {
                    // MONITOR form: args = [LPUSH, queue, raw], decoded = [envelope forms].
                    Assert.Equal("LPUSH", m.GetProperty("args")[0].GetString());
                    JsonElement decoded = m.GetProperty("decoded");
                    Assert.Equal(m.GetProperty("args").GetArrayLength() - 2, decoded.GetArrayLength());
                    foreach (JsonElement d in decoded.EnumerateArray())
                    {
                        yield return d;
                    }
                }
            }
        }
    }

    private static void AssertTaskEnvelope(string raw, JsonElement envelope, JsonElement body)
    {
        Assert.True(KombuEnvelope.TryDecode(JsonAssert.Utf8(raw), out TransportMessage? transport, out string? error), error);
        Assert.NotNull(transport);
        JsonElement properties = envelope.GetProperty("properties");
        Assert.Equal(properties.GetProperty("correlation_id").GetString(), transport.CorrelationId);
        Assert.Equal(properties.GetProperty("reply_to").GetString(), transport.ReplyTo);
        Assert.Equal(properties.GetProperty("delivery_mode").GetInt32(), transport.DeliveryMode);
        Assert.Equal(properties.GetProperty("priority").GetInt32(), transport.Priority);
        Assert.Equal(properties.GetProperty("delivery_tag").GetString(), transport.DeliveryTag);
        Assert.Equal(properties.TryGetProperty("expiration", out JsonElement expiration) ? expiration.GetString() : null, transport.Expiration);
        Assert.Equal(properties.GetProperty("delivery_info").GetProperty("exchange").GetString(), transport.Exchange);
        Assert.Equal(properties.GetProperty("delivery_info").GetProperty("routing_key").GetString(), transport.RoutingKey);
        Assert.Equal("application/json", transport.ContentType);
        Assert.Equal("utf-8", transport.ContentEncoding);

        AssertTaskMessage(transport, envelope.GetProperty("headers"), body);
    }

    private static void AssertTaskMessage(TransportMessage transport, JsonElement capturedHeaders, JsonElement body)
    {
        Assert.True(TaskMessage.TryDecode(transport, out TaskMessage? task, out string? id, out string? name, out string? error), error);
        using (task)
        {
            TaskHeaders h = task!.Headers;
            Assert.Equal(capturedHeaders.GetProperty("id").GetString(), id);
            Assert.Equal(capturedHeaders.GetProperty("task").GetString(), name);
            Assert.Equal(capturedHeaders.GetProperty("task").GetString(), h.Task);
            Assert.Equal(capturedHeaders.GetProperty("id").GetString(), h.Id);
            Assert.Equal(capturedHeaders.GetProperty("lang").GetString(), h.Lang);
            Assert.Equal(OptionalString(capturedHeaders, "shadow"), h.Shadow);
            Assert.Equal(OptionalTime(capturedHeaders, "eta"), h.Eta);
            Assert.Equal(OptionalTime(capturedHeaders, "expires"), h.Expires);
            Assert.Equal(OptionalString(capturedHeaders, "group"), h.Group);
            Assert.Equal(capturedHeaders.GetProperty("group_index") is { ValueKind: JsonValueKind.Number } gi ? gi.GetInt64() : null, h.GroupIndex);
            Assert.Equal(capturedHeaders.GetProperty("retries").GetInt32(), h.Retries);
            JsonElement timelimit = capturedHeaders.GetProperty("timelimit");
            Assert.Equal(timelimit[0].ValueKind == JsonValueKind.Null ? null : timelimit[0].GetDouble(), h.HardTimeLimit);
            Assert.Equal(timelimit[1].ValueKind == JsonValueKind.Null ? null : timelimit[1].GetDouble(), h.SoftTimeLimit);
            Assert.Equal(OptionalString(capturedHeaders, "root_id"), h.RootId);
            Assert.Equal(OptionalString(capturedHeaders, "parent_id"), h.ParentId);
            Assert.Equal(capturedHeaders.GetProperty("argsrepr").GetString(), h.ArgsRepr);
            Assert.Equal(capturedHeaders.GetProperty("kwargsrepr").GetString(), h.KwargsRepr);
            Assert.Equal(capturedHeaders.GetProperty("origin").GetString(), h.Origin);
            Assert.Equal(capturedHeaders.GetProperty("ignore_result").GetBoolean(), h.IgnoreResult);

            // Written back, the headers carry the same keys and values (times compared as instants).
            JsonElement written = ToJson(h.ToDictionary());
            Assert.Equal(JsonAssert.Keys(capturedHeaders).Order(StringComparer.Ordinal), JsonAssert.Keys(written).Order(StringComparer.Ordinal));
            foreach (JsonProperty p in capturedHeaders.EnumerateObject())
            {
                if (p.Name is "eta" or "expires")
                {
                    Assert.Equal(OptionalTime(capturedHeaders, p.Name), OptionalTime(written, p.Name));
                }
                else
                {
                    JsonAssert.Equal(p.Value, written.GetProperty(p.Name), "headers." + p.Name);
                }
            }

            JsonAssert.Equal(body[0], task.Args, "args");
            JsonAssert.Equal(body[1], task.Kwargs, "kwargs");
            JsonAssert.Equal(body[2], task.Embed, "embed");
        }
    }

    /// <summary>AMQP: no kombu envelope; the headers travel as a typed AMQP table in the content header.</summary>
    private static void CheckAmqpTaskMessage(JsonElement root)
    {
        JsonElement message = root.GetProperty("message");
        JsonElement typed = message.GetProperty("content_header_typed").GetProperty("properties");
        var headers = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (JsonProperty p in typed.GetProperty("headers").GetProperty("value").EnumerateObject())
        {
            headers[p.Name] = FromAmqpField(p.Name, p.Value);
        }

        var transport = new TransportMessage
        {
            Body = JsonAssert.Utf8(message.GetProperty("body_raw").GetString()!),
            ContentType = typed.GetProperty("content_type").GetProperty("value").GetString()!,
            ContentEncoding = typed.GetProperty("content_encoding").GetProperty("value").GetString()!,
            Headers = headers,
            CorrelationId = typed.GetProperty("correlation_id").GetProperty("value").GetString(),
            ReplyTo = typed.GetProperty("reply_to").GetProperty("value").GetString(),
            DeliveryMode = typed.GetProperty("delivery_mode").GetProperty("value").GetInt32(),
            Priority = typed.TryGetProperty("priority", out JsonElement pr) ? pr.GetProperty("value").GetInt32() : null,
            Expiration = typed.TryGetProperty("expiration", out JsonElement ex) ? ex.GetProperty("value").GetString() : null,
        };
        Assert.Equal(2, transport.DeliveryMode);
        Assert.Equal(headers["id"], transport.CorrelationId);
        AssertTaskMessage(transport, message.GetProperty("application_headers_pyamqp"), message.GetProperty("body"));

        // Contract for the RabbitMQ transport: expires also travels as the 'expiration' property, in ms.
        if (typed.TryGetProperty("expiration", out JsonElement expiration))
        {
            Assert.Equal("shortstr", expiration.GetProperty("type").GetString());
            Assert.Equal("3600000", expiration.GetProperty("value").GetString());
            Assert.Equal(5, transport.Priority);
        }
    }

    /// <summary>A typed AMQP field as the plain value a transport hands to the decoder.</summary>
    private static object? FromAmqpField(string name, JsonElement field)
    {
        string type = field.GetProperty("type").GetString()!;
        JsonElement value = field.GetProperty("value");
        string expectedKind = type switch
        {
            "S" => "str",
            "V" => "None",
            "t" => "bool",
            "I" or "l" or "b" or "s" => "int",
            "A" => "list",
            _ => throw new Xunit.Sdk.XunitException($"AMQP field type '{type}' of header '{name}' is not handled"),
        };
        Assert.Equal(expectedKind, JsonAssert.Kind(value));
        return type == "A"
            ? value.EnumerateArray().Select(item => FromAmqpField(name, item)).ToList()
            : JsonValues.Parse(JsonAssert.Utf8(value.GetRawText()));
    }

    // ---- results -------------------------------------------------------------------------------

    private static void CheckRedisResult(JsonElement root)
    {
        string taskId = root.GetProperty("task_id").GetString()!;
        Assert.Equal(KeyValueResultBackend.TaskKeyPrefix + taskId, root.GetProperty("redis_key").GetString());
        JsonElement value = root.TryGetProperty("value", out JsonElement v) ? v : root.GetProperty("retry_state_value");
        AssertResultDocument(value.GetProperty("raw").GetString()!);

        // SETEX celery-task-meta-<id> <expiry> <doc>, then PUBLISH of the same document on the same name.
        foreach (JsonElement write in root.GetProperty("backend_writes").EnumerateArray())
        {
            JsonElement args = write.GetProperty("args");
            string command = args[0].GetString()!;
            Assert.Contains(command, new[] { "SETEX", "PUBLISH" });
            Assert.StartsWith(KeyValueResultBackend.TaskKeyPrefix, args[1].GetString(), StringComparison.Ordinal);
            if (command == "SETEX")
            {
                Assert.Equal("86400", args[2].GetString());
            }

            AssertResultDocument(args[args.GetArrayLength() - 1].GetString()!);
        }
    }

    /// <summary>Parses a stored document, checks each field, and checks that Celeriac writes it back alike.</summary>
    private static void AssertResultDocument(string raw)
    {
        JsonElement captured = JsonAssert.Parse(raw);
        TaskResultMeta meta = TaskResultMeta.Parse(JsonAssert.Utf8(raw));

        string status = captured.GetProperty("status").GetString()!;
        Assert.Equal(status, meta.Status);
        Assert.Equal(captured.GetProperty("task_id").GetString(), meta.TaskId);
        JsonAssert.Equal(captured.GetProperty("result"), meta.ResultElement, "result");
        Assert.Equal(OptionalString(captured, "traceback"), meta.Traceback);
        Assert.Equal(OptionalString(captured, "group_id"), meta.GroupId);
        Assert.Equal(OptionalString(captured, "parent_id"), meta.ParentId);
        if (captured.TryGetProperty("date_done", out JsonElement done) && done.ValueKind == JsonValueKind.String)
        {
            DateTime naive = DateTime.Parse(done.GetString()!, System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(new DateTimeOffset(naive, TimeSpan.Zero), meta.DateDone);
        }
        else
        {
            Assert.Null(meta.DateDone);
        }

        if (TaskStates.IsException(status))
        {
            JsonElement exc = captured.GetProperty("result");
            ExceptionInfo error = Assert.IsType<ExceptionInfo>(meta.Exception);
            Assert.Equal(exc.GetProperty("exc_type").GetString(), error.Type);
            Assert.Equal(exc.GetProperty("exc_module").GetString(), error.Module);
            Assert.Equal(exc.GetProperty("exc_message")[0].GetString(), error.Message);
            var failure = new TaskFailedException(meta.TaskId, meta.Status, error, meta.Traceback);
            Assert.Equal(error.Type, failure.ExceptionType);
        }
        else
        {
            Assert.Null(meta.Exception);
        }

        // Written back: same keys in the same order, same values.
        JsonElement written = JsonAssert.Parse(meta.Encode());
        Assert.Equal(JsonAssert.Keys(captured), JsonAssert.Keys(written));
        foreach (JsonProperty p in captured.EnumerateObject().Where(p => p.Name != "date_done"))
        {
            JsonAssert.Equal(p.Value, written.GetProperty(p.Name), p.Name);
        }
    }

    private static void CheckAmqpRpcResult(JsonElement root)
    {
        string taskId = root.GetProperty("task_id").GetString()!;
        string replyQueue = root.GetProperty("reply_queue").GetString()!;
        var states = new List<string>();
        foreach (JsonElement m in root.GetProperty("messages").EnumerateArray())
        {
            // rpc:// results: default exchange, routing key = the client's reply_to, correlation_id = task id, transient.
            Assert.Equal(replyQueue, m.GetProperty("delivery_info").GetProperty("routing_key").GetString());
            Assert.Equal("", m.GetProperty("delivery_info").GetProperty("exchange").GetString());
            Assert.Equal(taskId, m.GetProperty("properties_pyamqp").GetProperty("correlation_id").GetString());
            Assert.Equal(1, m.GetProperty("properties_pyamqp").GetProperty("delivery_mode").GetInt32());

            string raw = m.GetProperty("body_raw").GetString()!;
            TaskResultMeta meta = TaskResultMeta.Parse(JsonAssert.Utf8(raw));
            Assert.Equal(taskId, meta.TaskId);
            JsonAssert.Equal(m.GetProperty("body").GetProperty("result"), meta.ResultElement);
            Assert.Null(meta.DateDone); // rpc:// documents carry no date_done
            states.Add(meta.Status);
        }

        Assert.Equal([TaskStates.Started, TaskStates.Success], states);
    }

    private static void CheckGroupSaved(JsonElement root)
    {
        string groupId = root.GetProperty("group_id").GetString()!;
        string raw = root.GetProperty("value").GetProperty("raw").GetString()!;
        JsonElement captured = JsonAssert.Parse(raw);
        string[] members = [.. captured.GetProperty("result")[1].EnumerateArray().Select(m => m[0][0].GetString()!)];
        Assert.Equal(KeyValueResultBackend.GroupKeyPrefix + groupId, root.GetProperty("redis_key").GetString());

        // What Celeriac's key-value backends write for the same group has the same structure.
        var backend = new RecordingBackend();
        backend.SaveGroupAsync(groupId, members, TestContext.Current.CancellationToken).AsTask().GetAwaiter().GetResult();
        JsonAssert.Equal(captured, JsonAssert.Parse(backend.Values[KeyValueResultBackend.GroupKeyPrefix + groupId]));

        // And Celeriac restores the group Celery saved.
        backend.Values[KeyValueResultBackend.GroupKeyPrefix + groupId] = JsonAssert.Utf8(raw);
        IReadOnlyList<string>? restored = backend.RestoreGroupAsync(groupId, TestContext.Current.CancellationToken).AsTask().GetAwaiter().GetResult();
        Assert.Equal(members, restored);

        CheckRedisTaskMessages(root);
    }

    /// <summary>
    /// Contract: the Redis backend's native chord join. Celeriac's chord support will write these keys.
    /// </summary>
    private static void CheckChordKeys(JsonElement root)
    {
        string groupKey = KeyValueResultBackend.GroupKeyPrefix + root.GetProperty("chord_group_id").GetString();
        var commands = root.GetProperty("chord_key_commands").EnumerateArray().Select(c => c.GetProperty("args")).ToArray();
        JsonElement size = commands.First(a => a[0].GetString() == "SETEX" && a[1].GetString() == groupKey + ".s");
        Assert.Equal("2", size[3].GetString());
        JsonElement[] joins = [.. commands.Where(a => a[0].GetString() == "ZADD")];
        Assert.Equal(2, joins.Length);
        foreach (JsonElement zadd in joins)
        {
            Assert.Equal(groupKey + ".j", zadd[1].GetString());
            JsonElement member = JsonAssert.Parse(zadd[3].GetString()!);
            Assert.Equal(1, member[0].GetInt32());
            Assert.Equal(TaskStates.Success, member[2].GetString());
        }

        Assert.Contains(commands, a => a[0].GetString() == "DEL");
        Assert.Empty(root.GetProperty("keys_left_after").EnumerateArray());
        foreach (JsonElement write in root.GetProperty("result_writes").EnumerateArray())
        {
            JsonElement args = write.GetProperty("args");
            AssertResultDocument(args[args.GetArrayLength() - 1].GetString()!);
        }

        CheckRedisTaskMessages(root);
    }

    // ---- retries -------------------------------------------------------------------------------

    /// <summary>
    /// Celery's worker ran <c>retry_once(7)</c>, whose first run did <c>raise self.retry(countdown=1,
    /// exc=KeyError('transient'))</c>. Celeriac's worker is given the very message Celery's was and runs the same task:
    /// it sends the same retry message and stores the same STARTED, RETRY, STARTED, SUCCESS documents, field by field.
    /// </summary>
    [Fact]
    public async Task RetryFromWorker_CeleriacWorkerGivenTheSameMessage_SendsAndStoresWhatCeleryDid()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using JsonDocument golden = WireSamples.Load("redis-msg-retry-from-worker.json");
        JsonElement root = golden.RootElement;
        JsonElement[] messages = [.. CapturedMessages(root)];
        Assert.Equal(2, messages.Length);
        string taskId = root.GetProperty("task_id").GetString()!;

        var backend = new RecordingBackend();
        RecordingTransport? transport = null;
        var app = new CeleriacApp(new CeleriacOptions
        {
            BrokerUrl = "memory://" + Guid.NewGuid().ToString("N"),
            ResultBackend = "recording://golden",
            DefaultQueue = "celery",
            NodeName = "wire@vm",
            TrackStarted = true,

            // No worker events: the test picks the retry out of every publish, and a heartbeat has no task headers.
            WithoutHeartbeat = true,
        });
        app.Providers.AddTransport("memory", o => transport = new RecordingTransport(new MemoryTransport(o.Url)));
        app.Providers.AddResultBackend("recording", _ => backend);
        app.Task("wireapp.retry_once", async (long x, TaskContext context) => context.Retries == 0
            ? throw await context.RetryAsync(new TaskFailedException(context.Id, TaskStates.Failure, new ExceptionInfo("KeyError", "transient", "builtins"), null), countdown: TimeSpan.FromSeconds(1))
            : x);
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        DateTimeOffset before = TimeProvider.System.GetUtcNow();
        await app.Transport.PublishAsync("", "celery", [DecodeEnvelope(messages[0].GetProperty("raw").GetString()!)], ct);

        JsonElement[] Ours() => [.. backend.Writes.Where(w => w.Key == KeyValueResultBackend.TaskKeyPrefix + taskId).Select(w => JsonAssert.Parse(w.Value))];
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (Ours() is not [.., { } last] || last.GetProperty("status").GetString() != TaskStates.Success)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"no SUCCESS within 15 s; stored: {string.Join(", ", Ours().Select(d => d.GetProperty("status").GetString()))}");
            await Task.Delay(20, ct);
        }

        // The retry message: Celery's headers, properties and body, but for who sent it and when it is due.
        (string exchange, string routingKey, TransportMessage sent) = Assert.Single(transport!.Published, p => p.Message.Headers["retries"] is 1L);
        JsonElement celery = messages[1].GetProperty("envelope");
        JsonElement ours = JsonAssert.Parse(KombuEnvelope.Encode(sent, exchange, routingKey));
        Assert.Equal(JsonAssert.Keys(celery).Order(StringComparer.Ordinal), JsonAssert.Keys(ours).Order(StringComparer.Ordinal));
        Assert.Equal(celery.GetProperty("content-type").GetString(), ours.GetProperty("content-type").GetString());
        Assert.Equal(celery.GetProperty("content-encoding").GetString(), ours.GetProperty("content-encoding").GetString());
        JsonAssert.Equal(JsonAssert.Parse(Convert.FromBase64String(celery.GetProperty("body").GetString()!)), JsonAssert.Parse(Convert.FromBase64String(ours.GetProperty("body").GetString()!)), "body");

        JsonElement celeryHeaders = celery.GetProperty("headers"), ourHeaders = ours.GetProperty("headers");
        Assert.Equal(JsonAssert.Keys(celeryHeaders).Order(StringComparer.Ordinal), JsonAssert.Keys(ourHeaders).Order(StringComparer.Ordinal));
        foreach (JsonProperty p in celeryHeaders.EnumerateObject())
        {
            JsonElement mine = ourHeaders.GetProperty(p.Name);
            switch (p.Name)
            {
                case "lang":
                    Assert.Equal(("py", "dotnet"), (p.Value.GetString(), mine.GetString()));
                    break;
                case "origin":
                    Assert.Equal(app.Origin, mine.GetString());
                    break;
                case "eta":
                    // Written as Celery writes it; due a second after the first run stored RETRY.
                    const string iso = @"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$";
                    Assert.Matches(iso, p.Value.GetString()!);
                    Assert.Matches(iso, mine.GetString()!);
                    Assert.InRange(DateTimeOffset.Parse(mine.GetString()!, System.Globalization.CultureInfo.InvariantCulture), before.AddSeconds(1), TimeProvider.System.GetUtcNow().AddSeconds(1));
                    break;
                default:
                    JsonAssert.Equal(p.Value, mine, "headers." + p.Name);
                    break;
            }
        }

        // Celery also leaks two apply_async options into the properties (the first sender's 'origin', and
        // 'replaced_task_nesting'); no Celery code reads them there (the worker reads both from the headers).
        JsonElement celeryProperties = celery.GetProperty("properties"), ourProperties = ours.GetProperty("properties");
        string[] leaked = ["origin", "replaced_task_nesting"];
        Assert.Equal(JsonAssert.Keys(celeryProperties).Except(leaked).Order(StringComparer.Ordinal), JsonAssert.Keys(ourProperties).Order(StringComparer.Ordinal));
        foreach (JsonProperty p in celeryProperties.EnumerateObject().Where(p => !leaked.Contains(p.Name)))
        {
            if (p.Name == "delivery_tag")
            {
                Assert.True(Guid.TryParse(ourProperties.GetProperty(p.Name).GetString(), out _));
            }
            else
            {
                JsonAssert.Equal(p.Value, ourProperties.GetProperty(p.Name), "properties." + p.Name);
            }
        }

        // The result documents: the same states in the same order, the same keys in the same order, the same values
        // but for the worker's pid, the time done, and the traceback's language.
        JsonElement[] celeryWrites = [.. root.GetProperty("backend_writes").EnumerateArray()
            .Select(w => w.GetProperty("args")).Where(a => a[0].GetString() == "SETEX").Select(a => JsonAssert.Parse(a[3].GetString()!))];
        JsonElement[] ourWrites = Ours();
        Assert.Equal(celeryWrites.Select(d => d.GetProperty("status").GetString()), ourWrites.Select(d => d.GetProperty("status").GetString()));
        Assert.Equal([TaskStates.Started, TaskStates.Retry, TaskStates.Started, TaskStates.Success], ourWrites.Select(d => d.GetProperty("status").GetString()));
        foreach ((JsonElement theirs, JsonElement mine) in celeryWrites.Zip(ourWrites))
        {
            string status = theirs.GetProperty("status").GetString()!;
            Assert.Equal(JsonAssert.Keys(theirs), JsonAssert.Keys(mine));
            foreach (JsonProperty p in theirs.EnumerateObject())
            {
                JsonElement value = mine.GetProperty(p.Name);
                switch (p.Name)
                {
                    case "result" when status == TaskStates.Started:
                        Assert.Equal(JsonAssert.Shape(p.Value), JsonAssert.Shape(value));
                        Assert.Equal("wire@vm", value.GetProperty("hostname").GetString());
                        break;
                    case "date_done":
                        Assert.Equal(JsonAssert.Kind(p.Value), JsonAssert.Kind(value));
                        break;
                    case "traceback" when status == TaskStates.Retry:
                        Assert.EndsWith("celery.exceptions.Retry: Retry in 1s: KeyError('transient')\n", p.Value.GetString(), StringComparison.Ordinal);
                        Assert.StartsWith("Celeriac.RetryException: Retry in 1s: KeyError('transient')", value.GetString(), StringComparison.Ordinal);
                        break;
                    default:
                        JsonAssert.Equal(p.Value, value, status + "." + p.Name);
                        break;
                }
            }
        }
    }

    // ---- contract tests for parts that come later ----------------------------------------------

    /// <summary>Events: PUBLISH on /&lt;db&gt;.celeryev/&lt;routing key&gt;, exchange celeryev, hostname header.</summary>
    private static void CheckEvents(JsonElement root)
    {
        foreach (JsonElement e in root.GetProperty("events").EnumerateArray())
        {
            JsonElement args = e.GetProperty("args");
            Assert.Equal("PUBLISH", args[0].GetString());
            TransportMessage message = DecodeEnvelope(args[2].GetString()!);
            Assert.Equal("celeryev", message.Exchange);
            Assert.Equal("/0.celeryev/" + message.RoutingKey, args[1].GetString());
            Assert.Equal(1, message.DeliveryMode);

            JsonElement body = JsonAssert.Parse(message.Body.Span);
            JsonAssert.Equal(e.GetProperty("decoded").GetProperty("body"), body);
            JsonElement[] events = body.ValueKind == JsonValueKind.Array ? [.. body.EnumerateArray()] : [body];
            Assert.NotEmpty(events);
            foreach (JsonElement ev in events)
            {
                string type = ev.GetProperty("type").GetString()!;
                Assert.Equal(message.Headers["hostname"], ev.GetProperty("hostname").GetString());
                Assert.Equal(JsonValueKind.Number, ev.GetProperty("timestamp").ValueKind);
                Assert.Equal(JsonValueKind.Number, ev.GetProperty("clock").ValueKind);
                Assert.Equal(0, ev.GetProperty("utcoffset").GetInt32());
                if (type.StartsWith("task-", StringComparison.Ordinal))
                {
                    Assert.True(ev.TryGetProperty("uuid", out _), type + " has a uuid");
                    // Batched task events go out on task.multi; a single one on its own routing key.
                    Assert.Equal(body.ValueKind == JsonValueKind.Array ? "task.multi" : type.Replace('-', '.'), message.RoutingKey);
                }
                else
                {
                    Assert.StartsWith("worker-", type, StringComparison.Ordinal);
                    Assert.Equal(type.Replace('-', '.'), message.RoutingKey);
                    Assert.Equal(JsonValueKind.Array, ev.GetProperty("loadavg").ValueKind);
                    Assert.Equal("py-celery", ev.GetProperty("sw_ident").GetString());
                }
            }

            string fixture = root.GetProperty("fixture").GetString()!;
            if (fixture != "redis-event-batched-task-multi")
            {
                string expectedType = fixture["redis-event-".Length..];
                Assert.Contains(events, ev => ev.GetProperty("type").GetString() == expectedType);
            }
        }
    }

    /// <summary>
    /// Remote control: the request is PUBLISHed on /&lt;db&gt;.celery.pidbox (fanout exchange celery.pidbox);
    /// replies are LPUSHed to '&lt;reply routing key&gt;.reply.celery.pidbox', carrying the request's ticket.
    /// </summary>
    private static void CheckControl(JsonElement root)
    {
        JsonElement request = Assert.Single(root.GetProperty("request").EnumerateArray()).GetProperty("args");
        Assert.Equal("PUBLISH", request[0].GetString());
        Assert.Equal("/0.celery.pidbox", request[1].GetString());
        TransportMessage message = DecodeEnvelope(request[2].GetString()!);
        Assert.Equal("celery.pidbox", message.Exchange);
        Assert.Equal("", message.RoutingKey);
        Assert.IsType<double>(message.Headers["expires"]);
        JsonElement body = JsonAssert.Parse(message.Body.Span);
        string method = body.GetProperty("method").GetString()!;
        string ticket = body.GetProperty("ticket").GetString()!;
        JsonElement replyTo = body.GetProperty("reply_to");
        Assert.Equal("reply.celery.pidbox", replyTo.GetProperty("exchange").GetString());
        Assert.Equal(JsonValueKind.Object, body.GetProperty("arguments").ValueKind);
        string fixture = root.GetProperty("fixture").GetString()!;
        Assert.EndsWith("-" + method, fixture, StringComparison.Ordinal);

        // Celeriac's worker reads the request as Celery's worker does.
        Assert.True(Celeriac.Control.Mailbox.TryParse(message, out Celeriac.Control.ControlRequest? parsed));
        Assert.Equal((method, ticket, "reply.celery.pidbox", replyTo.GetProperty("routing_key").GetString()), (parsed!.Method, parsed.Ticket, parsed.ReplyExchange, parsed.ReplyRoutingKey));
        Assert.NotNull(parsed.Expires);
        if (method == "revoke")
        {
            Assert.Equal(body.GetProperty("arguments").GetProperty("task_id").EnumerateArray().Select(e => e.GetString()!), Celeriac.Control.Mailbox.RevokedIds(parsed));
        }

        foreach (JsonElement reply in root.GetProperty("replies").EnumerateArray())
        {
            JsonElement args = reply.GetProperty("args");
            Assert.Equal("LPUSH", args[0].GetString());
            Assert.Equal(replyTo.GetProperty("routing_key").GetString() + ".reply.celery.pidbox", args[1].GetString());
            TransportMessage answer = DecodeEnvelope(args[2].GetString()!);
            Assert.Equal("reply.celery.pidbox", answer.Exchange);
            Assert.Equal(replyTo.GetProperty("routing_key").GetString(), answer.RoutingKey);
            Assert.Equal(ticket, answer.Headers["ticket"]);
            JsonElement answerBody = JsonAssert.Parse(answer.Body.Span);
            Assert.True(answerBody.TryGetProperty("wire@vm", out JsonElement perNode), "replies are keyed by node name");
            if (method == "ping")
            {
                Assert.Equal("pong", perNode.GetProperty("ok").GetString());
            }

            if (method is "ping" or "revoke")
            {
                // The reply Celeriac's worker sends for the same request is the same document, with the same ticket.
                TransportMessage ours = Celeriac.Control.Mailbox.Reply(parsed, "wire@vm", new Dictionary<string, object?> { ["ok"] = perNode.GetProperty("ok").GetString() });
                JsonAssert.Equal(answerBody, JsonAssert.Parse(ours.Body.Span), "reply");
                Assert.Equal(ticket, ours.Headers["ticket"]);
                if (method == "revoke")
                {
                    Assert.Equal($"tasks {string.Join(", ", Celeriac.Control.Mailbox.RevokedIds(parsed))} flagged as revoked", perNode.GetProperty("ok").GetString());
                }
            }
        }

        if (method == "hello")
        {
            Assert.Empty(root.GetProperty("replies").EnumerateArray());
        }
    }

    /// <summary>kombu's Redis bindings: SET _kombu.binding.&lt;exchange&gt; of 'routing_key\x06\x16pattern\x06\x16queue'.</summary>
    private static void CheckBindings(JsonElement root)
    {
        JsonProperty binding = Assert.Single(root.GetProperty("bindings").EnumerateObject());
        Assert.Equal("_kombu.binding.celery", binding.Name);
        string member = Assert.Single(binding.Value.EnumerateArray()).GetString()!;
        Assert.Equal("celery" + Separator + Separator + "celery", member);
        Assert.Equal(["celery", "", "celery"], member.Split(Separator));
    }

    /// <summary>Command traces: every envelope in them decodes; the order of the hot path is Celery's.</summary>
    private static void CheckTrace(JsonElement root)
    {
        JsonElement[] commands = [.. root.GetProperty("commands").EnumerateArray().Select(c => c.GetProperty("args"))];
        string Verb(JsonElement a) => a[0].GetString()!.ToUpperInvariant();
        int envelopes = 0;
        foreach (JsonElement args in commands.Where(a => Verb(a) is "LPUSH" or "PUBLISH"))
        {
            string payload = args[args.GetArrayLength() - 1].GetString()!;
            if (payload.StartsWith("{\"body\"", StringComparison.Ordinal))
            {
                TransportMessage m = DecodeEnvelope(payload);
                if (m.Headers.ContainsKey("task"))
                {
                    Assert.True(TaskMessage.TryDecode(m, out TaskMessage? task, out _, out _, out string? error), error);
                    task!.Dispose();
                }

                envelopes++;
            }
            else
            {
                AssertResultDocument(payload);
            }
        }

        Assert.True(envelopes > 0);
        foreach (JsonElement sadd in commands.Where(a => Verb(a) == "SADD"))
        {
            Assert.StartsWith("_kombu.binding.", sadd[1].GetString(), StringComparison.Ordinal);
            Assert.Equal(3, sadd[2].GetString()!.Split(Separator).Length);
        }

        int Index(Func<JsonElement, bool> match) => Array.FindIndex(commands, a => match(a));
        if (root.GetProperty("fixture").GetString() == "redis-trace-task-lifecycle")
        {
            // kombu QoS records the taken message (unacked + unacked_index); with early acks (the default) the
            // ack (HDEL) comes before the task's STARTED and SUCCESS writes.
            int push = Index(a => Verb(a) == "LPUSH" && a[1].GetString() == "celery");
            int unacked = Index(a => Verb(a) == "HSET" && a[1].GetString() == "unacked");
            int ack = Index(a => Verb(a) == "HDEL" && a[1].GetString() == "unacked");
            int started = Index(a => Verb(a) == "SETEX" && a[3].GetString()!.Contains("\"STARTED\"", StringComparison.Ordinal));
            int success = Index(a => Verb(a) == "SETEX" && a[3].GetString()!.Contains("\"SUCCESS\"", StringComparison.Ordinal));
            Assert.True(push >= 0 && unacked > push && ack > unacked && started > ack && success > started, $"order: push {push}, unacked {unacked}, ack {ack}, started {started}, success {success}");
            Assert.Contains(commands, a => Verb(a) == "ZADD" && a[1].GetString() == "unacked_index");
        }
        else
        {
            Assert.Contains(commands, a => Verb(a) == "PUBLISH" && a[1].GetString() == "/0.celeryev/worker.online");
            Assert.Contains(commands, a => Verb(a) == "PSUBSCRIBE" && a[1].GetString() == "/0.celery.pidbox");
            Assert.Contains(commands, a => Verb(a) == "SADD" && a[1].GetString() == "_kombu.binding.celery.pidbox");
            Assert.Contains(commands, a => Verb(a) == "BRPOP" && a[1].GetString() == "celery");
        }
    }

    /// <summary>Contract: the exchanges, queues and bindings Celery declares on RabbitMQ.</summary>
    private static void CheckAmqpTopology(JsonElement root)
    {
        JsonElement before = root.GetProperty("before_worker");
        JsonElement with = root.GetProperty("with_worker");
        Dictionary<string, string> Exchanges(JsonElement s) => s.GetProperty("exchanges").EnumerateArray()
            .ToDictionary(e => e.GetProperty("name").GetString()!, e => e.GetProperty("type").GetString()!);

        Assert.Equal("direct", Exchanges(before)["celery"]);
        Assert.Equal("topic", Exchanges(before)["celeryev"]);
        Assert.Equal("fanout", Exchanges(with)["celery.pidbox"]);
        Assert.Equal("direct", Exchanges(with)["reply.celery.pidbox"]);
        JsonElement celeryQueue = before.GetProperty("queues").EnumerateArray().Single(q => q.GetProperty("name").GetString() == "celery");
        Assert.True(celeryQueue.GetProperty("durable").GetBoolean());
        JsonElement[] bindings = [.. with.GetProperty("bindings").EnumerateArray()];
        Assert.Contains(bindings, b => b.GetProperty("source_name").GetString() == "celery" && b.GetProperty("destination_name").GetString() == "celery" && b.GetProperty("routing_key").GetString() == "celery");
        Assert.Contains(bindings, b => b.GetProperty("source_name").GetString() == "celery.pidbox" && b.GetProperty("destination_name").GetString() == "wire@vm.celery.pidbox");
        Assert.Contains(bindings, b => b.GetProperty("source_name").GetString() == "celeryev" && b.GetProperty("routing_key").GetString() == "worker.#");
    }

    // ---- helpers -------------------------------------------------------------------------------

    private static TransportMessage DecodeEnvelope(string raw)
    {
        Assert.True(KombuEnvelope.TryDecode(JsonAssert.Utf8(raw), out TransportMessage? message, out string? error), error);
        Assert.Equal("application/json", message!.ContentType);
        return message;
    }

    private static string? OptionalString(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out JsonElement e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;

    private static DateTimeOffset? OptionalTime(JsonElement obj, string name) =>
        OptionalString(obj, name) is { } s ? DateTimeOffset.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : null;

    private static JsonElement ToJson(object? value)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            JsonValues.Write(w, value);
        }

        return JsonAssert.Parse(buffer.WrittenSpan);
    }

    /// <summary>A key-value backend over a dictionary, to see the exact bytes the shared code writes.</summary>
    internal sealed class RecordingBackend() : KeyValueResultBackend(new ResultBackendOptions { Url = new Uri("memory://recording") })
    {
        public Dictionary<string, byte[]> Values { get; } = new(StringComparer.Ordinal);

        /// <summary>Every value written, in order.</summary>
        public System.Collections.Concurrent.ConcurrentQueue<(string Key, byte[] Value)> Writes { get; } = new();

        protected override ValueTask<byte[]?> GetValueAsync(string key, CancellationToken ct) =>
            ValueTask.FromResult(Values.GetValueOrDefault(key));

        protected override ValueTask SetValueAsync(string key, byte[] value, TimeSpan? expiry, CancellationToken ct)
        {
            Writes.Enqueue((key, value));
            Values[key] = value;
            return ValueTask.CompletedTask;
        }

        protected override ValueTask DeleteValueAsync(string key, CancellationToken ct)
        {
            Values.Remove(key);
            return ValueTask.CompletedTask;
        }

        protected override ValueTask<long> IncrementValueAsync(string key, TimeSpan? expiry, CancellationToken ct)
        {
            long next = (Values.TryGetValue(key, out byte[]? old) ? long.Parse(Encoding.ASCII.GetString(old), System.Globalization.CultureInfo.InvariantCulture) : 0) + 1;
            Values[key] = Encoding.ASCII.GetBytes(next.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return ValueTask.FromResult(next);
        }
    }
}
