using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Celeriac.TestTasks;

/// <summary>
/// A chord body that records each call, so that a test can count how many times a chord's body ran and with what,
/// whichever worker ran it: <c>tests/python/interop_tasks.py</c> has the same task in Python, writing the same lines.
/// </summary>
public static class ChordBodyTasks
{
    private static readonly Lock s_gate = new();

    /// <summary>
    /// Appends <c>dotnet &lt;pid&gt; &lt;count&gt; &lt;values as JSON&gt;</c> to <c>&lt;recordFile&gt;.&lt;pid&gt;</c>
    /// (one file per process) and returns how many values it was given.
    /// </summary>
    [CeleriacTask("test.record_body")]
    public static int RecordBody(JsonElement values, string recordFile)
    {
        if (values.ValueKind != JsonValueKind.Array)
        {
            throw new ArgumentException($"record_body() takes a list, got {values.GetRawText()}", nameof(values));
        }

        string pid = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        string line = string.Create(CultureInfo.InvariantCulture, $"dotnet {pid} {values.GetArrayLength()} {values.GetRawText()}\n");
        lock (s_gate)
        {
            File.AppendAllText(recordFile + "." + pid, line, Encoding.UTF8);
        }

        return values.GetArrayLength();
    }
}
