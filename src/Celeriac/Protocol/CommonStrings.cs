using System.Text;

namespace Celeriac.Protocol;

/// <summary>
/// The names and values that recur in every message and result (header and property names, <c>py</c>, states):
/// decoding them gives the one instance kept here instead of a new string per message. Fixed, so input cannot grow it.
/// </summary>
internal static class CommonStrings
{
    private static readonly string[] s_all =
    [
        // kombu's envelope and its properties.
        "body", "content-type", "content-encoding", "headers", "properties", "correlation_id", "reply_to", "delivery_mode",
        "delivery_info", "exchange", "routing_key", "priority", "body_encoding", "delivery_tag", "expiration", "base64",
        "application/json", "utf-8", "celery",

        // Celery's protocol 2 headers and the body's embed.
        "lang", "py", "task", "id", "shadow", "eta", "expires", "group", "group_index", "retries", "timelimit", "root_id",
        "parent_id", "argsrepr", "kwargsrepr", "origin", "ignore_result", "replaced_task_nesting", "stamped_headers", "stamps",
        "redelivered", "callbacks", "errbacks", "chain", "chord",

        // Result documents.
        "status", "result", "traceback", "children", "date_done", "task_id", "name", "args", "kwargs", "worker", "queue",
        "SUCCESS", "FAILURE", "PENDING", "STARTED", "RETRY", "REVOKED", "exc_type", "exc_message", "exc_module",
    ];

    private static readonly (byte[] Utf8, string Text)[][] s_byLength = Index();

    /// <summary>The kept instance whose UTF-8 is <paramref name="utf8"/>, or null.</summary>
    public static string? Find(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length >= s_byLength.Length)
        {
            return null;
        }

        foreach ((byte[] bytes, string text) in s_byLength[utf8.Length])
        {
            if (utf8.SequenceEqual(bytes))
            {
                return text;
            }
        }

        return null;
    }

    private static (byte[] Utf8, string Text)[][] Index()
    {
        int longest = s_all.Max(s => s.Length);
        var byLength = new (byte[], string)[longest + 1][];
        for (int n = 0; n <= longest; n++)
        {
            byLength[n] = [.. s_all.Where(s => s.Length == n).Select(s => (Encoding.UTF8.GetBytes(s), s))];
        }

        return byLength;
    }
}
