namespace Celeriac.Dashboard.Store;

/// <summary>Builds <see cref="DashboardStats"/> from tasks, so that every store counts the same way.</summary>
internal sealed class StatsBuilder(double since)
{
    private readonly Dictionary<(long Minute, string State), long> _counts = [];
    private readonly Dictionary<string, List<double>> _runtimes = new(StringComparer.Ordinal);

    public void Add(string? name, double? received, double? succeeded, double? failed, double? retried, double? revoked, double? runtime)
    {
        Count(received, "RECEIVED");
        Count(succeeded, "SUCCESS");
        Count(failed, "FAILURE");
        Count(retried, "RETRY");
        Count(revoked, "REVOKED");
        if (runtime is { } r && succeeded is { } s && s >= since && name is not null)
        {
            if (!_runtimes.TryGetValue(name, out List<double>? list))
            {
                _runtimes[name] = list = [];
            }

            list.Add(r);
        }
    }

    private void Count(double? at, string state)
    {
        if (at is { } t && t >= since)
        {
            var key = ((long)Math.Floor(t / 60) * 60, state);
            _counts[key] = _counts.GetValueOrDefault(key) + 1;
        }
    }

    public DashboardStats Build() => new(
        [.. _counts.OrderBy(c => c.Key.Minute).ThenBy(c => c.Key.State, StringComparer.Ordinal).Select(c => new ThroughputPoint(c.Key.Minute, c.Key.State, c.Value))],
        [.. _runtimes.OrderBy(r => r.Key, StringComparer.Ordinal).Select(r =>
        {
            r.Value.Sort();
            return new RuntimeStats(r.Key, r.Value.Count, Percentile(r.Value, 0.50), Percentile(r.Value, 0.90), Percentile(r.Value, 0.99));
        })]);

    /// <summary>Nearest rank.</summary>
    private static double Percentile(List<double> sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
}
