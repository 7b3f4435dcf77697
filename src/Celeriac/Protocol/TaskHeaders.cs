using System.Globalization;
using System.Numerics;

namespace Celeriac.Protocol;

/// <summary>The headers of a Celery protocol v2 task message, typed.</summary>
public sealed class TaskHeaders
{
    /// <summary>The sender's language; Celery writes <c>py</c>, Celeriac <c>dotnet</c>.</summary>
    public string Lang { get; set; } = "dotnet";

    /// <summary>The task name.</summary>
    public required string Task { get; set; }

    /// <summary>The task id (a uuid).</summary>
    public required string Id { get; set; }

    /// <summary>A display name that replaces the task name in logs and events.</summary>
    public string? Shadow { get; set; }

    /// <summary>When the task is due, or <see langword="null"/> to run now.</summary>
    public DateTimeOffset? Eta { get; set; }

    /// <summary>When the task expires; a task received after it is revoked.</summary>
    public DateTimeOffset? Expires { get; set; }

    /// <summary>The group this task belongs to.</summary>
    public string? Group { get; set; }

    /// <summary>Position in its group.</summary>
    public long? GroupIndex { get; set; }

    /// <summary>How many times it has been retried.</summary>
    public int Retries { get; set; }

    /// <summary>Hard time limit in seconds.</summary>
    public double? HardTimeLimit { get; set; }

    /// <summary>Soft time limit in seconds.</summary>
    public double? SoftTimeLimit { get; set; }

    /// <summary>The id of the first task of the workflow.</summary>
    public string? RootId { get; set; }

    /// <summary>The id of the task that sent this one.</summary>
    public string? ParentId { get; set; }

    /// <summary>A printable form of the positional arguments.</summary>
    public string? ArgsRepr { get; set; }

    /// <summary>A printable form of the keyword arguments.</summary>
    public string? KwargsRepr { get; set; }

    /// <summary>Who sent it (<c>gen&lt;pid&gt;@&lt;host&gt;</c>).</summary>
    public string? Origin { get; set; }

    /// <summary>Whether the worker should not store the result.</summary>
    public bool IgnoreResult { get; set; }

    /// <summary>Headers that are not part of protocol v2 (stamps, user headers), kept as they came.</summary>
    public Dictionary<string, object?> Extra => _extra ??= new(StringComparer.Ordinal);

    private Dictionary<string, object?>? _extra;

    /// <summary>The extra headers when there are any, without creating the dictionary (the worker reads trace context from it per task).</summary>
    internal IReadOnlyDictionary<string, object?>? ExtraOrNull => _extra;

    private static readonly HashSet<string> s_known =
    [
        "lang", "task", "id", "shadow", "eta", "expires", "group", "group_index", "retries", "timelimit",
        "root_id", "parent_id", "argsrepr", "kwargsrepr", "origin", "ignore_result",
    ];

    /// <summary>Writes the headers as Celery 5 does, every key present.</summary>
    public Dictionary<string, object?> ToDictionary()
    {
        var d = new Dictionary<string, object?>(16 + (_extra?.Count ?? 0), StringComparer.Ordinal)
        {
            ["lang"] = Lang,
            ["task"] = Task,
            ["id"] = Id,
            ["shadow"] = Shadow,
            ["eta"] = Eta is { } eta ? CeleryJson.FormatIso(eta) : null,
            ["expires"] = Expires is { } exp ? CeleryJson.FormatIso(exp) : null,
            ["group"] = Group,
            ["group_index"] = GroupIndex,
            ["retries"] = (long)Retries,
            ["timelimit"] = new List<object?> { ToNumber(HardTimeLimit), ToNumber(SoftTimeLimit) },
            ["root_id"] = RootId,
            ["parent_id"] = ParentId,
            ["argsrepr"] = ArgsRepr,
            ["kwargsrepr"] = KwargsRepr,
            ["origin"] = Origin,
            ["ignore_result"] = IgnoreResult,
        };
        if (_extra is not null)
        {
            foreach (KeyValuePair<string, object?> kv in _extra)
            {
                d.TryAdd(kv.Key, kv.Value);
            }
        }

        return d;
    }

    private static object? ToNumber(double? seconds) => seconds switch
    {
        null => null,
        { } s when s == Math.Floor(s) && Math.Abs(s) < long.MaxValue => (long)s,
        { } s => s,
    };

    /// <summary>
    /// Reads protocol v2 headers. Returns <see langword="null"/> and a reason when a required header is
    /// missing or a header has the wrong type; <paramref name="id"/> is set whenever the id is readable.
    /// </summary>
    public static TaskHeaders? TryParse(IDictionary<string, object?> headers, out string? id, out string? error)
    {
        id = headers.TryGetValue("id", out object? idValue) ? idValue as string : null;
        if (!headers.TryGetValue("task", out object? taskValue) || taskValue is not string task || task.Length == 0)
        {
            error = "message has no 'task' header (not a protocol v2 task message)";
            return null;
        }

        if (string.IsNullOrEmpty(id))
        {
            error = $"message for task '{task}' has no 'id' header";
            return null;
        }

        var h = new TaskHeaders { Task = task, Id = id };
        try
        {
            foreach (KeyValuePair<string, object?> kv in headers)
            {
                object? v = kv.Value;
                switch (kv.Key)
                {
                    case "lang": h.Lang = v as string ?? ""; break;
                    case "task": case "id": break;
                    case "shadow": h.Shadow = OptionalString(kv.Key, v); break;
                    case "eta": h.Eta = OptionalTime(kv.Key, v); break;
                    case "expires": h.Expires = OptionalTime(kv.Key, v); break;
                    case "group": h.Group = OptionalString(kv.Key, v); break;
                    case "group_index": h.GroupIndex = v is null ? null : Integer(kv.Key, v); break;
                    case "retries": h.Retries = v is null ? 0 : checked((int)Integer(kv.Key, v)); break;
                    case "timelimit": ParseTimeLimit(h, v); break;
                    case "root_id": h.RootId = OptionalString(kv.Key, v); break;
                    case "parent_id": h.ParentId = OptionalString(kv.Key, v); break;
                    case "argsrepr": h.ArgsRepr = v?.ToString(); break;
                    case "kwargsrepr": h.KwargsRepr = v?.ToString(); break;
                    case "origin": h.Origin = v?.ToString(); break;
                    case "ignore_result": h.IgnoreResult = v is bool b ? b : v is not null and not false and not 0L; break;
                    default: h.Extra[kv.Key] = v; break;
                }
            }
        }
        catch (FormatException ex)
        {
            error = ex.Message;
            return null;
        }
        catch (OverflowException)
        {
            error = "header 'retries' is out of range";
            return null;
        }

        error = null;
        return h;
    }

    /// <summary>Whether the header name is one of protocol v2's.</summary>
    public static bool IsProtocolHeader(string name) => s_known.Contains(name);

    private static string? OptionalString(string name, object? v) => v switch
    {
        null => null,
        string s => s,
        _ => throw new FormatException($"header '{name}' must be a string or null"),
    };

    private static long Integer(string name, object? v) => v switch
    {
        long l => l,
        double d when d == Math.Floor(d) && Math.Abs(d) < 1e15 => (long)d,
        BigInteger => throw new OverflowException(),
        _ => throw new FormatException($"header '{name}' must be an integer"),
    };

    private static DateTimeOffset? OptionalTime(string name, object? v) => v switch
    {
        null => null,
        string s when CeleryJson.TryParseIso(s, out DateTimeOffset t) => t,
        _ => throw new FormatException($"header '{name}' is not an ISO 8601 time: {Truncate(v)}"),
    };

    private static void ParseTimeLimit(TaskHeaders h, object? v)
    {
        if (v is null)
        {
            return;
        }

        if (v is not List<object?> { Count: 2 } pair)
        {
            throw new FormatException("header 'timelimit' must be [hard, soft]");
        }

        h.HardTimeLimit = Seconds(pair[0]);
        h.SoftTimeLimit = Seconds(pair[1]);

        static double? Seconds(object? x) => x switch
        {
            null => null,
            long l when l >= 0 => l,
            double d when d >= 0 && double.IsFinite(d) => d,
            _ => throw new FormatException("header 'timelimit' must hold non-negative numbers or null"),
        };
    }

    private static string Truncate(object? v)
    {
        string s = Convert.ToString(v, CultureInfo.InvariantCulture) ?? "null";
        return s.Length > 60 ? s[..60] + "..." : s;
    }
}
