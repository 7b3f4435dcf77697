using System.Globalization;

namespace Celeriac.IntegrationTests.Support;

/// <summary>Processes as Linux's /proc shows them: who is whose child, and who is still there.</summary>
public static class ProcessTree
{
    /// <summary>The live (not zombie) processes whose parent is <paramref name="pid"/>, read from /proc/*/stat.</summary>
    public static IReadOnlyList<int> ChildrenOf(int pid)
    {
        List<int> children = [];
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int candidate))
            {
                continue;
            }

            string stat;
            try
            {
                stat = File.ReadAllText(Path.Join(dir, "stat"));
            }
            catch (IOException)
            {
                continue;
            }

            // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
            string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            if (fields[0] != "Z" && int.Parse(fields[1], CultureInfo.InvariantCulture) == pid)
            {
                children.Add(candidate);
            }
        }

        return children;
    }

    /// <summary>Whether a process (not a zombie) with this id exists.</summary>
    public static bool Exists(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..][0] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Waits (up to <paramref name="timeout"/>) until <paramref name="condition"/> holds; false if it never did.</summary>
    public static async Task<bool> WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        while (!condition())
        {
            if (System.Diagnostics.Stopwatch.GetElapsedTime(start) > timeout)
            {
                return false;
            }

            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        return true;
    }
}
