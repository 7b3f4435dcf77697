using System.Diagnostics;
using System.Reflection;
using Celeriac.IntegrationTests.Support;

namespace Celeriac.IntegrationTests.Packaging;

/// <summary>
/// The packages as a user gets them: what every package carries, and <c>celeriac</c> installed as a dotnet tool from the
/// packed folder into a temporary tool path, then run: <c>--version</c>, and a worker on the embedded default that runs
/// a task and stops on SIGTERM.
/// </summary>
[Collection(PackagingGroup.Name)]
public sealed class PackagedToolTests(PackedFeed feed)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void EveryPackage_IsPacked_WithLicenseReadmeRepositoryAndSymbols_AndTheMetaPackageBringsCoreAndSqlite()
    {
        Assert.Equal(
            ["Celeriac", "Celeriac.Aws", "Celeriac.Azure", "Celeriac.Cli", "Celeriac.Core", "Celeriac.Dashboard", "Celeriac.Database",
             "Celeriac.Memcached", "Celeriac.OpenTelemetry", "Celeriac.PostgreSql", "Celeriac.RabbitMQ", "Celeriac.Redis", "Celeriac.Sqlite"],
            feed.PackageIds.Intersect(KnownIds).Order(StringComparer.Ordinal));
        foreach (string id in feed.PackageIds)
        {
            NuGetPackage package = NuGetPackage.Open(Path.Join(feed.Feed, $"{id}.{feed.Version}.nupkg"));
            Assert.Equal(id, package.Id);
            Assert.Equal(feed.Version, package.Version);
            Assert.Equal("MIT", package.License);
            Assert.Equal("README.md", package.Readme);
            Assert.Contains("README.md", package.Files);
            Assert.False(string.IsNullOrWhiteSpace(package.Description), id);
            Assert.Equal("git", package.RepositoryType);
            Assert.Matches("^[0-9a-f]{40}$", package.RepositoryCommit ?? "");
            if (id != "Celeriac")
            {
                // Code packages carry their symbols beside them, with the PDB of each library.
                string snupkg = Path.Join(feed.Feed, $"{id}.{feed.Version}.snupkg");
                Assert.True(File.Exists(snupkg), snupkg);
                Assert.Contains(NuGetPackage.Open(snupkg).Files, f => f.EndsWith(".pdb", StringComparison.Ordinal));
            }
        }

        NuGetPackage meta = NuGetPackage.Open(Path.Join(feed.Feed, $"Celeriac.{feed.Version}.nupkg"));
        Assert.DoesNotContain(meta.Files, f => f.StartsWith("lib/", StringComparison.Ordinal));
        Assert.Equal(feed.Version, meta.Dependencies["Celeriac.Core"]);
        Assert.Equal(feed.Version, meta.Dependencies["Celeriac.Sqlite"]);
        Assert.Contains("Microsoft.Extensions.Hosting", meta.Dependencies.Keys);

        NuGetPackage core = NuGetPackage.Open(Path.Join(feed.Feed, $"Celeriac.Core.{feed.Version}.nupkg"));
        Assert.Contains("lib/net10.0/Celeriac.dll", core.Files);
        Assert.Contains("lib/net10.0/Celeriac.xml", core.Files);

        NuGetPackage redis = NuGetPackage.Open(Path.Join(feed.Feed, $"Celeriac.Redis.{feed.Version}.nupkg"));
        Assert.Equal(feed.Version, redis.Dependencies["Celeriac.Core"]);
        Assert.Contains("StackExchange.Redis", redis.Dependencies.Keys);

        NuGetPackage cli = NuGetPackage.Open(Path.Join(feed.Feed, $"Celeriac.Cli.{feed.Version}.nupkg"));
        Assert.Equal("DotnetTool", cli.PackageType);
        Assert.Contains("tools/net10.0/any/DotnetToolSettings.xml", cli.Files);
    }

    [Fact]
    public async Task CeleriacTool_InstalledFromThePackedFolder_PrintsItsVersion_AndRunsAWorkerOnTheEmbeddedDefaultUntilSigterm()
    {
        var clock = Stopwatch.StartNew();
        string tools = Path.Join(feed.Root, "tools");
        (int installed, string installOutput) = await DotnetCommand.RunAsync("dotnet", feed.Root, null, TimeSpan.FromMinutes(2),
            "tool", "install", "Celeriac.Cli", "--tool-path", tools, "--version", feed.Version, "--configfile", feed.NuGetConfig);
        Assert.True(installed == 0, installOutput);
        string celeriac = Path.Join(tools, "celeriac");
        Assert.True(File.Exists(celeriac), installOutput);

        // --version: the informational version of the build that was packed (the same as this test's Celeriac.dll).
        string expected = typeof(CeleriacApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;
        (int versionCode, string version) = await DotnetCommand.RunAsync(celeriac, feed.Root, null, TimeSpan.FromSeconds(30), "--version");
        Assert.Equal(0, versionCode);
        Assert.Equal(expected, version.Trim());

        // A worker on the embedded default (no broker configured: sqlite:///celeriac.db in its working directory), with
        // the test tasks library: ready, runs a task this test sends to that file, stops on SIGTERM.
        string dir = Directory.CreateDirectory(Path.Join(feed.Root, "worker")).FullName;
        string broker = "sqlite:///" + Path.Join(dir, "celeriac.db");
        var environment = new Dictionary<string, string> { ["CELERIAC_TEST_RECORD"] = Path.Join(dir, "record") };
        await using (DotnetCommand worker = DotnetCommand.Start(celeriac, dir, environment, "worker", "-A", ChildProcess.TestTasksDll, "-l", "info", "-n", "tool@%h"))
        {
            await worker.WaitForLineAsync(" ready.", TimeSpan.FromSeconds(60));
            await using (var client = new CeleriacApp(new CeleriacOptions { BrokerUrl = broker }))
            {
                AsyncResult sent = await client.SendTaskAsync("test.record", ["from-the-test"], ct: Ct);
                Assert.Equal("from-the-test", await sent.GetAsync<string>(TimeSpan.FromSeconds(30), Ct));
            }

            await worker.SignalAsync("TERM");
            Assert.Equal(0, await worker.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            Assert.Contains("test.record", worker.Output, StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Join(dir, "celeriac.db")), "the worker's default broker is celeriac.db in its working directory");
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"pack {feed.PackDuration.TotalSeconds:0.0} s; tool install + --version + worker {clock.Elapsed.TotalSeconds:0.0} s");
    }

    private static readonly string[] KnownIds =
    [
        "Celeriac", "Celeriac.Aws", "Celeriac.Azure", "Celeriac.Cli", "Celeriac.Core", "Celeriac.Dashboard", "Celeriac.Database",
        "Celeriac.Memcached", "Celeriac.OpenTelemetry", "Celeriac.PostgreSql", "Celeriac.RabbitMQ", "Celeriac.Redis", "Celeriac.Sqlite",
    ];
}
