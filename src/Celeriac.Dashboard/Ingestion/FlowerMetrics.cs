using System.Globalization;
using System.Text;
using Celeriac.Events;

namespace Celeriac.Dashboard.Ingestion;

/// <summary>
/// Flower's Prometheus metrics (<c>flower/events.py</c> PrometheusMetrics), same names, labels and buckets, fed by the
/// same events, so that Flower's Grafana dashboards and alerts work unchanged; rendered in the text exposition format.
/// Labels are bounded by the workers and task names seen; a worker forgotten by the dashboard leaves the metrics.
/// </summary>
public sealed class FlowerMetrics
{
    /// <summary>prometheus_client's default histogram buckets, Flower's default <c>task_runtime_metric_buckets</c>.</summary>
    public static readonly IReadOnlyList<double> RuntimeBuckets = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

    private readonly Lock _gate = new();
    private readonly Dictionary<(string Worker, string Type, string Task), long> _events = [];
    private readonly Dictionary<(string Worker, string Task), Histogram> _runtime = [];
    private readonly Dictionary<(string Worker, string Task), double> _prefetchTime = [];
    private readonly Dictionary<(string Worker, string Task), double> _prefetched = [];
    private readonly Dictionary<string, double> _online = new(StringComparer.Ordinal);
    private readonly Dictionary<string, double> _executing = new(StringComparer.Ordinal);

    /// <summary>Counts one event, as Flower's <c>EventsState.event</c>; <paramref name="task"/> is the task after the event was applied.</summary>
    public void Observe(CeleryEvent e, ClusterTask? task)
    {
        ArgumentNullException.ThrowIfNull(e);
        string worker = e.Hostname ?? "";
        string type = e.Type;
        lock (_gate)
        {
            if (type.StartsWith("task-", StringComparison.Ordinal))
            {
                string name = e.GetString("name") is { Length: > 0 } n ? n : task?.Name ?? "";
                var events = (worker, type, name);
                _events[events] = _events.GetValueOrDefault(events) + 1;
                var key = (worker, name);
                if (e.GetDouble("runtime") is { } runtime and not 0)
                {
                    if (!_runtime.TryGetValue(key, out Histogram? h))
                    {
                        _runtime[key] = h = new Histogram();
                    }

                    h.Observe(runtime);
                }

                bool noEta = task?.Eta is null;
                if (type == "task-received" && noEta && task?.Received is not null)
                {
                    _prefetched[key] = _prefetched.GetValueOrDefault(key) + 1;
                }

                if (type == "task-started" && noEta && task?.Started is { } started && task.Received is { } received)
                {
                    _prefetchTime[key] = (started - received).TotalSeconds;
                    _prefetched[key] = _prefetched.GetValueOrDefault(key) - 1;
                }

                if (type is "task-succeeded" or "task-failed" && noEta && task?.Started is not null && task.Received is not null)
                {
                    _prefetchTime[key] = 0;
                }
            }
            else if (type == "worker-online")
            {
                _online[worker] = 1;
            }
            else if (type == "worker-heartbeat")
            {
                _online[worker] = 1;
                if (e.GetInt64("active") is { } active)
                {
                    _executing[worker] = active;
                }
            }
            else if (type == "worker-offline")
            {
                _online[worker] = 0;
            }
        }
    }

    /// <summary>A worker whose heartbeats stopped: offline without an event (Flower leaves it at 1; its users asked for this).</summary>
    public void MarkOffline(string worker)
    {
        lock (_gate)
        {
            _online[worker] = 0;
        }
    }

    /// <summary>Forgets a worker's series (Flower's <c>remove_workers</c>).</summary>
    public void RemoveWorker(string worker)
    {
        lock (_gate)
        {
            foreach (var k in _events.Keys.Where(k => k.Worker == worker).ToList())
            {
                _events.Remove(k);
            }

            foreach (var k in _runtime.Keys.Where(k => k.Worker == worker).ToList())
            {
                _runtime.Remove(k);
                _prefetchTime.Remove(k);
                _prefetched.Remove(k);
            }

            _online.Remove(worker);
            _executing.Remove(worker);
        }
    }

    /// <summary>The metrics in Prometheus's text exposition format (version 0.0.4).</summary>
    public string Render()
    {
        var sb = new StringBuilder();
        lock (_gate)
        {
            Header(sb, "flower_events_total", "Number of events", "counter");
            foreach (((string worker, string type, string task), long n) in _events.OrderBy(k => k.Key))
            {
                Line(sb, "flower_events_total", [("worker", worker), ("type", type), ("task", task)], n);
            }

            Header(sb, "flower_task_runtime_seconds", "Task runtime", "histogram");
            foreach (((string worker, string task), Histogram h) in _runtime.OrderBy(k => k.Key))
            {
                long cumulative = 0;
                for (int i = 0; i < RuntimeBuckets.Count; i++)
                {
                    cumulative += h.Counts[i];
                    Line(sb, "flower_task_runtime_seconds_bucket", [("worker", worker), ("task", task), ("le", Number(RuntimeBuckets[i]))], cumulative);
                }

                Line(sb, "flower_task_runtime_seconds_bucket", [("worker", worker), ("task", task), ("le", "+Inf")], h.Count);
                Line(sb, "flower_task_runtime_seconds_count", [("worker", worker), ("task", task)], h.Count);
                Line(sb, "flower_task_runtime_seconds_sum", [("worker", worker), ("task", task)], h.Sum);
            }

            Gauges(sb, "flower_task_prefetch_time_seconds", "The time the task spent waiting at the celery worker to be executed.", _prefetchTime);
            Gauges(sb, "flower_worker_prefetched_tasks", "Number of tasks of given type prefetched at a worker", _prefetched);
            Header(sb, "flower_worker_online", "Worker online status", "gauge");
            foreach ((string worker, double v) in _online.OrderBy(k => k.Key, StringComparer.Ordinal))
            {
                Line(sb, "flower_worker_online", [("worker", worker)], v);
            }

            Header(sb, "flower_worker_number_of_currently_executing_tasks", "Number of tasks currently executing at a worker", "gauge");
            foreach ((string worker, double v) in _executing.OrderBy(k => k.Key, StringComparer.Ordinal))
            {
                Line(sb, "flower_worker_number_of_currently_executing_tasks", [("worker", worker)], v);
            }
        }

        return sb.ToString();
    }

    private static void Gauges(StringBuilder sb, string name, string help, Dictionary<(string Worker, string Task), double> values)
    {
        Header(sb, name, help, "gauge");
        foreach (((string worker, string task), double v) in values.OrderBy(k => k.Key))
        {
            Line(sb, name, [("worker", worker), ("task", task)], v);
        }
    }

    private static void Header(StringBuilder sb, string name, string help, string type) =>
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n').Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    private static void Line(StringBuilder sb, string name, (string Name, string Value)[] labels, double value)
    {
        sb.Append(name).Append('{');
        for (int i = 0; i < labels.Length; i++)
        {
            sb.Append(i > 0 ? "," : "").Append(labels[i].Name).Append("=\"").Append(Escape(labels[i].Value)).Append('"');
        }

        sb.Append("} ").Append(Number(value)).Append('\n');
    }

    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private static string Number(double value) => double.IsPositiveInfinity(value) ? "+Inf" : value.ToString("0.0###############", CultureInfo.InvariantCulture);

    private sealed class Histogram
    {
        public long[] Counts { get; } = new long[RuntimeBuckets.Count];

        public long Count { get; private set; }

        public double Sum { get; private set; }

        public void Observe(double value)
        {
            Count++;
            Sum += value;
            for (int i = 0; i < RuntimeBuckets.Count; i++)
            {
                if (value <= RuntimeBuckets[i])
                {
                    Counts[i]++;
                    break;
                }
            }
        }
    }
}
