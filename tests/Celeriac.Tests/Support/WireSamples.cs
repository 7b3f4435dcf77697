using System.Text.Json;

namespace Celeriac.Tests.Support;

/// <summary>
/// The golden samples captured from Celery 5.2.6 (../shared/celery-wire next to the repository, or
/// CELERIAC_WIRE_DIR).
/// </summary>
internal static class WireSamples
{
    private static readonly Lazy<string> s_directory = new(Locate);

    public static string Directory => s_directory.Value;

    public static IReadOnlyList<string> FileNames =>
        [.. System.IO.Directory.EnumerateFiles(Directory, "*.json").Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal)];

    public static JsonDocument Load(string fileName) =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Join(Directory, fileName)));

    private static string Locate()
    {
        if (Environment.GetEnvironmentVariable("CELERIAC_WIRE_DIR") is { Length: > 0 } fromEnv)
        {
            return System.IO.Directory.Exists(fromEnv)
                ? fromEnv
                : throw new DirectoryNotFoundException($"CELERIAC_WIRE_DIR '{fromEnv}' does not exist.");
        }

        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Join(dir.FullName, "Celeriac.slnx")))
            {
                string wire = Path.GetFullPath(Path.Join(dir.FullName, "..", "shared", "celery-wire"));
                return System.IO.Directory.Exists(wire)
                    ? wire
                    : throw new DirectoryNotFoundException($"The golden samples are not at '{wire}'; set CELERIAC_WIRE_DIR.");
            }
        }

        throw new DirectoryNotFoundException($"No Celeriac.slnx above '{AppContext.BaseDirectory}'; set CELERIAC_WIRE_DIR.");
    }
}
