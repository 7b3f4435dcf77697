using System.Collections;
using System.CommandLine;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace Celeriac.Cli.Commands.Report;

/// <summary>
/// <c>celeriac report</c>, the .NET side of Celery's <c>celery report</c> (<c>app.bugreport()</c>): software, platform,
/// where it connects (passwords masked) and every setting as the app resolved it (code, appsettings.json,
/// <c>CELERIAC_*</c>, flags). It reads the local configuration only; it does not connect.
/// </summary>
internal static class ReportCommand
{
    /// <summary>Settings that are services or derived values, not configuration.</summary>
    private static readonly HashSet<string> s_skipped = new(StringComparer.Ordinal)
    {
        nameof(CeleriacOptions.TimeProvider),
        nameof(CeleriacOptions.LoggerFactory),
        nameof(CeleriacOptions.Services),
        nameof(CeleriacOptions.EffectiveQueues),
    };

    public static async Task<int> RunAsync(CliContext context, ParseResult parse, CancellationToken ct)
    {
        CliSession session = context.Open(parse);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeSession = session.ConfigureAwait(false);
        await context.Out.WriteAsync(Build(session.App.Options).AsMemory(), ct).ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    internal static string Build(CeleriacOptions options)
    {
        var text = new StringBuilder();
        string backend = options.ResultBackend is { } b ? UrlText.Mask(b) : "(the broker's store)";
        text.AppendLine(CultureInfo.InvariantCulture, $"software -> celeriac:{CeleriacCli.Version} runtime:{RuntimeInformation.FrameworkDescription}");
        text.AppendLine(CultureInfo.InvariantCulture, $"            System.CommandLine:{VersionOf(typeof(Command))} Spectre.Console:{VersionOf(typeof(Spectre.Console.AnsiConsole))}");
        text.AppendLine(CultureInfo.InvariantCulture, $"platform -> os:{RuntimeInformation.OSDescription.Trim()} arch:{RuntimeInformation.ProcessArchitecture} rid:{RuntimeInformation.RuntimeIdentifier}");
        text.AppendLine(CultureInfo.InvariantCulture, $"            processors:{Environment.ProcessorCount} gc:{(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")}");
        text.AppendLine(CultureInfo.InvariantCulture, $"settings -> transport:{UrlText.Mask(options.BrokerUrl)} results:{backend}");
        text.AppendLine();
        foreach (PropertyInfo property in typeof(CeleriacOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance)
                     .Where(p => !s_skipped.Contains(p.Name) && p.GetIndexParameters().Length == 0)
                     .OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"{property.Name}: {Format(property.Name, property.GetValue(options))}");
        }

        return text.ToString();
    }

    private static string Format(string name, object? value) => value switch
    {
        null => "None",
        string s when name.EndsWith("Url", StringComparison.Ordinal) || name == nameof(CeleriacOptions.ResultBackend) => "'" + UrlText.Mask(s) + "'",
        string s => "'" + s + "'",
        bool flag => flag ? "True" : "False",
        TimeSpan span => span.TotalSeconds.ToString(CultureInfo.InvariantCulture) + "s",
        IDictionary dict => "{" + string.Join(", ", dict.Keys.Cast<object>().Select(k => $"'{k}': '{dict[k]}'")) + "}",
        IEnumerable list => "[" + string.Join(", ", list.Cast<object?>().Select(i => $"'{i}'")) + "]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static string VersionOf(Type type) =>
        type.Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? type.Assembly.GetName().Version?.ToString() ?? "?";
}
