using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Celeriac.TestServers;

namespace Celeriac.IntegrationTests.Telemetry;

/// <summary>samples/WebDashboard as a user runs it: a process on loopback, on the embedded SQLite default.</summary>
public sealed class WebDashboardSampleTests(WebDashboardSample sample) : IClassFixture<WebDashboardSample>
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private HttpClient Http => sample.Http;

    private string Dir => sample.Directory;

    private string Output => sample.Output;

    [Fact]
    public async Task Sample_AddThenResultThenHealth_SucceedsAndIsHealthy()
    {
        using HttpResponseMessage sent = await Http.PostAsync("/add?x=40&y=2", null, Ct);
        Assert.Equal(HttpStatusCode.Accepted, sent.StatusCode);
        string id = (await sent.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!;

        JsonElement result = default;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < s_wait)
        {
            result = await Http.GetFromJsonAsync<JsonElement>("/result/" + id, Ct);
            if (result.GetProperty("state").GetString() != "PENDING")
            {
                break;
            }

            await Task.Delay(50, Ct);
        }

        Assert.Equal("SUCCESS", result.GetProperty("state").GetString());
        Assert.Equal(42, result.GetProperty("result").GetInt32());
        Assert.True(File.Exists(Path.Join(Dir, "celeriac.db")), "the embedded default's file is in the working folder");

        using HttpResponseMessage health = await Http.GetAsync("/health", Ct);
        JsonElement report = await health.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.True(health.StatusCode == HttpStatusCode.OK, report.ToString());
        Assert.Equal("Healthy", report.GetProperty("status").GetString());
        Assert.Equal("Healthy", report.GetProperty("checks").GetProperty("celeriac-worker").GetProperty("status").GetString());

        // The console exporter printed the task's spans, in one trace with the request.
        Assert.True(await PollAsync(() => Output.Contains("run/tasks.add", StringComparison.Ordinal)), Output);
        Assert.Contains("apply_async/tasks.add", Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sample_Dashboard_ServesItsPagesAndSeesTheHostedWorkerOnline()
    {
        using HttpResponseMessage page = await Http.GetAsync("/celeriac/", Ct);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("static/app.js", await page.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);

        // The dashboard switches the worker's events on (Flower's enable_events) and then hears its heartbeats.
        JsonElement workers = default;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < s_wait && !Online(workers))
        {
            workers = await Http.GetFromJsonAsync<JsonElement>("/celeriac/api/dashboard/workers", Ct);
            await Task.Delay(200, Ct);
        }

        Assert.True(Online(workers), workers.ToString());
        using HttpResponseMessage metrics = await Http.GetAsync("/celeriac/metrics", Ct);
        Assert.Contains("flower_worker_online", await metrics.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sample_BadInput_Is400WithAMessage()
    {
        using HttpResponseMessage missing = await Http.PostAsync("/add?x=1", null, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Equal("query parameter 'y' is required (an integer)", (await missing.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error").GetString());

        using HttpResponseMessage notNumber = await Http.PostAsync("/add?x=1&y=two", null, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, notNumber.StatusCode);

        using HttpResponseMessage badId = await Http.GetAsync("/result/not-an-id", Ct);
        Assert.Equal(HttpStatusCode.BadRequest, badId.StatusCode);
        Assert.Contains("is not a task id", await badId.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    private static bool Online(JsonElement workers) =>
        workers.ValueKind == JsonValueKind.Array && workers.EnumerateArray().Any(w => w.GetProperty("online").GetBoolean());

    private static async Task<bool> PollAsync(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition() && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(50, Ct);
        }

        return condition();
    }
}

/// <summary>The sample's process, shared by the class's tests: started once, killed at the end.</summary>
public sealed class WebDashboardSample : IAsyncLifetime
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    private readonly StringBuilder _output = new();
    private Process _process = null!;

    /// <summary>The sample's working folder, where its SQLite file lives.</summary>
    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("celeriac-webdashboard-").FullName;

    /// <summary>A client of the sample's address.</summary>
    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(10) };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string SampleDll =>
        typeof(WebDashboardSample).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "WebDashboardDll").Value!;

    public async ValueTask InitializeAsync()
    {
        int port = FreePort.Next();
        Http.BaseAddress = new Uri($"http://127.0.0.1:{port}");
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = Directory, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(SampleDll);
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add(Http.BaseAddress.ToString().TrimEnd('/'));

        // The default broker, a SQLite file in the working folder: this test's own folder.
        start.Environment.Remove("CELERIAC_BROKER_URL");
        start.Environment.Remove("CELERIAC_RESULT_BACKEND");
        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < s_wait && !_process.HasExited)
        {
            try
            {
                using HttpResponseMessage health = await Http.GetAsync("/health", Ct);
                Assert.NotNull(health);
                return;
            }
            catch (HttpRequestException)
            {
                await Task.Delay(100, Ct);
            }
        }

        Assert.Fail($"the sample did not answer within {s_wait.TotalSeconds} s:\n{Output}");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        }

        _process.Dispose();
        Http.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }

}
