using System.Globalization;
using System.Reflection;

namespace Celeriac.Events;

/// <summary>
/// The worker's own events (<c>worker-online</c>, <c>worker-heartbeat</c>, <c>worker-offline</c>) with the fields of
/// Celery's <c>Heart</c>: freq, active, processed, loadavg and the software the worker runs.
/// </summary>
internal static class WorkerEvents
{
    /// <summary>
    /// The software a Celeriac worker reports. Not Celery's <c>py-celery</c>: monitors show it as the worker's
    /// software, and <c>sw_ver</c> is then Celeriac's version, which would read as a wrong Celery version under Celery's name.
    /// </summary>
    public const string SoftwareIdent = "celeriac";

    /// <summary>Celeriac's version (the package version, without the commit).</summary>
    public static string SoftwareVersion { get; } =
        (typeof(WorkerEvents).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? typeof(WorkerEvents).Assembly.GetName().Version?.ToString(3)
            ?? "0.0.0").Split('+')[0];

    /// <summary>Python's <c>platform.system()</c> of this machine.</summary>
    public static string SoftwareSystem { get; } =
        OperatingSystem.IsLinux() ? "Linux"
        : OperatingSystem.IsWindows() ? "Windows"
        : OperatingSystem.IsMacOS() ? "Darwin"
        : OperatingSystem.IsFreeBSD() ? "FreeBSD"
        : System.Runtime.InteropServices.RuntimeInformation.OSDescription;

    /// <summary>Publishes a worker event now (worker events are never buffered).</summary>
    public static ValueTask SendAsync(EventDispatcher events, string type, double freq, int active, long processed, CancellationToken ct) =>
        events.PublishAsync(type, (freq, active, processed, LoadAverage()), static (w, s) =>
        {
            w.WritePropertyName("freq"u8);
            EventMessages.WriteFloat(w, s.freq);
            w.WriteNumber("active"u8, s.active);
            w.WriteNumber("processed"u8, s.processed);
            w.WriteStartArray("loadavg"u8);
            EventMessages.WriteFloat(w, s.Item4.One);
            EventMessages.WriteFloat(w, s.Item4.Five);
            EventMessages.WriteFloat(w, s.Item4.Fifteen);
            w.WriteEndArray();
            w.WriteString("sw_ident"u8, SoftwareIdent);
            w.WriteString("sw_ver"u8, SoftwareVersion);
            w.WriteString("sw_sys"u8, SoftwareSystem);
        }, ct);

    /// <summary>
    /// The load averages from <c>/proc/loadavg</c>, rounded up to two decimals as Celery's <c>load_average()</c>;
    /// zeros where there is no such file (Celery's answer on Windows).
    /// </summary>
    public static (double One, double Five, double Fifteen) LoadAverage()
    {
        try
        {
            string text = File.ReadAllText("/proc/loadavg");
            string[] parts = text.Split(' ', 4, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 3
                && double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double one)
                && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double five)
                && double.TryParse(parts[2], NumberStyles.Float, CultureInfo.InvariantCulture, out double fifteen))
            {
                return (Ceil2(one), Ceil2(five), Ceil2(fifteen));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No /proc here: report zeros as Celery does where os.getloadavg is missing.
        }

        return (0.0, 0.0, 0.0);
    }

    private static double Ceil2(double value) => Math.Ceiling(value * 1e2) / 1e2;
}
