using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Celeriac.Cli.Commands.Worker;

/// <summary>The worker's start-up banner, laid out as Celery's (<c>celery/apps/worker.py</c>).</summary>
internal static class WorkerBanner
{
    private static readonly string[] s_art =
    [
        " --------------",
        "--- ***** -----",
        "-- ******* ----",
        "- *** --- * ---",
        "- ** ----------",
        "- ** ----------",
        "- ** ----------",
        "- ** ----------",
        "- *** --- * ---",
        "-- ******* ----",
        "--- ***** -----",
        " --------------",
    ];

    public sealed record Info(
        string NodeName,
        string Version,
        string AppName,
        string Transport,
        string Results,
        int Concurrency,
        string Pool,
        IReadOnlyList<string> Queues,
        IReadOnlyList<string> Tasks,
        DateTimeOffset Now,
        bool TaskEvents = false);

    public static string Build(Info info)
    {
        var lines = new List<string>
        {
            $"{info.NodeName} v{info.Version}",
            "",
            $"{Platform()} {info.Now.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)}",
            "",
            "[config]",
            $".> app:         {info.AppName}",
            $".> transport:   {info.Transport}",
            $".> results:     {info.Results}",
            $".> concurrency: {info.Concurrency.ToString(CultureInfo.InvariantCulture)} ({info.Pool})",
            ".> task events: " + (info.TaskEvents ? "ON" : "OFF (enable -E to monitor tasks in this worker)"),
            "",
            "[queues]",
        };
        foreach (string q in info.Queues)
        {
            // kombu's Queue format: name padded to 16, then its exchange and binding key.
            lines.Add($".> {q,-16} exchange={q}(direct) key={q}");
        }

        var text = new StringBuilder(" \n");
        for (int i = 0; i < lines.Count; i++)
        {
            text.Append(i < s_art.Length ? s_art[i] + " " : new string(' ', 16)).Append(lines[i]).Append('\n');
        }

        text.Append('\n').Append("[tasks]").Append('\n');
        foreach (string task in info.Tasks)
        {
            text.Append("  . ").Append(task).Append('\n');
        }

        return text.ToString().Replace("\n", Environment.NewLine, StringComparison.Ordinal);
    }

    private static string Platform() =>
        $"{RuntimeInformation.OSDescription.Trim()} ({RuntimeInformation.ProcessArchitecture}) {RuntimeInformation.FrameworkDescription}";
}
