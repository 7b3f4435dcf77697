using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Celeriac.Dashboard;
using Celeriac.Dashboard.Ingestion;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Celeriac.Tests.Dashboard;

/// <summary>A dashboard in an ASP.NET Core app on Kestrel at 127.0.0.1 on a free port, mapped under a prefix, on a broker URL.</summary>
internal sealed class DashboardHost : IAsyncDisposable
{
    private readonly WebApplication _web;

    private DashboardHost(WebApplication web, Uri baseAddress)
    {
        _web = web;
        Client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    public HttpClient Client { get; }

    public IServiceProvider Services => _web.Services;

    public DashboardIngestor Ingestor => _web.Services.GetRequiredService<DashboardIngestor>();

    public static async Task<DashboardHost> StartAsync(string brokerUrl, Action<CeleriacDashboardOptions>? configure = null, string prefix = "/celeriac",
        Action<CeleriacOptions>? app = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var options = new CeleriacOptions { BrokerUrl = brokerUrl };
        app?.Invoke(options);
        builder.Services.AddSingleton(new CeleriacApp(options));
        builder.Services.AddCeleriacDashboard(o =>
        {
            o.StoreUrl = "memory://";
            o.FlushInterval = TimeSpan.FromMilliseconds(50);
            o.EnableEventsInterval = TimeSpan.Zero;
            o.InspectInterval = TimeSpan.FromSeconds(2);
            configure?.Invoke(o);
        });
        WebApplication web = builder.Build();
        web.MapCeleriacDashboard(prefix);
        await web.StartAsync(TestContext.Current.CancellationToken);
        string address = web.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var host = new DashboardHost(web, new Uri(address.TrimEnd('/') + prefix.TrimEnd('/') + "/"));
        await host.Ingestor.Ready.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        return host;
    }

    public async Task<JsonElement> GetJsonAsync(string path)
    {
        using HttpResponseMessage response = await Client.GetAsync(path, TestContext.Current.CancellationToken);
        string body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public async Task<(HttpStatusCode Status, JsonElement Body)> PostAsync(string path, string? json = null)
    {
        using var content = new StringContent(json ?? "", Encoding.UTF8, "application/json");
        using HttpResponseMessage response = await Client.PostAsync(path, content, TestContext.Current.CancellationToken);
        string body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        return (response.StatusCode, body.Length == 0 ? default : JsonDocument.Parse(body).RootElement.Clone());
    }

    public static AuthenticationHeaderValue Basic(string pair) => new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(pair)));

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _web.StopAsync(CancellationToken.None);
        await _web.DisposeAsync();
    }
}
