using System.Globalization;
using System.Text;

namespace Celeriac.TestTasks;

/// <summary>
/// Tasks that append one line per run (<c>token pid</c>) to <c>CELERIAC_TEST_RECORD.&lt;pid&gt;</c>, one file per
/// process (appends from several processes to one file can overwrite each other), so a test can count how
/// many times, and in which process, each task ran: see <see cref="ReadRuns"/>.
/// </summary>
public static class RecordingTasks
{
    /// <summary>Records the run, then returns the token.</summary>
    [CeleriacTask("test.record")]
    public static string Record(string token)
    {
        Append(token);
        return token;
    }

    /// <summary>Records the run; the first run of a token then sleeps long (to be killed), later runs return at once.</summary>
    [CeleriacTask("test.slow_first")]
    public static async Task<string> SlowFirst(string token, double seconds, CancellationToken ct)
    {
        bool first = !Lines().Any(l => l.StartsWith(token + " ", StringComparison.Ordinal));
        Append(token);
        if (first)
        {
            await Task.Delay(TimeSpan.FromSeconds(seconds), ct).ConfigureAwait(false);
        }

        return token;
    }

    private static readonly Lock s_gate = new();

    private static string RecordFile => Environment.GetEnvironmentVariable("CELERIAC_TEST_RECORD")
        ?? throw new InvalidOperationException("CELERIAC_TEST_RECORD is not set");

    /// <summary>Every recorded run of every process, as <c>token pid</c> lines.</summary>
    public static string[] ReadRuns(string recordFile)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(recordFile))!;
        return Directory.GetFiles(dir, Path.GetFileName(recordFile) + ".*").SelectMany(File.ReadAllLines).ToArray();
    }

    private static string[] Lines() => ReadRuns(RecordFile);

    private static void Append(string token)
    {
        string line = string.Create(CultureInfo.InvariantCulture, $"{token} {Environment.ProcessId}\n");
        lock (s_gate)
        {
            File.AppendAllText(RecordFile + "." + Environment.ProcessId.ToString(CultureInfo.InvariantCulture), line, Encoding.UTF8);
        }
    }
}
