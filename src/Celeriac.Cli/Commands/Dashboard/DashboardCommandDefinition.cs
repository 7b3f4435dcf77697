using System.CommandLine;

namespace Celeriac.Cli.Commands.Dashboard;

/// <summary><c>celeriac dashboard</c>: its options (Flower's port and flags).</summary>
internal sealed class DashboardCommandDefinition : Command
{
    public DashboardCommandDefinition(CliContext context) : base("dashboard",
        "Serve the web dashboard, Flower's HTTP API, /metrics and /healthcheck for the cluster on --broker, until Ctrl+C or SIGTERM. " +
        "Listens on 127.0.0.1 unless --address says otherwise, and refuses another address without --basic-auth or --read-only.")
    {
        Options.Add(PortOption);
        Options.Add(AddressOption);
        Options.Add(UrlPrefixOption);
        Options.Add(ReadOnlyOption);
        Options.Add(BasicAuthOption);
        Options.Add(StoreOption);
        Options.Add(MaxTasksOption);
        SetAction((parse, ct) => DashboardCommand.RunAsync(context, this, parse, ct));
    }

    public Option<int> PortOption { get; } = new("--port")
    {
        Description = "The port to listen on (Flower's default, 5555; 0 picks a free one).",
        DefaultValueFactory = _ => Celeriac.Dashboard.CeleriacDashboard.DefaultPort,
    };

    public Option<string> AddressOption { get; } = new("--address")
    {
        Description = "The address to listen on (default 127.0.0.1). Any other than loopback needs --basic-auth or --read-only.",
        DefaultValueFactory = _ => "127.0.0.1",
    };

    public Option<string?> UrlPrefixOption { get; } = new("--url-prefix") { Description = "Serve everything under this path (behind a reverse proxy), e.g. /flower." };

    public Option<bool> ReadOnlyOption { get; } = new("--read-only") { Description = "Refuse every action (revoke, retry, shutdown, pool, consumers...): the pages show no buttons." };

    public Option<string[]> BasicAuthOption { get; } = new("--basic-auth")
    {
        Description = "Require HTTP basic auth: user:pass, several comma-separated or repeated.",
        HelpName = "user:pass",
        Arity = ArgumentArity.OneOrMore,
        AllowMultipleArgumentsPerToken = false,
    };

    public Option<string?> StoreOption { get; } = new("--store")
    {
        Description = "Where history is kept: sqlite:///path (default sqlite:///celeriac-dashboard.db), redis://host:port/db[?prefix=P], postgresql://user:pass@host:port/db or memory://.",
        HelpName = "URL",
    };

    public Option<int?> MaxTasksOption { get; } = new("--max-tasks") { Description = "The most tasks kept in history (default 100000)." };
}
