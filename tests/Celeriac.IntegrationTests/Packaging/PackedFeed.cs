using System.Diagnostics;
using System.Globalization;
using System.Xml.Linq;

namespace Celeriac.IntegrationTests.Packaging;

/// <summary>
/// Every package of the repository, packed once for the Packaging tests into a temporary folder that serves as a local
/// NuGet feed. The packages are packed from the Release build the tests run on (<c>dotnet pack --no-build</c>: the
/// solution is built before the tests, as scripts/test.sh does) under a version of their own
/// (<c>0.1.0-test.&lt;time&gt;</c>), so that NuGet's global packages folder can never hand an older build back under the
/// same version; disposing removes that version from the global packages folder again, and the folder.
/// </summary>
public sealed class PackedFeed : IAsyncLifetime
{
    /// <summary>The repository's root (where Celeriac.slnx is).</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The temporary folder: the feed, tools, projects.</summary>
    public string Root { get; } = Directory.CreateTempSubdirectory("celeriac-pack-").FullName;

    /// <summary>The folder holding the .nupkg files.</summary>
    public string Feed => Path.Join(Root, "feed");

    /// <summary>The version every package was packed with.</summary>
    public string Version { get; } = string.Create(CultureInfo.InvariantCulture,
        $"{typeof(CeleriacApp).Assembly.GetName().Version!.ToString(3)}-test.{TimeProvider.System.GetUtcNow():yyyyMMddHHmmss}.{Environment.ProcessId}");

    /// <summary>The package ids packed, from the file names.</summary>
    public IReadOnlyList<string> PackageIds { get; private set; } = [];

    /// <summary>How long packing took.</summary>
    public TimeSpan PackDuration { get; private set; }

    /// <summary>The nuget.config that a project or a tool install uses: the feed for Celeriac*, nuget.org for the rest.</summary>
    public string NuGetConfig => Path.Join(Root, "nuget.config");

    /// <inheritdoc />
    public async ValueTask InitializeAsync()
    {
        Directory.CreateDirectory(Feed);
        var clock = Stopwatch.StartNew();

        // The packable projects: every project under src/ that does not say IsPackable false (tests, samples and
        // benchmarks are not packable, by Directory.Build.props). One pack of a traversal over them all is one MSBuild
        // start instead of one per project.
        string traversal = Path.Join(Root, "pack.proj");
        string[] projects = Directory.GetFiles(Path.Join(RepoRoot, "src"), "*.csproj", SearchOption.AllDirectories)
            .Where(p => !p.Contains("/bin/", StringComparison.Ordinal) && !p.Contains("/obj/", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToArray();
        new XDocument(new XElement("Project",
            new XElement("ItemGroup", projects.Select(p => new XElement("PackProject", new XAttribute("Include", p)))),
            new XElement("Target", new XAttribute("Name", "Pack"),
                new XElement("MSBuild",
                    new XAttribute("Projects", "@(PackProject)"),
                    new XAttribute("Targets", "Pack"),
                    new XAttribute("BuildInParallel", "false"),
                    new XAttribute("Properties", $"Configuration=Release;NoBuild=true;PackageVersion={Version};PackageOutputPath={Feed}/")))))
            .Save(traversal);
        (int code, string output) = await DotnetCommand.RunAsync("dotnet", RepoRoot, null, TimeSpan.FromMinutes(4),
            "msbuild", traversal, "-t:Pack", "-nologo", "-v:m", "-nodeReuse:false", "-warnaserror");
        Assert.True(code == 0, $"dotnet pack failed ({code}): is the solution built in Release (dotnet build Celeriac.slnx -c Release)?\n{output}");
        PackDuration = clock.Elapsed;

        string suffix = "." + Version + ".nupkg";
        PackageIds = Directory.GetFiles(Feed, "*" + suffix).Select(f => Path.GetFileName(f)[..^suffix.Length]).Order(StringComparer.Ordinal).ToList();

        // Package source mapping: Celeriac* only from the feed (never a same-named package from nuget.org), the rest from
        // nuget.org, which the machine's global packages folder already answers for everything the solution restores.
        await File.WriteAllTextAsync(NuGetConfig, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="celeriac-packed" value="{Feed}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
              </packageSources>
              <packageSourceMapping>
                <packageSource key="celeriac-packed"><package pattern="Celeriac" /><package pattern="Celeriac.*" /></packageSource>
                <packageSource key="nuget.org"><package pattern="*" /></packageSource>
              </packageSourceMapping>
            </configuration>
            """);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } set
            ? set
            : Path.Join(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        foreach (string id in PackageIds)
        {
            string installed = Path.Join(packages, id.ToLowerInvariant(), Version.ToLowerInvariant());
            if (Directory.Exists(installed))
            {
                Directory.Delete(installed, recursive: true);
            }

            // The id's folder too, when this version was its only one (as for Celeriac.Core on a machine without a release).
            string idFolder = Path.GetDirectoryName(installed)!;
            if (Directory.Exists(idFolder) && !Directory.EnumerateFileSystemEntries(idFolder).Any())
            {
                Directory.Delete(idFolder);
            }
        }

        Directory.Delete(Root, recursive: true);
        return ValueTask.CompletedTask;
    }

    private static string FindRepoRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Join(dir.FullName, "Celeriac.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No Celeriac.slnx above {AppContext.BaseDirectory}.");
    }
}

/// <summary>The Packaging tests share one packed feed.</summary>
[CollectionDefinition(Name)]
public sealed class PackagingGroup : ICollectionFixture<PackedFeed>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "Packaging";
}
