using System.Text;
using System.Text.Json.Nodes;
using Celeriac.Protocol;

namespace Celeriac.Tests.Worker;

/// <summary>The kinds of bad input a broker can hold, and what the worker must do with each.</summary>
public enum MalformedKind
{
    RandomBytes,
    NotAnObject,
    NoBody,
    NoProperties,
    BodyNotBase64,
    BodyWrongShape,
    BodyMissingArguments,
    NoTaskHeader,
    NoIdHeader,
    BadEtaOrExpires,
    RetriesNotInteger,
    TimeLimitWrongShape,
    HeadersNotObject,
    DeepEnvelope,
    UnknownContentType,
    Pickle,
    HugeBody,
    DeepBody,
    UnknownTask,
}

/// <summary>What the worker does with a bad message.</summary>
public enum MalformedOutcome
{
    /// <summary>One InvalidMessage log line (event 5); no result, since no id is readable.</summary>
    InvalidNoId,

    /// <summary>One InvalidMessage log line (event 5) and a FAILURE result for the readable id.</summary>
    InvalidWithFailure,

    /// <summary>One UnknownTask log line (event 4) and a FAILURE NotRegistered.</summary>
    UnknownTask,

    /// <summary>A well-formed message whose arguments do not fit: the task fails with TypeError (event 3).</summary>
    ArgumentError,
}

/// <summary>One generated bad message: the bytes as the broker holds them, its id if readable, the expected outcome.</summary>
public sealed record MalformedMessage(MalformedKind Kind, byte[] Raw, string? Id, MalformedOutcome Outcome);

/// <summary>Generators of bad messages (kombu JSON envelopes, as key-value brokers store them).</summary>
public static class MalformedMessages
{
    public const string TaskName = "tasks.add";

    public static MalformedOutcome OutcomeOf(MalformedKind kind) => kind switch
    {
        MalformedKind.RandomBytes or MalformedKind.NotAnObject or MalformedKind.NoBody or MalformedKind.NoProperties or
        MalformedKind.BodyNotBase64 or MalformedKind.NoIdHeader or MalformedKind.HeadersNotObject or MalformedKind.DeepEnvelope => MalformedOutcome.InvalidNoId,
        MalformedKind.UnknownTask => MalformedOutcome.UnknownTask,
        MalformedKind.BodyMissingArguments => MalformedOutcome.ArgumentError,
        _ => MalformedOutcome.InvalidWithFailure,
    };

    /// <summary>A valid protocol v2 envelope for <paramref name="task"/>(<paramref name="bodyJson"/>).</summary>
    public static JsonObject Envelope(string id, string task, string bodyJson) => new()
    {
        ["body"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(bodyJson)),
        ["content-encoding"] = "utf-8",
        ["content-type"] = "application/json",
        ["headers"] = new JsonObject
        {
            ["lang"] = "py",
            ["task"] = task,
            ["id"] = id,
            ["shadow"] = null,
            ["eta"] = null,
            ["expires"] = null,
            ["group"] = null,
            ["group_index"] = null,
            ["retries"] = 0,
            ["timelimit"] = new JsonArray(null, null),
            ["root_id"] = id,
            ["parent_id"] = null,
            ["argsrepr"] = "()",
            ["kwargsrepr"] = "{}",
            ["origin"] = "gen1@fuzz",
            ["ignore_result"] = false,
        },
        ["properties"] = new JsonObject
        {
            ["correlation_id"] = id,
            ["reply_to"] = "fuzz",
            ["delivery_mode"] = 2,
            ["delivery_info"] = new JsonObject { ["exchange"] = "", ["routing_key"] = "celery" },
            ["priority"] = 0,
            ["body_encoding"] = "base64",
            ["delivery_tag"] = Guid.NewGuid().ToString(),
        },
    };

    public static byte[] Valid(string id, long x, long y) =>
        Bytes(Envelope(id, TaskName, $"[[{x}, {y}], {{}}, {{\"callbacks\": null, \"errbacks\": null, \"chain\": null, \"chord\": null}}]"));

    public static MalformedMessage Make(MalformedKind kind, Random random)
    {
        string id = Guid.NewGuid().ToString();
        MalformedOutcome outcome = OutcomeOf(kind);
        string? readableId = outcome == MalformedOutcome.InvalidNoId ? null : id;
        byte[] raw = kind switch
        {
            MalformedKind.RandomBytes => RandomBytes(random),
            MalformedKind.NotAnObject => Encoding.UTF8.GetBytes(Pick(random, "[1, 2]", "\"text\"", "42", "null", "true", "[]", "")),
            MalformedKind.NoBody => Without(Good(id), "body"),
            MalformedKind.NoProperties => Without(Good(id), "properties"),
            MalformedKind.BodyNotBase64 => With(Good(id), e => e["body"] = Pick(random, "!!! not base64 !!!", "abc", "====")),
            MalformedKind.BodyWrongShape => With(Good(id), e => e["body"] = Base64(Pick(random, "[]", "{}", "[1, 2]", "[\"a\", {}]", "[[], []]", "[[], {}, 5]", "\"x\"", "[[1, 2], {}", "[[1], {}, {}, {}]"))),
            MalformedKind.BodyMissingArguments => With(Good(id), e => e["body"] = Base64("[[], {}]")),
            MalformedKind.NoTaskHeader => With(Good(id), e => Headers(e).Remove("task")),
            MalformedKind.NoIdHeader => With(Good(id), e => Headers(e).Remove("id")),
            MalformedKind.BadEtaOrExpires => With(Good(id), e => Headers(e)[Pick(random, "eta", "expires")] = Pick<JsonNode>(random, "not a date", "2026-13-45T99:00:00", 12345, new JsonArray(), true)),
            MalformedKind.RetriesNotInteger => With(Good(id), e => Headers(e)["retries"] = Pick<JsonNode>(random, "three", 1.5, new JsonArray(), JsonNode.Parse("1000000000000000000000000000000")!, new JsonObject())),
            MalformedKind.TimeLimitWrongShape => With(Good(id), e => Headers(e)["timelimit"] = Pick<JsonNode>(random, "30", new JsonArray(1), new JsonArray(1, 2, 3), new JsonArray("a", "b"), new JsonArray(-1, 2), 30)),
            MalformedKind.HeadersNotObject => With(Good(id), e => e["headers"] = Pick<JsonNode?>(random, new JsonArray(1), "headers", 5, null)),
            MalformedKind.DeepEnvelope => Encoding.UTF8.GetBytes("{\"headers\": " + new string('[', 10_000) + new string(']', 10_000) + "}"),
            MalformedKind.UnknownContentType => With(Good(id), e => e["content-type"] = Pick(random, "application/x-yaml", "text/plain", "application/x-msgpack", "")),
            MalformedKind.Pickle => With(Good(id), e =>
            {
                e["content-type"] = "application/x-python-serialize";
                e["content-encoding"] = "binary";
                // pickle protocol 4 of os.system('touch /tmp/pwned'): must never be interpreted.
                e["body"] = "gASVKwAAAAAAAACMBXBvc2l4lIwGc3lzdGVtlJOUjBB0b3VjaCAvdG1wL3B3bmVklIWUUpQu";
            }),
            MalformedKind.HugeBody => With(Good(id), e => e["body"] = Convert.ToBase64String(HugeBody())),
            MalformedKind.DeepBody => With(Good(id), e => e["body"] = Base64(new string('[', 10_000) + new string(']', 10_000))),
            MalformedKind.UnknownTask => Bytes(Envelope(id, "tasks.not_registered_here", "[[1, 2], {}, {}]")),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        return new MalformedMessage(kind, raw, readableId, outcome);
    }

    private static JsonObject Good(string id) => Envelope(id, TaskName, "[[1, 2], {}, {\"callbacks\": null, \"errbacks\": null, \"chain\": null, \"chord\": null}]");

    private static JsonObject Headers(JsonObject envelope) => (JsonObject)envelope["headers"]!;

    private static byte[] Bytes(JsonNode node) => Encoding.UTF8.GetBytes(node.ToJsonString());

    private static byte[] With(JsonObject envelope, Action<JsonObject> change)
    {
        change(envelope);
        return Bytes(envelope);
    }

    private static byte[] Without(JsonObject envelope, string key)
    {
        envelope.Remove(key);
        return Bytes(envelope);
    }

    private static string Base64(string json) => Convert.ToBase64String(Encoding.UTF8.GetBytes(json));

    private static T Pick<T>(Random random, params T[] choices) => choices[random.Next(choices.Length)];

    private static byte[] RandomBytes(Random random)
    {
        byte[] bytes = new byte[random.Next(0, 300)];
        random.NextBytes(bytes);
        return bytes;
    }

    private static byte[] HugeBody()
    {
        byte[] body = new byte[TaskMessage.MaxBodyBytes + 1];
        body.AsSpan().Fill((byte)' ');
        body[0] = (byte)'[';
        body[^1] = (byte)']';
        return body;
    }
}
