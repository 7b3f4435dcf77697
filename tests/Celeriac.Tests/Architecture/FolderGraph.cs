using System.Text;

namespace Celeriac.Tests.Architecture;

/// <summary>
/// Which folder uses which, and through which types: the graph the layering rules are checked on.
/// Kept apart from the metadata reading so that its failing paths can be tested on a made-up graph.
/// </summary>
internal sealed class FolderGraph
{
    private readonly SortedDictionary<string, SortedDictionary<string, SortedSet<string>>> _edges = new(StringComparer.Ordinal);

    public IEnumerable<string> Folders => _edges.Keys.Concat(_edges.Values.SelectMany(e => e.Keys)).Distinct().Order(StringComparer.Ordinal);

    /// <summary>Records that a type in <paramref name="from"/> uses a type in <paramref name="to"/>; a folder using itself is no edge.</summary>
    public void Add(string from, string to, string fromType, string toType)
    {
        if (from == to)
        {
            return;
        }

        if (!_edges.TryGetValue(from, out SortedDictionary<string, SortedSet<string>>? targets))
        {
            _edges[from] = targets = new(StringComparer.Ordinal);
        }

        if (!targets.TryGetValue(to, out SortedSet<string>? reasons))
        {
            targets[to] = reasons = new(StringComparer.Ordinal);
        }

        reasons.Add($"{fromType} -> {toType}");
    }

    public IEnumerable<string> Targets(string from) =>
        _edges.TryGetValue(from, out SortedDictionary<string, SortedSet<string>>? targets) ? targets.Keys : [];

    public IReadOnlyCollection<string> Reasons(string from, string to) =>
        _edges.TryGetValue(from, out SortedDictionary<string, SortedSet<string>>? targets) && targets.TryGetValue(to, out SortedSet<string>? reasons)
            ? reasons
            : [];

    /// <summary>
    /// The cycles to read, each as the folders in order with the first repeated at the end: inside each
    /// strongly connected component of more than one folder (Tarjan), the shortest cycle through each of
    /// its folders. Not every cycle (there can be exponentially many), but every folder caught in one is
    /// named in one, and each shown cycle is as short as it can be.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<string>> FindCycles()
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var low = new Dictionary<string, int>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        var onStack = new HashSet<string>(StringComparer.Ordinal);
        var components = new List<HashSet<string>>();

        void Connect(string node)
        {
            index[node] = low[node] = index.Count;
            stack.Push(node);
            onStack.Add(node);
            foreach (string next in Targets(node))
            {
                if (!index.TryGetValue(next, out int nextIndex))
                {
                    Connect(next);
                    low[node] = Math.Min(low[node], low[next]);
                }
                else if (onStack.Contains(next))
                {
                    low[node] = Math.Min(low[node], nextIndex);
                }
            }

            if (low[node] == index[node])
            {
                var component = new HashSet<string>(StringComparer.Ordinal);
                string member;
                do
                {
                    member = stack.Pop();
                    onStack.Remove(member);
                    component.Add(member);
                }
                while (member != node);

                if (component.Count > 1)
                {
                    components.Add(component);
                }
            }
        }

        foreach (string folder in Folders)
        {
            if (!index.ContainsKey(folder))
            {
                Connect(folder);
            }
        }

        var cycles = new SortedDictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (HashSet<string> component in components)
        {
            foreach (string start in component)
            {
                IReadOnlyList<string> cycle = Rotated(ShortestCycle(component, start));
                cycles.TryAdd(string.Join('>', cycle), cycle);
            }
        }

        return [.. cycles.Values];
    }

    /// <summary>The cycle started at its smallest folder, so that one cycle found from two starts is one.</summary>
    private static List<string> Rotated(List<string> cycle)
    {
        List<string> open = cycle[..^1];
        int first = open.IndexOf(open.Order(StringComparer.Ordinal).First());
        List<string> rotated = [.. open[first..], .. open[..first]];
        rotated.Add(rotated[0]);
        return rotated;
    }

    /// <summary>The shortest cycle through <paramref name="start"/> (breadth first, inside its component).</summary>
    private List<string> ShortestCycle(HashSet<string> component, string start)
    {
        var previous = new Dictionary<string, string>(StringComparer.Ordinal);
        var queue = new Queue<string>([start]);
        while (queue.Count > 0)
        {
            string node = queue.Dequeue();
            foreach (string next in Targets(node).Where(component.Contains))
            {
                if (next == start)
                {
                    var path = new List<string> { start };
                    for (string at = node; at != start; at = previous[at])
                    {
                        path.Insert(1, at);
                    }

                    path.Add(start);
                    return path;
                }

                if (previous.TryAdd(next, node))
                {
                    queue.Enqueue(next);
                }
            }
        }

        throw new InvalidOperationException("A strongly connected component always has a cycle through each member.");
    }

    /// <summary>The edges that the table does not allow; a folder missing from the table may use nothing.</summary>
    public IReadOnlyList<(string From, string To)> Disallowed(IReadOnlyDictionary<string, string[]> allowed) =>
        [.. _edges.SelectMany(e => e.Value.Keys.Select(to => (From: e.Key, To: to)))
            .Where(edge => !(allowed.TryGetValue(edge.From, out string[]? targets) && targets.Contains(edge.To, StringComparer.Ordinal)))];

    /// <summary>A failure message naming each cycle and each disallowed edge with the types that make it; empty when there are none.</summary>
    public string Describe(IReadOnlyDictionary<string, string[]> allowed, int reasonsPerEdge = 8)
    {
        var text = new StringBuilder();
        foreach (IReadOnlyList<string> cycle in FindCycles())
        {
            text.Append("Cycle between folders: ").AppendJoin(" -> ", cycle).AppendLine();
            for (int i = 0; i + 1 < cycle.Count; i++)
            {
                AppendEdge(text, cycle[i], cycle[i + 1], reasonsPerEdge);
            }
        }

        foreach ((string from, string to) in Disallowed(allowed))
        {
            text.Append("Edge against the layering: ").Append(from).Append(" may not use ").Append(to)
                .Append(" (allowed: ").AppendJoin(", ", allowed.TryGetValue(from, out string[]? targets) && targets.Length > 0 ? targets : ["nothing"]).AppendLine(")");
            AppendEdge(text, from, to, reasonsPerEdge);
        }

        return text.ToString();
    }

    private void AppendEdge(StringBuilder text, string from, string to, int reasonsPerEdge)
    {
        IReadOnlyCollection<string> reasons = Reasons(from, to);
        text.Append("  ").Append(from).Append(" -> ").Append(to).Append(" (").Append(reasons.Count).AppendLine(reasons.Count == 1 ? " use):" : " uses):");
        foreach (string reason in reasons.Take(reasonsPerEdge))
        {
            text.Append("    ").AppendLine(reason);
        }

        if (reasons.Count > reasonsPerEdge)
        {
            text.Append("    ... and ").Append(reasons.Count - reasonsPerEdge).AppendLine(" more");
        }
    }
}
