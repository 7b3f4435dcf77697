using Celeriac.Dashboard.Store;
using Microsoft.Extensions.Options;

namespace Celeriac.Dashboard;

/// <summary>The dashboard's settings (<c>services.AddCeleriacDashboard(o => ...)</c>; the standalone command's flags set the same).</summary>
public sealed class CeleriacDashboardOptions
{
    /// <summary>Answer no POST (every action is 403) and show no action buttons. <value>false</value></summary>
    public bool ReadOnly { get; set; }

    /// <summary>
    /// Flower's <c>--basic-auth</c>: <c>user:pass</c>, several separated by commas; null or empty: no authentication.
    /// Every path of the dashboard (pages, API, stream, <c>/metrics</c>) then asks for one of them. <value>null</value>
    /// </summary>
    public string? BasicAuth { get; set; }

    /// <summary>Where history is kept: <c>sqlite:///path</c> (relative to the working directory), <c>redis://host:port/db[?prefix=P]</c>, <c>postgresql://user:pass@host:port/db</c> or <c>memory://</c>. <value>sqlite:///celeriac-dashboard.db</value></summary>
    public string StoreUrl { get; set; } = DashboardStores.DefaultUrl;

    /// <summary>The most tasks kept in the store; the oldest go first. <value>100,000</value></summary>
    public int MaxTasks { get; set; } = 100_000;

    /// <summary>Tasks older than this leave the store. <value>7 days</value></summary>
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromDays(7);

    /// <summary>The most workers kept. <value>5,000</value></summary>
    public int MaxWorkers { get; set; } = 5_000;

    /// <summary>How often received events are written to the store (one transaction per write). <value>250 ms</value></summary>
    public TimeSpan FlushInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>A write starts sooner once this many events wait. <value>1,000</value></summary>
    public int FlushEvents { get; set; } = 1_000;

    /// <summary>How often the store is pruned to <see cref="MaxTasks"/> and <see cref="MaxAge"/>. <value>1 minute</value></summary>
    public TimeSpan PruneInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often the workers are asked for their pool and queues (<c>inspect stats</c>, <c>active_queues</c>). <value>30 s</value></summary>
    public TimeSpan InspectInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an inspect or control command waits for replies. <value>1 s</value></summary>
    public TimeSpan ControlTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>As Flower: ask every worker to send task events (<c>enable_events</c>) this often; zero: never. <value>5 s</value></summary>
    public TimeSpan EnableEventsInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The tasks whose events are folded in memory at once (the rest are merged in the store). <value>5,000</value></summary>
    public int HotTasks { get; set; } = 5_000;

    /// <summary>The user:pass pairs of <see cref="BasicAuth"/>.</summary>
    internal IReadOnlyList<string> Credentials =>
        string.IsNullOrWhiteSpace(BasicAuth) ? [] : [.. BasicAuth.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
}

/// <summary>Checks <see cref="CeleriacDashboardOptions"/> at start.</summary>
internal sealed class CeleriacDashboardOptionsValidator : IValidateOptions<CeleriacDashboardOptions>
{
    public ValidateOptionsResult Validate(string? name, CeleriacDashboardOptions options)
    {
        var errors = new List<string>();
        if (DashboardStores.Validate(options.StoreUrl) is { } store)
        {
            errors.Add("StoreUrl: " + store);
        }

        if (options.MaxTasks < 1)
        {
            errors.Add("MaxTasks must be at least 1");
        }

        if (options.MaxWorkers < 1)
        {
            errors.Add("MaxWorkers must be at least 1");
        }

        if (options.HotTasks < 1)
        {
            errors.Add("HotTasks must be at least 1");
        }

        if (options.MaxAge <= TimeSpan.Zero)
        {
            errors.Add("MaxAge must be positive");
        }

        if (options.FlushInterval <= TimeSpan.Zero || options.FlushEvents < 1)
        {
            errors.Add("FlushInterval must be positive and FlushEvents at least 1");
        }

        foreach (string pair in options.Credentials)
        {
            int colon = pair.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || colon == pair.Length - 1)
            {
                errors.Add("BasicAuth takes user:pass pairs separated by commas");
                break;
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
