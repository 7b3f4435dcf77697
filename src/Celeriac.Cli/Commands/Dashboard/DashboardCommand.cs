using System.CommandLine;
using System.Net;
using System.Runtime.InteropServices;
using Celeriac.Dashboard;
using Celeriac.Dashboard.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Celeriac.Cli.Commands.Dashboard;

/// <summary><c>celeriac dashboard</c>: a Kestrel server with the dashboard mapped, until Ctrl+C, SIGTERM or the host's token.</summary>
internal static class DashboardCommand
{
    public static async Task<int> RunAsync(CliContext context, DashboardCommandDefinition definition, ParseResult parse, CancellationToken ct)
    {
        int port = parse.GetValue(definition.PortOption);
        string address = parse.GetValue(definition.AddressOption) ?? "127.0.0.1";
        string prefix = "/" + (parse.GetValue(definition.UrlPrefixOption) ?? "").Trim('/');
        bool readOnly = parse.GetValue(definition.ReadOnlyOption);
        string basicAuth = string.Join(',', parse.GetValue(definition.BasicAuthOption) ?? []);
        string store = parse.GetValue(definition.StoreOption) ?? DashboardStores.DefaultUrl;
        int? maxTasks = parse.GetValue(definition.MaxTasksOption);

        if (port is < 0 or > 65535)
        {
            throw new CliUsageException($"--port must be between 0 and 65535 (got {port}).");
        }

        IPAddress ip = address == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(address, out IPAddress? parsed) ? parsed
            : throw new CliUsageException($"--address must be an IP address or localhost (got '{address}').");

        // Hangfire's default, for the same reason: a dashboard that can revoke tasks and shut workers down is not put on
        // a network without a password or without its buttons.
        if (!IPAddress.IsLoopback(ip) && basicAuth.Length == 0 && !readOnly)
        {
            throw new CliUsageException($"refusing to serve the dashboard on {address} (not loopback) without --basic-auth user:pass or --read-only.");
        }

        if (DashboardStores.Validate(store) is { } storeError)
        {
            throw new CliUsageException("--store: " + storeError + ".");
        }

        CliSession session = context.Open(parse);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeSession = session.ConfigureAwait(false);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var signals = new StopSignals(stop);
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (session.App.Options.LoggerFactory is { } loggers)
        {
            builder.Services.AddSingleton(loggers);
        }

        builder.WebHost.UseKestrel(k => k.Listen(ip, port));
        builder.Services.AddSingleton(session.App);
        builder.Services.AddCeleriacDashboard(o =>
        {
            o.ReadOnly = readOnly;
            o.BasicAuth = basicAuth.Length == 0 ? null : basicAuth;
            o.StoreUrl = store;
            if (maxTasks is { } max)
            {
                o.MaxTasks = max;
            }
        });
        WebApplication web = builder.Build();
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeWeb = web.ConfigureAwait(false);
        web.MapCeleriacDashboard(prefix);
        await web.StartAsync(stop.Token).ConfigureAwait(false);
        string listening = web.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? $"http://{address}:{port}";
        await context.Out.WriteLineAsync($"Celeriac dashboard at {listening.TrimEnd('/')}{prefix.TrimEnd('/')}/ (broker {UrlText.Mask(session.App.Options.BrokerUrl)}, store {store}{(readOnly ? ", read-only" : "")}{(basicAuth.Length > 0 ? ", basic auth" : "")})").ConfigureAwait(false);
        await context.Out.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C, SIGTERM or the host: stop serving.
        }

        await web.StopAsync(CancellationToken.None).ConfigureAwait(false);

        return ExitCodes.Ok;
    }
}
