using System.Net;
using System.Text.Json;
using Celeriac.Dashboard;
using Celeriac.Dashboard.Ingestion;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Celeriac.InteropTests.Dashboard;

/// <summary>A dashboard on Kestrel at 127.0.0.1 on a free port, on a real broker, with a memory store.</summary>
internal sealed class InteropDashboard : IAsyncDisposable
{
    private readonly WebApplication _web;

    private InteropDashboard(WebApplication web, Uri baseAddress)
    {
        _web = web;
        Client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    public HttpClient Client { get; }

    public DashboardIngestor Ingestor => _web.Services.GetRequiredService<DashboardIngestor>();

    public static async Task<InteropDashboard> StartAsync(CeleriacOptions app, Action<CeleriacDashboardOptions>? configure = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.AddSingleton(new CeleriacApp(app));
        builder.Services.AddCeleriacDashboard(o =>
        {
            o.StoreUrl = "memory://";
            o.FlushInterval = TimeSpan.FromMilliseconds(50);
            o.EnableEventsInterval = TimeSpan.FromSeconds(1);
            o.InspectInterval = TimeSpan.FromSeconds(2);
            configure?.Invoke(o);
        });
        WebApplication web = builder.Build();
        web.MapCeleriacDashboard("/");
        await web.StartAsync(TestContext.Current.CancellationToken);
        string address = web.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var dashboard = new InteropDashboard(web, new Uri(address.TrimEnd('/') + "/"));
        await dashboard.Ingestor.Ready.WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);
        return dashboard;
    }

    public async Task<JsonElement> GetJsonAsync(string path)
    {
        using HttpResponseMessage response = await Client.GetAsync(path, TestContext.Current.CancellationToken);
        string body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>Polls a task's detail until its state is <paramref name="state"/>; returns the last detail read.</summary>
    public async Task<JsonElement> WaitForTaskAsync(string id, string state, TimeSpan timeout)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        JsonElement last = default;
        while (clock.Elapsed < timeout)
        {
            using HttpResponseMessage r = await Client.GetAsync($"api/dashboard/task/{id}", TestContext.Current.CancellationToken);
            if (r.IsSuccessStatusCode)
            {
                last = JsonDocument.Parse(await r.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement.Clone();
                if (last.GetProperty("task").GetProperty("state").GetString() == state)
                {
                    return last;
                }
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        Assert.Fail($"task {id} never reached {state}: {last}");
        return last;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _web.StopAsync(CancellationToken.None);
        await _web.DisposeAsync();
    }
}
