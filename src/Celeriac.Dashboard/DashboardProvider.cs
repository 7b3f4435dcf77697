namespace Celeriac.Dashboard;

/// <summary>Celeriac's web dashboard: pages, Flower's HTTP API, <c>/metrics</c> and <c>/healthcheck</c>.</summary>
public static class CeleriacDashboard
{
    /// <summary>The default port, Flower's.</summary>
    public const int DefaultPort = 5555;
}
