using System.Globalization;
using Celeriac.Events;

namespace Celeriac.Cli.Commands.Monitor;

/// <summary>
/// Celery's <c>celery.events.dumper.Dumper</c>: an event as <c>&lt;hostname&gt; [&lt;UTC time&gt;] &lt;type&gt;: &lt;fields&gt;</c>,
/// fields sorted by name; a task event also names its task (<c>name(uuid) args=... kwargs=...</c>, remembered from its
/// <c>task-received</c> or <c>task-sent</c>).
/// </summary>
internal sealed class EventDumper
{
    /// <summary>Celery's <c>LRUCache(limit=0xFFF)</c> of task names; forgotten all at once here when full.</summary>
    private const int MaxNames = 0xFFF;

    private readonly Dictionary<string, string> _tasks = new(StringComparer.Ordinal);

    public string Format(CeleryEvent e)
    {
        var fields = new Dictionary<string, object?>(e.Fields, StringComparer.Ordinal);
        double timestamp = Pop(fields, "timestamp") is { } ts and (double or long) ? Convert.ToDouble(ts, CultureInfo.InvariantCulture) : 0;
        string type = PyText.Str(Pop(fields, "type")).ToLowerInvariant();
        string hostname = PyText.Str(Pop(fields, "hostname"));
        string time = UtcText(timestamp);
        if (type.StartsWith("task-", StringComparison.Ordinal))
        {
            string uuid = PyText.Str(Pop(fields, "uuid"));
            string task;
            if (type is "task-received" or "task-sent")
            {
                task = $"{PyText.Str(Pop(fields, "name"))}({uuid}) args={PyText.Str(Pop(fields, "args"))} kwargs={PyText.Str(Pop(fields, "kwargs"))}";
                if (_tasks.Count >= MaxNames)
                {
                    _tasks.Clear();
                }

                _tasks[uuid] = task;
            }
            else
            {
                task = _tasks.GetValueOrDefault(uuid, "");
            }

            string taskFields = Fields(fields);
            return $"{hostname} [{time}] {Humanize(type)}{(taskFields.Length > 0 ? ":" : "")} {task} {taskFields}";
        }

        string text = Fields(fields);
        return $"{hostname} [{time}] {Humanize(type)}{(text.Length > 0 ? ":" : "")} {text}";
    }

    /// <summary>Celery's <c>humanize_type</c>.</summary>
    internal static string Humanize(string type) => type switch
    {
        "worker-offline" => "shutdown",
        "worker-online" => "started",
        "worker-heartbeat" => "heartbeat",
        _ => type.Replace('-', ' '),
    };

    /// <summary>Python's <c>str(datetime.utcfromtimestamp(ts))</c>: microseconds only when there are some.</summary>
    internal static string UtcText(double seconds)
    {
        if (!double.IsFinite(seconds) || Math.Abs(seconds) >= 2e11)
        {
            seconds = 0;
        }

        // As CPython's datetime._fromtimestamp: whole seconds and the rounded microseconds of the fraction apart, so
        // that a timestamp prints the microsecond Celery prints (scaling the whole value first can be 1 µs off).
        double whole = Math.Floor(seconds);
        long micros = (long)Math.Round((seconds - whole) * 1_000_000, MidpointRounding.ToEven);
        DateTimeOffset time = DateTimeOffset.UnixEpoch.AddSeconds(whole).AddTicks(micros * 10);
        return time.ToString(micros % 1_000_000 == 0 ? "yyyy-MM-dd HH:mm:ss" : "yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture);
    }

    private static string Fields(Dictionary<string, object?> fields) =>
        string.Join(", ", fields.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => f.Key + "=" + PyText.Str(f.Value)));

    private static object? Pop(Dictionary<string, object?> fields, string key) =>
        fields.Remove(key, out object? value) ? value : null;
}
