using System.Globalization;
using System.Text;

namespace Celeriac.TestTasks;

/// <summary>
/// Tasks that append one line per run (<c>token pid</c>) to the file named by <c>CELERIAC_TEST_RECORD</c>,
/// so a test can count how many times, and in which process, each task ran.
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

    private static string RecordFile => Environment.GetEnvironmentVariable("CELERIAC_TEST_RECORD")
        ?? throw new InvalidOperationException("CELERIAC_TEST_RECORD is not set");

    private static string[] Lines() => File.Exists(RecordFile) ? File.ReadAllLines(RecordFile) : [];

    private static void Append(string token)
    {
        // One write per line with O_APPEND: lines from several processes never interleave.
        byte[] line = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{token} {Environment.ProcessId}\n"));
        using var stream = new FileStream(RecordFile, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        stream.Write(line);
    }
}
