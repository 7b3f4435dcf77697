using System.Runtime.CompilerServices;

namespace Celeriac.Testing;

/// <summary>
/// What the harness saw of one kind (sent, succeeded, ...), in order. <see cref="Any(Func{HarnessTask, bool}?, CancellationToken)"/>
/// and <see cref="Select"/> wait for more while the harness is busy, and stop once it has been inactive for
/// <see cref="CeleriacTestHarness.InactivityTimeout"/> (nothing seen, nothing running, no due time left to move to), or after
/// <see cref="CeleriacTestHarness.TestTimeout"/> in all: a test never sleeps, and never waits longer than it must.
/// </summary>
public sealed class ObservedTasks
{
    private readonly CeleriacTestHarness _harness;
    private readonly List<HarnessTask> _items = [];
    private readonly Lock _gate = new();

    internal ObservedTasks(CeleriacTestHarness harness) => _harness = harness;

    /// <summary>How many so far.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _items.Count;
            }
        }
    }

    /// <summary>What has been seen so far, in order (does not wait).</summary>
    public IReadOnlyList<HarnessTask> Snapshot()
    {
        lock (_gate)
        {
            return [.. _items];
        }
    }

    internal void Add(HarnessTask item)
    {
        lock (_gate)
        {
            _items.Add(item);
        }

        _harness.MarkActivity();
    }

    /// <summary>Waits until one matches <paramref name="filter"/> (true), or the harness is inactive with none (false).</summary>
    public async Task<bool> Any(Func<HarnessTask, bool>? filter = null, CancellationToken ct = default)
    {
        await foreach (HarnessTask _ in Select(filter, ct).ConfigureAwait(false))
        {
            return true;
        }

        return false;
    }

    /// <summary>Waits until a call of the task named <paramref name="taskName"/> (that also matches <paramref name="filter"/>) is seen.</summary>
    public Task<bool> Any(string taskName, Func<HarnessTask, bool>? filter = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(taskName);
        return Any(t => t.TaskName == taskName && (filter is null || filter(t)), ct);
    }

    /// <summary>Waits until a call of <paramref name="task"/> (that also matches <paramref name="filter"/>) is seen.</summary>
    public Task<bool> Any(CeleriacTask task, Func<HarnessTask, bool>? filter = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        return Any(task.Name, filter, ct);
    }

    /// <summary>
    /// Each one that matches <paramref name="filter"/>, as it is seen, until the harness is inactive (or the test timeout):
    /// <c>await foreach (var t in harness.Succeeded.Select(t =&gt; t.TaskName == "tasks.add"))</c>.
    /// </summary>
    public async IAsyncEnumerable<HarnessTask> Select(Func<HarnessTask, bool>? filter = null, [EnumeratorCancellation] CancellationToken ct = default)
    {
        long deadline = _harness.Deadline();
        int next = 0;
        while (true)
        {
            long seen = _harness.Version;
            HarnessTask? found = null;
            lock (_gate)
            {
                while (next < _items.Count && found is null)
                {
                    HarnessTask item = _items[next++];
                    if (filter is null || filter(item))
                    {
                        found = item;
                    }
                }
            }

            if (found is not null)
            {
                yield return found;
                continue;
            }

            if (!await _harness.WaitForActivityAsync(seen, deadline, ct).ConfigureAwait(false))
            {
                // Inactive: one last look, for what came with the last activity.
                lock (_gate)
                {
                    while (next < _items.Count && found is null)
                    {
                        HarnessTask item = _items[next++];
                        if (filter is null || filter(item))
                        {
                            found = item;
                        }
                    }
                }

                if (found is null)
                {
                    yield break;
                }

                yield return found;
            }
        }
    }
}
