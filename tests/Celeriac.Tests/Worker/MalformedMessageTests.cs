using System.Text;
using System.Text.Json.Nodes;
using Celeriac.Protocol;
using Celeriac.Tests.Support;
using Celeriac.Transport;
using Celeriac.Worker;
using FsCheck;
using FsCheck.Fluent;

namespace Celeriac.Tests.Worker;

/// <summary>
/// Bad input never kills a worker. A transport's test class subclasses this: it creates an app on its broker
/// (not yet started) and puts raw bytes on a queue exactly as the broker would hold them (for key-value
/// brokers: kombu's JSON envelope). The base registers <c>tasks.add</c>, captures the worker's logs and runs it.
/// </summary>
public abstract class MalformedMessageTestsBase
{
    /// <summary>Log event ids from src/Celeriac/Diagnostics/Log.cs.</summary>
    private const int TaskFailedEvent = 3;
    private const int UnknownTaskEvent = 4;
    private const int InvalidMessageEvent = 5;

    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(15);

    /// <summary>Creates an app on a fresh broker and result backend named <paramref name="name"/>; do not start it.</summary>
    protected abstract Task<CeleriacApp> CreateAppAsync(string name);

    /// <summary>Puts <paramref name="raw"/> on <paramref name="queue"/> as the broker stores a message.</summary>
    protected abstract Task InjectRawAsync(CeleriacApp app, string queue, byte[] raw);

    /// <summary>How many bad messages the interleaved run injects.</summary>
    protected virtual int MalformedCount => 3000;

    /// <summary>How many valid messages the interleaved run injects.</summary>
    protected virtual int ValidCount => 300;

    public static TheoryData<MalformedKind> Kinds => [.. Enum.GetValues<MalformedKind>()];

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Worker_OneMalformedMessage_LogsOneLineStoresFailureWhereIdKnownAndKeepsRunning(MalformedKind kind)
    {
        var random = new Random(1234 + (int)kind);
        await using Harness h = await StartAsync(kind.ToString());
        MalformedMessage bad = MalformedMessages.Make(kind, random);
        string validId = Guid.NewGuid().ToString();

        await InjectRawAsync(h.App, h.Queue, bad.Raw);
        await InjectRawAsync(h.App, h.Queue, MalformedMessages.Valid(validId, 20, 22));

        Assert.Equal(42, await h.App.AsyncResult(validId).GetAsync<int>(s_wait, TestContext.Current.CancellationToken));
        await AssertOutcomesAsync(h, [bad]);
        Assert.False(h.Worker.Run.IsCompleted, "the worker stopped");
    }

    [Fact]
    public async Task Worker_ThousandsOfMalformedInterleavedWithValid_AllValidSucceedEveryBadOneLoggedOnce()
    {
        const int seed = 20261124;
        var random = new Random(seed);
        await using Harness h = await StartAsync("interleaved");
        MalformedKind[] kinds = Enum.GetValues<MalformedKind>();
        var bad = new List<MalformedMessage>(MalformedCount);
        var valid = new List<(string Id, int Sum)>(ValidCount);
        int huge = 0;
        int total = MalformedCount + ValidCount;
        for (int i = 0; i < total; i++)
        {
            // Spread the valid ones evenly, and end with one, so that its result means all before it were read.
            bool isValid = valid.Count < ValidCount && (i % (total / ValidCount) == 0 || i == total - 1 || total - i <= ValidCount - valid.Count);
            if (isValid)
            {
                string id = Guid.NewGuid().ToString();
                valid.Add((id, i + 2 * i));
                await InjectRawAsync(h.App, h.Queue, MalformedMessages.Valid(id, i, 2 * i));
                continue;
            }

            MalformedKind kind = kinds[random.Next(kinds.Length)];
            if (kind == MalformedKind.HugeBody && ++huge > 2)
            {
                kind = MalformedKind.RandomBytes; // two 16 MiB bodies prove the limit; more only cost time
            }

            MalformedMessage m = MalformedMessages.Make(kind, random);
            bad.Add(m);
            await InjectRawAsync(h.App, h.Queue, m.Raw);
        }

        foreach ((string id, int sum) in valid)
        {
            AsyncResult result = h.App.AsyncResult(id);
            Assert.Equal(sum, await result.GetAsync<int>(s_wait, TestContext.Current.CancellationToken));
        }

        await AssertOutcomesAsync(h, bad);
        Assert.False(h.Worker.Run.IsCompleted, "the worker stopped");

        // Still consuming after all of it.
        string last = Guid.NewGuid().ToString();
        await InjectRawAsync(h.App, h.Queue, MalformedMessages.Valid(last, 1, 1));
        Assert.Equal(2, await h.App.AsyncResult(last).GetAsync<int>(s_wait, TestContext.Current.CancellationToken));
        Assert.True(bad.Count == MalformedCount && valid.Count == ValidCount, $"seed {seed}: {bad.Count} bad, {valid.Count} valid");
    }

    [Fact]
    public async Task Worker_PickleMessage_FailureSaysPickleIsRefused()
    {
        await using Harness h = await StartAsync("pickle");
        bool existedBefore = File.Exists("/tmp/pwned");
        MalformedMessage pickle = MalformedMessages.Make(MalformedKind.Pickle, new Random(1));

        await InjectRawAsync(h.App, h.Queue, pickle.Raw);

        TaskFailedException error = await Assert.ThrowsAsync<TaskFailedException>(() =>
            h.App.AsyncResult(pickle.Id!).GetAsync<object>(s_wait, TestContext.Current.CancellationToken));
        Assert.Contains("pickle", error.RemoteMessage, StringComparison.OrdinalIgnoreCase);
        Assert.Contains(h.Logs.Entries, e => e.EventId.Id == InvalidMessageEvent && e.Message.Contains("pickle", StringComparison.Ordinal));
        Assert.Equal(existedBefore, File.Exists("/tmp/pwned")); // the payload's os.system never ran
    }

    private static async Task AssertOutcomesAsync(Harness h, IReadOnlyCollection<MalformedMessage> bad)
    {
        int expectedLines = bad.Count(m => m.Outcome != MalformedOutcome.ArgumentError);
        int expectedArgumentErrors = bad.Count(m => m.Outcome == MalformedOutcome.ArgumentError);
        int Lines() => h.Logs.Count(InvalidMessageEvent) + h.Logs.Count(UnknownTaskEvent);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(s_wait);
        while ((Lines() < expectedLines || h.Logs.Count(TaskFailedEvent) < expectedArgumentErrors) && !timeout.IsCancellationRequested)
        {
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        // One line per bad message, of the right kind.
        Assert.Equal(bad.Count(m => m.Outcome is MalformedOutcome.InvalidNoId or MalformedOutcome.InvalidWithFailure), h.Logs.Count(InvalidMessageEvent));
        Assert.Equal(bad.Count(m => m.Outcome == MalformedOutcome.UnknownTask), h.Logs.Count(UnknownTaskEvent));
        Assert.Equal(expectedArgumentErrors, h.Logs.Count(TaskFailedEvent));
        Assert.DoesNotContain(h.Logs.Entries, e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Critical);

        // A FAILURE for every bad message whose id was readable.
        foreach (MalformedMessage m in bad.Where(m => m.Id is not null))
        {
            TaskResultMeta? meta = null;
            try
            {
                meta = await h.App.ResultBackend.WaitAsync(m.Id!, timeout.Token);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested)
            {
            }

            Assert.True(meta is not null, $"{m.Kind}: no result stored for {m.Id}");
            Assert.Equal(TaskStates.Failure, meta.Status);
            string expectedType = m.Outcome switch
            {
                MalformedOutcome.UnknownTask => "NotRegistered",
                MalformedOutcome.ArgumentError => "TypeError",
                _ => "ContentDisallowed",
            };
            Assert.True(expectedType == meta.Exception?.Type, $"{m.Kind}: expected {expectedType}, got {meta.Exception?.Type}: {meta.Exception?.Message}");
        }
    }

    private async Task<Harness> StartAsync(string scenario)
    {
        string name = $"malformed-{scenario}-{Guid.NewGuid():N}";
        CeleriacApp app = await CreateAppAsync(name);
        var logs = new CollectingLoggerFactory();
        app.Options.LoggerFactory = logs;
        app.Task(MalformedMessages.TaskName, (int x, int y) => x + y);
        RunningWorker worker = await RunningWorker.StartAsync(app);
        return new Harness(app, worker, logs, app.Options.EffectiveQueues[0]);
    }

    private sealed record Harness(CeleriacApp App, RunningWorker Worker, CollectingLoggerFactory Logs, string Queue) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Worker.DisposeAsync();
    }
}

/// <summary>The malformed-message proof on the in-process broker.</summary>
public sealed class MemoryMalformedMessageTests : MalformedMessageTestsBase
{
    protected override Task<CeleriacApp> CreateAppAsync(string name) =>
        Task.FromResult(new CeleriacApp(new CeleriacOptions { BrokerUrl = "memory://" + name, Concurrency = 4 }));

    protected override Task InjectRawAsync(CeleriacApp app, string queue, byte[] raw)
    {
        ((MemoryTransport)app.Transport).InjectRaw(queue, raw);
        return Task.CompletedTask;
    }
}

/// <summary>The decoders never throw, whatever the bytes.</summary>
public sealed class DecoderRobustnessTests
{
    private static readonly Config s_config = Config.QuickThrowOnFailure.WithMaxTest(2000);

    [Fact]
    public void TryDecode_ArbitraryBytes_NeverThrows()
    {
        Arbitrary<byte[]> bytes = ArbMap.Default.ArbFor<byte[]>();

        Check.One(s_config, Prop.ForAll(bytes, raw =>
        {
            if (KombuEnvelope.TryDecode(raw, out TransportMessage? m, out _))
            {
                DecodeTask(m!);
            }
        }));
    }

    [Fact]
    public void TryDecode_ArbitraryJsonishEnvelopes_NeverThrows()
    {
        Gen<JsonNode?> anyValue = JsonishGen(3);
        Gen<string> key = Gen.Elements("body", "content-type", "content-encoding", "headers", "properties", "task", "id", "eta", "expires",
            "retries", "timelimit", "body_encoding", "delivery_info", "priority", "delivery_mode", "x");
        Gen<JsonObject> envelope =
            from body in Gen.OneOf(Gen.Elements<JsonNode?>("W1tdLCB7fSwge31d", "W1sxLDJdLHt9XQ==", "!!", null, 5), anyValue)
            from headerPairs in Gen.ListOf(Gen.Zip(key, anyValue))
            from propertyPairs in Gen.ListOf(Gen.Zip(key, anyValue))
            from contentType in Gen.Elements<JsonNode?>("application/json", "application/x-python-serialize", null, 1)
            from drop in Gen.Elements("", "body", "headers", "properties")
            select Build(body, headerPairs, propertyPairs, contentType, drop);

        Check.One(s_config, Prop.ForAll(envelope.ToArbitrary(), e =>
        {
            byte[] raw = Encoding.UTF8.GetBytes(e.ToJsonString());
            if (KombuEnvelope.TryDecode(raw, out TransportMessage? m, out string? error))
            {
                DecodeTask(m!);
            }
            else
            {
                Assert.False(string.IsNullOrEmpty(error));
            }
        }));
    }

    [Fact]
    public void TryDecode_ArbitraryHeadersAndBodies_NeverThrows()
    {
        Gen<TransportMessage> messages =
            from headers in Gen.ListOf(Gen.Zip(Gen.Elements("task", "id", "eta", "expires", "retries", "timelimit", "group_index", "shadow", "ignore_result", "root_id"), JsonishGen(2)))
            from body in Gen.OneOf(JsonishGen(4).Select(n => n?.ToJsonString() ?? "null"), ArbMap.Default.GeneratorFor<string>().Select(s => s ?? ""))
            select new TransportMessage
            {
                Body = Encoding.UTF8.GetBytes(body),
                Headers = headers.GroupBy(h => h.Item1).ToDictionary(g => g.Key, g => ToPlain(g.First().Item2)),
            };

        Check.One(s_config, Prop.ForAll(messages.ToArbitrary(), DecodeTask));
    }

    private static void DecodeTask(TransportMessage m)
    {
        if (TaskMessage.TryDecode(m, out TaskMessage? task, out _, out _, out string? error))
        {
            task!.Dispose();
        }
        else
        {
            Assert.False(string.IsNullOrEmpty(error));
        }
    }

    private static object? ToPlain(JsonNode? node) => JsonValues.Parse(Encoding.UTF8.GetBytes(node?.ToJsonString() ?? "null"));

    private static JsonObject Build(JsonNode? body, IEnumerable<(string, JsonNode?)> headers, IEnumerable<(string, JsonNode?)> properties, JsonNode? contentType, string drop)
    {
        var h = new JsonObject();
        foreach ((string k, JsonNode? v) in headers)
        {
            h[k] = v?.DeepClone();
        }

        var p = new JsonObject { ["body_encoding"] = "base64" };
        foreach ((string k, JsonNode? v) in properties)
        {
            p[k] = v?.DeepClone();
        }

        var e = new JsonObject { ["body"] = body?.DeepClone(), ["content-type"] = contentType?.DeepClone(), ["headers"] = h, ["properties"] = p };
        if (drop.Length > 0)
        {
            e.Remove(drop);
        }

        return e;
    }

    /// <summary>JSON values of every kind, nested up to <paramref name="depth"/>.</summary>
    internal static Gen<JsonNode?> JsonishGen(int depth)
    {
        Gen<JsonNode?> leaf = Gen.OneOf(
            Gen.Constant<JsonNode?>(null),
            ArbMap.Default.GeneratorFor<bool>().Select(b => (JsonNode?)b),
            ArbMap.Default.GeneratorFor<long>().Select(l => (JsonNode?)l),
            ArbMap.Default.GeneratorFor<NormalFloat>().Select(d => (JsonNode?)d.Get),
            ArbMap.Default.GeneratorFor<string>().Select(s => (JsonNode?)(s ?? "")),
            Gen.Elements<JsonNode?>("2026-11-24T01:14:43.969068+00:00", "celery", "tasks.add", "", "application/json"),
            Gen.Constant<JsonNode?>(JsonNode.Parse("123456789012345678901234567890")));
        if (depth <= 0)
        {
            return leaf;
        }

        Gen<JsonNode?> inner = JsonishGen(depth - 1);
        return Gen.Frequency(
            (4, leaf),
            (1, Gen.ListOf(inner).Select(items => (JsonNode?)new JsonArray([.. items.Select(i => i?.DeepClone())]))),
            (1, Gen.ListOf(Gen.Zip(ArbMap.Default.GeneratorFor<string>().Select(s => s ?? ""), inner)).Select(pairs =>
            {
                var o = new JsonObject();
                foreach ((string k, JsonNode? v) in pairs)
                {
                    o[k] = v?.DeepClone();
                }

                return (JsonNode?)o;
            })));
    }
}
