using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Celeriac.IntegrationTests.Packaging;

/// <summary>
/// The newcomer's path, as a person would take it from the README in an empty folder: <c>dotnet new console</c>,
/// <c>dotnet add package Celeriac</c> (from the packed folder, with no second package), the README's Program.cs, and a
/// run: a worker hosted in the generic host and a producer on the embedded default (sqlite:///celeriac.db), a task that
/// succeeds, one that is retried twice and then succeeds, and one that fails.
/// </summary>
[Collection(PackagingGroup.Name)]
public sealed partial class NewcomerTests(PackedFeed feed)
{
    /// <summary>The markers around the README's newcomer Program.cs (a ```csharp block between them).</summary>
    public const string StartMarker = "<!-- newcomer:program -->";

    /// <summary>The end marker.</summary>
    public const string EndMarker = "<!-- /newcomer:program -->";

    /// <summary>The markers around the README's ASP.NET Core Program.cs.</summary>
    public const string AspNetStartMarker = "<!-- newcomer:aspnet -->";

    /// <summary>Its end marker.</summary>
    public const string AspNetEndMarker = "<!-- /newcomer:aspnet -->";

    [Fact]
    public async Task EmptyFolder_DotnetAddPackageCeleriac_TheReadmesProgram_RunsAHostedWorkerAndProducerOnTheEmbeddedDefault()
    {
        var clock = Stopwatch.StartNew();
        string dir = Directory.CreateDirectory(Path.Join(feed.Root, "Newcomer")).FullName;
        (string program, string source) = ReadmeProgram();

        await Run(dir, "new", "console", "--name", "Newcomer", "--output", dir, "--no-update-check", "--force");
        File.Copy(feed.NuGetConfig, Path.Join(dir, "nuget.config"));
        await Run(dir, "add", "package", "Celeriac", "--version", feed.Version);
        await File.WriteAllTextAsync(Path.Join(dir, "Program.cs"), program, TestContext.Current.CancellationToken);
        await Run(dir, "build", "-c", "Release", "--disable-build-servers", "-nologo", "-v", "q");

        // Run as `dotnet run` does, in the project folder: its celeriac.db lands there.
        (int code, string output) = await DotnetCommand.RunAsync("dotnet", dir, null, TimeSpan.FromSeconds(90),
            Path.Join(dir, "bin", "Release", "net10.0", "Newcomer.dll"));
        Assert.True(code == 0, $"Program.cs from {source} exited {code}:\n{output}");
        // What the README says it prints.
        Assert.Contains("tasks.add(2, 3) = 5", output, StringComparison.Ordinal);
        Assert.Contains("tasks.fail failed: InvalidOperationException: boom", output, StringComparison.Ordinal);
        Assert.Contains("tasks.flaky succeeded on attempt 3", output, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Join(dir, "celeriac.db")), "the embedded default is a SQLite file in the working directory");

        // The packages' own README (what nuget.org shows) has a smaller program: it builds and runs too.
        string nugetReadme = await File.ReadAllTextAsync(Path.Join(PackedFeed.RepoRoot, "docs", "nuget", "README.md"), TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(Path.Join(dir, "Program.cs"), FirstCodeBlock(nugetReadme), TestContext.Current.CancellationToken);
        await Run(dir, "build", "-c", "Release", "--disable-build-servers", "-nologo", "-v", "q");
        (int nugetCode, string nugetOutput) = await DotnetCommand.RunAsync("dotnet", dir, null, TimeSpan.FromSeconds(90),
            Path.Join(dir, "bin", "Release", "net10.0", "Newcomer.dll"));
        Assert.True(nugetCode == 0, $"docs/nuget/README.md's program exited {nugetCode}:\n{nugetOutput}");
        Assert.Contains("\n5\n", nugetOutput.ReplaceLineEndings("\n"), StringComparison.Ordinal);

        TestContext.Current.TestOutputHelper?.WriteLine($"newcomer ({source}): new + add package + build + run {clock.Elapsed.TotalSeconds:0.0} s; pack {feed.PackDuration.TotalSeconds:0.0} s\n{output}");
    }

    [Fact]
    public async Task EmptyFolder_DotnetNewWeb_AddPackageCeleriac_MinimalApiProducerAndHostedWorker_AnswerOverHttp_AndStopOnSigterm()
    {
        var clock = Stopwatch.StartNew();
        string dir = Directory.CreateDirectory(Path.Join(feed.Root, "NewcomerWeb")).FullName;
        (string program, string source) = ReadmeProgram(AspNetStartMarker, AspNetEndMarker);

        await Run(dir, "new", "web", "--name", "NewcomerWeb", "--output", dir, "--no-update-check", "--force");
        File.Copy(feed.NuGetConfig, Path.Join(dir, "nuget.config"));
        await Run(dir, "add", "package", "Celeriac", "--version", feed.Version);
        await File.WriteAllTextAsync(Path.Join(dir, "Program.cs"), program, TestContext.Current.CancellationToken);
        await Run(dir, "build", "-c", "Release", "--disable-build-servers", "-nologo", "-v", "q");

        int port = FreeLoopbackPort();
        string url = $"http://127.0.0.1:{port}";
        await using DotnetCommand web = DotnetCommand.Start("dotnet", dir, null, Path.Join(dir, "bin", "Release", "net10.0", "NewcomerWeb.dll"), "--urls", url);
        await web.WaitForLineAsync("Application started.", TimeSpan.FromSeconds(60));

        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) };
        using HttpResponseMessage accepted = await http.PostAsync(new Uri("/add?x=2&y=3", UriKind.Relative), null, TestContext.Current.CancellationToken);
        Assert.True(accepted.StatusCode == System.Net.HttpStatusCode.Accepted, $"{accepted.StatusCode}\n{web.Output}");
        using JsonDocument sent = JsonDocument.Parse(await accepted.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        string id = sent.RootElement.GetProperty("id").GetString()!;
        Assert.Equal($"/tasks/{id}", accepted.Headers.Location?.OriginalString);

        // GET /tasks/{id} answers at once with the state, and the value once it succeeded: asked every 100 ms, 30 s at most.
        JsonElement value = default;
        for (var waited = Stopwatch.StartNew(); waited.Elapsed < TimeSpan.FromSeconds(30) && value.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null;)
        {
            await Task.Delay(100, TestContext.Current.CancellationToken);
            string answer = await http.GetStringAsync(new Uri($"/tasks/{id}", UriKind.Relative), TestContext.Current.CancellationToken);
            using JsonDocument state = JsonDocument.Parse(answer);
            value = state.RootElement.GetProperty("value").Clone();
        }

        Assert.True(value.ValueKind == JsonValueKind.Number, $"no value within 30 s\n{web.Output}");
        Assert.Equal(5, value.GetInt64());

        await web.SignalAsync("TERM");
        Assert.Equal(0, await web.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        TestContext.Current.TestOutputHelper?.WriteLine($"newcomer web ({source}): new + add package + build + run {clock.Elapsed.TotalSeconds:0.0} s\n{web.Output}");
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The README's newcomer program between the markers: the test fails when the README lost it.</summary>
    internal static (string Program, string Source) ReadmeProgram(string startMarker = StartMarker, string endMarker = EndMarker)
    {
        string readme = File.ReadAllText(Path.Join(PackedFeed.RepoRoot, "README.md"));
        string? program = MarkedProgram(readme, startMarker, endMarker);
        Assert.True(program is not null, $"README.md has no ```csharp block between {startMarker} and {endMarker}");
        return (program, "README.md");
    }

    /// <summary>The ```csharp block between the markers of <paramref name="markdown"/>, or null without markers.</summary>
    internal static string? MarkedProgram(string markdown, string startMarker = StartMarker, string endMarker = EndMarker)
    {
        int start = markdown.IndexOf(startMarker, StringComparison.Ordinal);
        if (start < 0)
        {
            return null;
        }

        int end = markdown.IndexOf(endMarker, start, StringComparison.Ordinal);
        Assert.True(end > start, $"{startMarker} without {endMarker}");
        Match block = CodeBlock().Match(markdown[start..end]);
        Assert.True(block.Success, $"no ```csharp block between {startMarker} and {endMarker}");
        return block.Groups["code"].Value;
    }

    /// <summary>The first ```csharp block of <paramref name="markdown"/>.</summary>
    internal static string FirstCodeBlock(string markdown)
    {
        Match block = CodeBlock().Match(markdown);
        Assert.True(block.Success, "no ```csharp block");
        return block.Groups["code"].Value;
    }

    [Fact]
    public void MarkedProgram_TakesTheCodeBlockBetweenTheMarkers_AndNoneWithoutThem()
    {
        const string readme = """
            # Celeriac
            ```csharp
            // not this one
            ```
            <!-- newcomer:program -->
            A full Program.cs:
            ```csharp
            using Celeriac;
            Console.WriteLine("hi");
            ```
            <!-- /newcomer:program -->
            """;
        Assert.Equal("using Celeriac;\nConsole.WriteLine(\"hi\");", MarkedProgram(readme)!.ReplaceLineEndings("\n"));
        Assert.Null(MarkedProgram("# no markers\n```csharp\nx\n```"));
    }

    private static async Task Run(string dir, params string[] args)
    {
        (int code, string output) = await DotnetCommand.RunAsync("dotnet", dir, null, TimeSpan.FromMinutes(3), args);
        Assert.True(code == 0, $"dotnet {string.Join(' ', args)} exited {code}:\n{output}");
    }

    [GeneratedRegex(@"```(?:csharp|cs|c#)\s*\n(?<code>.*?)\n```", RegexOptions.Singleline)]
    private static partial Regex CodeBlock();
}
