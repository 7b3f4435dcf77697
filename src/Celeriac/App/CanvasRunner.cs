using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Celeriac.Protocol;
using Celeriac.Results;
using Celeriac.Transport;

namespace Celeriac;

/// <summary>
/// Sends signatures as Celery's canvas does (<c>celery/canvas.py</c>), so that the messages, ids, parents and
/// result-backend bookkeeping are Celery's: a chain sends its first task with the rest in the message's <c>chain</c>,
/// a group sends its members with its id and their index, a chord prepares the backend's join and sends its header
/// with the body in each member's <c>chord</c>. The worker uses the same code to send callbacks, the next step of a
/// chain and a chord's body.
/// </summary>
internal sealed class CanvasRunner(CeleriacApp app)
{
    private const string NoChordSupport =
        "The result backend does not support chords (Celery's rpc:// and disabled ones neither). Note that a group chained with a task is also upgraded to be a chord, as this pattern requires synchronization. Result backends that support chords: Redis, SQLite, file system, memory.";

    /// <summary>Sends <paramref name="sig"/> with partial arguments and options; <paramref name="trail"/> records what was sent, for the sender's <c>children</c>.</summary>
    public async Task<AsyncResult?> ApplyAsync(Signature sig, IEnumerable<object?>? args, IReadOnlyDictionary<string, object?>? kwargs, JsonObject? options, Action<AsyncResult>? trail, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(sig);
        JsonArray? a = args is null ? null : new JsonArray([.. args.Select(Signature.ToNode)]);
        JsonObject? k = kwargs is null ? null : new JsonObject(kwargs.Select(kv => KeyValuePair.Create(kv.Key, Signature.ToNode(kv.Value))));
        return await ApplyCoreAsync(sig, a, k, options, trail, ct).ConfigureAwait(false);
    }

    private Task<AsyncResult?> ApplyCoreAsync(Signature sig, JsonArray? args, JsonObject? kwargs, JsonObject? options, Action<AsyncResult>? trail, CancellationToken ct) => sig switch
    {
        Chain c => RunChainAsync(c, args, kwargs, options, trail, ct),
        Group g => Nullable(ApplyGroupAsync(g, args, kwargs, options, trail, ct)),
        Chord ch => Nullable(RunChordAsync(ch, args, kwargs, options, trail, ct)),
        Chunks k => Nullable(ApplyGroupAsync(k.ToGroup(), args, kwargs, Merged(k.Options, options), trail, ct)),
        _ => Nullable(SendAsync(Merged(sig, args, kwargs, options), trail, ct)),
    };

    private static async Task<AsyncResult?> Nullable<T>(Task<T> task)
        where T : AsyncResult => await task.ConfigureAwait(false);

    // ---- plain tasks ----

    /// <summary>Sends one task call (a plain signature, or a map) as its message.</summary>
    private async Task<AsyncResult> SendAsync(Signature sig, Action<AsyncResult>? trail, CancellationToken ct)
    {
        TransportMessage message = Build(sig, out string queue);
        await PublishAsync(queue, [message], ct).ConfigureAwait(false);
        var result = new AsyncResult(message.CorrelationId!, app.ResultBackend) { App = app };
        trail?.Invoke(result);
        return result;
    }

    private async Task PublishAsync(string queue, List<TransportMessage> messages, CancellationToken ct)
    {
        ITransport transport = app.Transport;
        await app.EnsureQueueAsync(transport, queue, ct).ConfigureAwait(false);
        if (app.ResultBackend is IReplyQueueResultBackend replies)
        {
            await replies.EnsureReplyQueueAsync(ct).ConfigureAwait(false);
        }

        string system = app.MessagingSystem;
        System.Diagnostics.Activity?[]? spans = PublishTelemetry.Start(messages, queue, system);
        try
        {
            await transport.PublishAsync("", queue, messages, ct).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            PublishTelemetry.Stop(spans, messages.Count, queue, system, ex);
            throw;
        }

        PublishTelemetry.Stop(spans, messages.Count, queue, system, null);
    }

    /// <summary>The message of a plain signature: Celery's options become headers, and link, link_error, chain and chord the body's embed.</summary>
    private TransportMessage Build(Signature sig, out string queue)
    {
        JsonObject o = sig.Options;
        string? explicitQueue = Str(o, "queue") ?? Str(o, "routing_key");
        if (explicitQueue is null && sig is MapSignature map)
        {
            // As Celery: a map goes where the task it maps goes.
            explicitQueue = app.Route(map.TaskSignature.Task);
        }

        var options = new ApplyOptions
        {
            TaskId = Str(o, "task_id"),
            Queue = explicitQueue,
            Countdown = Num(o, "countdown") is { } countdown ? TimeSpan.FromSeconds(countdown) : null,
            Eta = Str(o, "eta") is { } eta && CeleryJson.TryParseIso(eta, out DateTimeOffset etaTime) ? etaTime : null,
            ExpiresIn = Num(o, "expires") is { } expiresIn ? TimeSpan.FromSeconds(expiresIn) : null,
            Expires = Str(o, "expires") is { } expires && CeleryJson.TryParseIso(expires, out DateTimeOffset expiresTime) ? expiresTime : null,
            Priority = Num(o, "priority") is { } priority ? (int)priority : null,
            Shadow = Str(o, "shadow"),
            IgnoreResult = o["ignore_result"] is JsonValue ir && ir.TryGetValue(out bool ignore) && ignore,
            TimeLimit = Num(o, "time_limit") is { } hard ? TimeSpan.FromSeconds(hard) : null,
            SoftTimeLimit = Num(o, "soft_time_limit") is { } soft ? TimeSpan.FromSeconds(soft) : null,
            RootId = Str(o, "root_id"),
            ParentId = Str(o, "parent_id"),
            GroupId = Str(o, "group_id"),
            GroupIndex = Num(o, "group_index") is { } index ? (long)index : null,
            Headers = o["headers"] is JsonObject headers ? headers.ToDictionary(kv => kv.Key, kv => (object?)Signature.ToElement(kv.Value)) : null,
        };
        var embed = new TaskEmbed(
            ListElement(o["link"]),
            ListElement(o["link_error"]),
            o["chain"] is JsonArray chain ? Signature.ToElement(chain) : null,
            o["chord"] is JsonObject chord ? Signature.ToElement(chord) : null);
        object?[] args = [.. sig.Args.Select(a => (object?)Signature.ToElement(a))];
        Dictionary<string, object?> kwargs = sig.Kwargs.ToDictionary(kv => kv.Key, kv => (object?)Signature.ToElement(kv.Value), StringComparer.Ordinal);
        return app.BuildMessage(sig.Task, args, kwargs, options, embed, Str(o, "reply_to"), out queue);

        static JsonElement? ListElement(JsonNode? node) => node switch
        {
            JsonArray { Count: > 0 } list => Signature.ToElement(list),
            JsonObject one => Signature.ToElement(new JsonArray(one.DeepClone())),
            _ => null,
        };
    }

    // ---- freezing: ids fixed before anything is sent, as Celery's freeze() ----

    /// <summary>Gives a signature (and every task in it) its ids and options, and returns its result handle (Celery's <c>freeze</c>).</summary>
    public AsyncResult Freeze(Signature sig, string? id = null, string? groupId = null, Signature? chord = null, string? rootId = null, string? parentId = null, long? groupIndex = null)
    {
        switch (sig)
        {
            case Chain c:
                (_, List<AsyncResult> results) = PrepareSteps(c, c.Args, c.Kwargs, rootId, parentId, [], id, groupId, chord, clone: false, groupIndex);
                return results.Count > 0 ? results[0] : new AsyncResult(id ?? Guid.NewGuid().ToString(), app.ResultBackend) { App = app };
            case Group g:
                return FreezeGroup(g, groupId, chord, rootId, parentId, groupIndex);
            case Chord ch:
                return FreezeChord(ch, id, groupId, chord, rootId, parentId, groupIndex);
        }

        JsonObject o = sig.Options;
        string tid = Str(o, "task_id") ?? id ?? Guid.NewGuid().ToString();
        o["task_id"] = tid;
        if (rootId is not null)
        {
            o["root_id"] = rootId;
        }

        if (parentId is not null)
        {
            o["parent_id"] = parentId;
        }

        if (Str(o, "reply_to") is null)
        {
            o["reply_to"] = app.ReplyTo;
        }

        if (groupId is not null && Str(o, "group_id") is null)
        {
            o["group_id"] = groupId;
        }

        if (chord is not null)
        {
            o["chord"] = chord.ToJson();
        }

        if (groupIndex is not null)
        {
            o["group_index"] = groupIndex;
        }

        return new AsyncResult(tid, app.ResultBackend) { App = app };
    }

    /// <summary>Celery's <c>group._freeze_group_tasks</c>: the group's id, and each member (nested groups unrolled) frozen with its index.</summary>
    private GroupResult FreezeGroup(Group g, string? groupId, Signature? chord, string? rootId, string? parentId, long? groupIndex)
    {
        JsonObject o = g.Options;
        string gid = Str(o, "task_id") ?? groupId ?? Guid.NewGuid().ToString();
        o["task_id"] = gid;
        if (groupId is not null)
        {
            o["group_id"] = groupId;
        }

        if (chord is not null)
        {
            o["chord"] = chord.ToJson();
        }

        if (groupIndex is not null)
        {
            o["group_index"] = groupIndex;
        }

        string? root = o.ContainsKey("root_id") ? Str(o, "root_id") : rootId;
        o["root_id"] = root;
        string? parent = o.ContainsKey("parent_id") ? Str(o, "parent_id") : parentId;
        o["parent_id"] = parent;

        var members = new List<Signature>();
        var results = new List<AsyncResult>();
        var stack = new LinkedList<Signature>(g.Tasks);
        long index = 0;
        while (stack.First is { } first && members.Count < MaxMembers)
        {
            stack.RemoveFirst();
            Signature task = first.Value.Clone();
            if (task is Group inner)
            {
                for (int i = inner.Tasks.Count - 1; i >= 0; i--)
                {
                    stack.AddFirst(inner.Tasks[i]);
                }

                continue;
            }

            members.Add(task);
            results.Add(Freeze(task, groupId: groupId, chord: chord, rootId: root, parentId: parent, groupIndex: index++));
        }

        g.TaskList.Clear();
        g.TaskList.AddRange(members);
        return new GroupResult(gid, results, app.ResultBackend) { App = app };
    }

    /// <summary>The most members a group may have once nested groups are unrolled: a bound on a hostile signature.</summary>
    private const int MaxMembers = 1_000_000;

    private AsyncResult FreezeChord(Chord ch, string? id, string? groupId, Signature? chord, string? rootId, string? parentId, long? groupIndex)
    {
        Signature body = ch.Body ?? throw new InvalidOperationException("a chord needs a body");
        GroupResult header = FreezeGroup(ch.Header, null, body, rootId, parentId, null);
        AsyncResult bodyResult = Freeze(body, id, groupId, chord, rootId, null, groupIndex);
        LinkToRoot(bodyResult, header);
        ch.Id = header.Id;
        return bodyResult;
    }

    /// <summary>Makes <paramref name="parent"/> the parent of the first result up <paramref name="node"/>'s parents that has none.</summary>
    private static void LinkToRoot(AsyncResult node, AsyncResult parent)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (seen.Add(node.Id))
        {
            if (node.Parent is null)
            {
                node.Parent = parent;
                return;
            }

            node = node.Parent;
        }

        throw new InvalidOperationException("Recursive result parents");
    }

    // ---- chain ----

    /// <summary>Celery's <c>chain.prepare_steps</c>: walks the steps from the last, unrolling nested chains and turning a group followed by a step into a chord.</summary>
    private (List<Signature> Tasks, List<AsyncResult> Results) PrepareSteps(
        Chain chain, JsonArray args, JsonObject kwargs, string? rootId, string? parentId, List<Signature> linkError,
        string? lastTaskId, string? groupId, Signature? chordBody, bool clone, long? groupIndex)
    {
        var steps = new List<Signature>(chain.Tasks);
        var tasks = new List<Signature>();
        var results = new List<AsyncResult>();
        Signature? prevTask = null;
        AsyncResult? prevRes = null;
        int i = 0;
        for (int guard = 0; steps.Count > 0 && guard < MaxMembers; guard++)
        {
            Signature task = steps[^1];
            steps.RemoveAt(steps.Count - 1);
            bool isFirst = steps.Count == 0, isLast = i == 0;
            if (task is Group { Tasks.Count: 1 } single)
            {
                task = single.Tasks[0];
            }

            if (clone)
            {
                task = task.Clone();
            }

            if (isFirst)
            {
                task.PrependArgs(args);
                MergeKwargs(task, kwargs);
            }

            if (task is Chain inner)
            {
                steps.AddRange(inner.Tasks);
                continue;
            }

            if (task is Group group && prevTask is not null)
            {
                tasks.RemoveAt(tasks.Count - 1);
                results.RemoveAt(results.Count - 1);
                var upgraded = new Chord(group, prevTask) { App = app };
                upgraded.Options["task_id"] = prevRes!.Id;
                upgraded.Options["root_id"] = rootId;
                task = upgraded;
            }

            AsyncResult res = isLast
                ? Freeze(task, lastTaskId, groupId, chordBody, rootId, null, groupIndex)
                : Freeze(task, rootId: rootId);
            if (isFirst && parentId is not null && task is not (Group or Chord))
            {
                task.Options["parent_id"] = parentId;
            }

            i++;
            if (prevTask is not null && prevRes is not null && prevRes.Parent is null)
            {
                prevRes.Parent = res;
            }

            foreach (Signature errback in linkError)
            {
                task.LinkError(errback);
            }

            tasks.Add(task);
            results.Add(res);
            prevTask = task;
            prevRes = res;
            if (task is Chord)
            {
                EnsureChordsAllowed();
                AsyncResult node = res;
                while (node.Parent is not null)
                {
                    node = node.Parent;
                }

                prevRes = node;
            }
        }

        return (tasks, results);
    }

    private async Task<AsyncResult?> RunChainAsync(Chain chain, JsonArray? args, JsonObject? kwargs, JsonObject? overrides, Action<AsyncResult>? trail, CancellationToken ct)
    {
        JsonObject options = Merged(chain.Options, overrides);
        string? taskId = Take(options, "task_id"), groupId = Take(options, "group_id"), rootId = Take(options, "root_id"), parentId = Take(options, "parent_id");
        long? groupIndex = options.Remove("group_index", out JsonNode? gi) && gi is JsonValue giv && giv.TryGetValue(out long idx) ? idx : null;
        Signature? chord = options.Remove("chord", out JsonNode? chordNode) && chordNode is JsonObject co ? Signature.FromJson(co) : null;
        List<Signature> link = TakeList(options, "link"), linkError = TakeList(options, "link_error");

        var allArgs = (JsonArray)chain.Args.DeepClone();
        if (args is not null && !chain.Immutable)
        {
            for (int i = args.Count - 1; i >= 0; i--)
            {
                allArgs.Insert(0, args[i]?.DeepClone());
            }
        }

        (List<Signature> tasks, List<AsyncResult> results) = PrepareSteps(chain, allArgs, kwargs ?? [], rootId, parentId, linkError, taskId, groupId, chord, clone: true, groupIndex);
        if (results.Count == 0)
        {
            return null;
        }

        foreach (Signature callback in link)
        {
            tasks[0].Link(callback);
        }

        Signature first = tasks[^1];
        tasks.RemoveAt(tasks.Count - 1);
        JsonArray rest = options["chain"] as JsonArray is { } existing ? (JsonArray)existing.DeepClone() : [];
        foreach (Signature t in tasks)
        {
            rest.Add((JsonNode)t.ToJson());
        }

        options["chain"] = rest;
        AsyncResult? firstResult = await ApplyCoreAsync(first, null, null, options, trail, ct).ConfigureAwait(false);
        return tasks.Count == 0 ? firstResult : results[0];
    }

    // ---- group ----

    private async Task<GroupResult> ApplyGroupAsync(Group g, JsonArray? args, JsonObject? kwargs, JsonObject? overrides, Action<AsyncResult>? trail, CancellationToken ct, bool startsChord = false)
    {
        if (overrides?["link"] is not null and not JsonValue)
        {
            throw new InvalidOperationException("Cannot add link to group: use a chord");
        }

        if (g.Tasks.Count == 0)
        {
            return FreezeGroup(g, null, null, null, null, null);
        }

        JsonObject options = Merged(g.Options, overrides);
        string groupId = Take(options, "task_id") ?? Guid.NewGuid().ToString();
        options["group_id"] = groupId;
        string? rootId = Str(options, "root_id");

        // Celery's group._prepared: each member (nested groups unrolled) cloned and frozen in this group.
        var members = new List<(Signature Sig, AsyncResult Result)>();
        Unroll(g, members, groupId, rootId);

        // A chord's header: prepare the join (Celery's apply_chord). A group that ends a chain in a header is sent later
        // by a worker with the header's id as its own; its join was prepared with the header.
        if (startsChord && members.Any(m => ChordOf(m.Sig) is not null))
        {
            EnsureChordsAllowed();
            int size = members.Sum(m => Descend(m.Sig));
            bool nested = members.Any(m => m.Result is GroupResult);
            byte[] header = nested ? System.Text.Encoding.UTF8.GetBytes(new JsonArray([.. members.Select(m => m.Result.AsTuple())]).ToJsonString()) : [];
            if (app.ResultBackend.JoinsChordsByUnlock)
            {
                await SendChordUnlockAsync(groupId, members.Select(m => ChordOf(m.Sig)).First(c => c is not null)!, members.Select(m => m.Result), ct).ConfigureAwait(false);
            }
            else
            {
                await app.ResultBackend.BeginChordAsync(groupId, [.. members.Select(m => m.Result.Id)], size, header, ct).ConfigureAwait(false);
            }
        }

        // Plain members go in batches, one per queue; a shape in the group is sent as its own canvas.
        var batches = new Dictionary<string, List<TransportMessage>>(StringComparer.Ordinal);
        foreach ((Signature sig, _) in members)
        {
            if (sig is Chain or Group or Chord or Chunks)
            {
                await ApplyCoreAsync(sig, args, kwargs, options, null, ct).ConfigureAwait(false);
                continue;
            }

            TransportMessage message = Build(Merged(sig, args, kwargs, options), out string queue);
            if (!batches.TryGetValue(queue, out List<TransportMessage>? batch))
            {
                batches[queue] = batch = [];
            }

            batch.Add(message);
            if (batch.Count >= PublishBatch)
            {
                await PublishAsync(queue, batch, ct).ConfigureAwait(false);
                batch.Clear();
            }
        }

        foreach ((string queue, List<TransportMessage> batch) in batches)
        {
            if (batch.Count > 0)
            {
                await PublishAsync(queue, batch, ct).ConfigureAwait(false);
            }
        }

        GroupResult result = new(groupId, members.Select(m => m.Result), app.ResultBackend) { App = app };
        if (result.Results is [GroupResult only])
        {
            result = only;
        }

        trail?.Invoke(result);
        return result;
    }

    private const int PublishBatch = 500;

    private void Unroll(Group g, List<(Signature, AsyncResult)> into, string groupId, string? rootId)
    {
        foreach (Signature member in g.Tasks)
        {
            if (into.Count >= MaxMembers)
            {
                throw new InvalidOperationException($"a group may have at most {MaxMembers} members");
            }

            Signature task = member.Clone();
            if (task is Group inner)
            {
                Unroll(inner, into, groupId, rootId);
                continue;
            }

            into.Add((task, Freeze(task, groupId: groupId, rootId: rootId)));
        }
    }

    /// <summary>The chord a member reports to: its own, or that of the task that ends it (a chord's body, a chain's last step).</summary>
    private static JsonObject? ChordOf(Signature sig) => sig switch
    {
        Chord ch => ch.Body is null ? null : ChordOf(ch.Body),
        Chain { Tasks.Count: > 0 } c => ChordOf(c.Tasks[^1]),
        Group { Tasks.Count: > 0 } g => ChordOf(g.Tasks[0]),
        _ => sig.Options["chord"] as JsonObject,
    };

    /// <summary>How many results a member adds to a chord (Celery's <c>chord._descend</c>).</summary>
    internal static int Descend(Signature sig) => sig switch
    {
        Group g => g.Tasks.Sum(Descend),
        Chain c => c.Tasks.Reverse().Select(Descend).FirstOrDefault(n => n > 0),
        Chord ch => ch.Body is null ? 0 : Descend(ch.Body),
        _ => 1,
    };

    // ---- chord ----

    private async Task<AsyncResult> RunChordAsync(Chord ch, JsonArray? args, JsonObject? kwargs, JsonObject? overrides, Action<AsyncResult>? trail, CancellationToken ct)
    {
        EnsureChordsAllowed();
        var partial = (JsonArray)ch.Args.DeepClone();
        if (args is not null && !ch.Immutable)
        {
            for (int i = args.Count - 1; i >= 0; i--)
            {
                partial.Insert(0, args[i]?.DeepClone());
            }
        }

        Signature body = (kwargs?["body"] is JsonObject b ? Signature.FromJson(b) : ch.Body)?.Clone()
            ?? throw new InvalidOperationException("a chord needs a body");
        var header = (Group)ch.Header.Clone();
        JsonObject options = Merged(ch.Options, overrides);
        string? taskId = Take(options, "task_id");

        // Celery's chord.run: the chord's own options (a chain's rest, an outer chord, a group) are the body's.
        string groupId = Str(header.Options, "task_id") ?? Guid.NewGuid().ToString();
        string? rootId = Str(body.Options, "root_id");
        foreach ((string key, JsonNode? value) in options)
        {
            if (value is not null)
            {
                body.Options[key] = value.DeepClone();
            }
        }

        AsyncResult bodyResult = Freeze(body, taskId, rootId: rootId);
        options.Remove("chain");
        options.Remove("chord");
        GroupResult frozen = FreezeGroup(header, groupId, body, rootId, null, null);
        AsyncResult headerResult;
        if (header.Tasks.Count > 0)
        {
            options["task_id"] = groupId;
            headerResult = await ApplyGroupAsync(header, partial, null, options, trail, ct, startsChord: true).ConfigureAwait(false);
        }
        else
        {
            await ApplyCoreAsync(body, [(JsonNode)new JsonArray()], null, null, null, ct).ConfigureAwait(false);
            headerResult = frozen;
        }

        bodyResult.Parent = headerResult;
        return bodyResult;
    }

    /// <summary>
    /// Celery's <c>fallback_chord_unlock</c>: <c>celery.chord_unlock(group_id, body, result=[member tuples], interval=None,
    /// max_retries=None)</c>, a second from now, on the body's queue (its option, else its route).
    /// </summary>
    private async Task SendChordUnlockAsync(string groupId, JsonObject body, IEnumerable<AsyncResult> members, CancellationToken ct)
    {
        string? queue = (body["options"] as JsonObject)?["queue"] is JsonValue q && q.TryGetValue(out string? name) ? name : null;
        await app.SendTaskAsync(
            "celery.chord_unlock",
            [groupId, body.DeepClone()],
            new Dictionary<string, object?> { ["interval"] = null, ["max_retries"] = null, ["result"] = new JsonArray([.. members.Select(m => m.AsTuple())]) },
            new ApplyOptions { Countdown = TimeSpan.FromSeconds(1), Queue = app.Route((body["task"] as JsonValue)?.GetValue<string>() ?? "celery.chord_unlock", queue) },
            ct).ConfigureAwait(false);
    }

    private void EnsureChordsAllowed()
    {
        if (!app.ResultBackend.SupportsChords && !app.ResultBackend.JoinsChordsByUnlock)
        {
            throw new NotSupportedException(NoChordSupport);
        }
    }

    // ---- from inside a task ----

    /// <summary>Celery's <c>Task.replace</c>: the signature takes the task's id, callbacks, chord and the rest of its chain, and is sent.</summary>
    public async Task ReplaceAsync(TaskContext context, Signature sig, CancellationToken ct)
    {
        if (sig.Options.ContainsKey("chord"))
        {
            throw new ImproperlyConfiguredException("A signature replacing a task must not be part of a chord");
        }

        if (sig is Chain { Tasks.Count: 0 })
        {
            throw new ImproperlyConfiguredException("Cannot replace with an empty chain");
        }

        sig = sig.Clone();
        if (sig is Group group)
        {
            // As Celery: a group's results are joined into a list, which the callbacks then receive.
            var accumulate = new Signature("celery.accumulate", kwargs: new JsonObject { ["index"] = 0 }) { App = app };
            sig = new Chord(group, accumulate) { App = app };
        }

        foreach (Signature callback in context.EmbedSignatures("callbacks"))
        {
            sig.Link(callback);
        }

        foreach (Signature errback in context.EmbedSignatures("errbacks"))
        {
            sig.LinkError(errback);
        }

        // A chain's own callbacks would be lost when the rest of this task's chain is piped on: they go to its last step,
        // as Celery moves them.
        if (sig is Chain { Tasks.Count: > 0 } replacement && sig.Links.Count > 0)
        {
            foreach (Signature link in sig.Links)
            {
                replacement.Tasks[^1].Link(link);
            }
        }

        Freeze(sig, context.Id);
        TaskHeaders h = context.Headers;
        int nesting = h.Extra.TryGetValue("replaced_task_nesting", out object? n) && n is long depth ? (int)depth : 0;
        sig.Options["chord"] = context.Chord?.ToJson();
        sig.Options["group_id"] = h.Group;
        sig.Options["group_index"] = h.GroupIndex;
        sig.Options["root_id"] = h.RootId;
        sig.Options["replaced_task_nesting"] = nesting + 1;
        List<Signature> chain = context.EmbedSignatures("chain");
        for (int i = chain.Count - 1; i >= 0; i--)
        {
            sig |= chain[i];
        }

        await ApplyCoreAsync(sig, null, null, null, context.AddChild, ct).ConfigureAwait(false);
    }

    /// <summary>Celery's <c>Task.add_to_chord</c>: the signature joins the task's chord, which then waits for it too.</summary>
    public async Task<AsyncResult> AddToChordAsync(TaskContext context, Signature sig, CancellationToken ct)
    {
        Signature chord = context.Chord ?? throw new InvalidOperationException("Current task is not member of any chord");
        TaskHeaders h = context.Headers;
        sig = sig.Clone();
        sig.Options["group_id"] = h.Group;
        sig.Options["group_index"] = h.GroupIndex;
        sig.Options["chord"] = chord.ToJson();
        sig.Options["root_id"] = h.RootId;
        AsyncResult result = Freeze(sig);
        await app.ResultBackend.ExtendChordAsync(h.Group ?? throw new InvalidOperationException("the task has no group"), 1, ct).ConfigureAwait(false);
        await ApplyCoreAsync(sig, null, null, null, context.AddChild, ct).ConfigureAwait(false);
        return result;
    }

    // ---- helpers ----

    /// <summary>The signatures in one of an embed's lists (callbacks, errbacks, chain); a bad entry is skipped.</summary>
    internal static List<Signature> EmbedList(JsonElement embed, string name)
    {
        if (embed.ValueKind != JsonValueKind.Object || !embed.TryGetProperty(name, out JsonElement list))
        {
            return [];
        }

        IEnumerable<JsonElement> items = list.ValueKind switch
        {
            JsonValueKind.Array => list.EnumerateArray(),
            JsonValueKind.Object => [list],
            _ => [],
        };
        return [.. items.Where(e => e.ValueKind == JsonValueKind.Object).Select(Signature.FromJson)];
    }

    /// <summary>A clone of <paramref name="sig"/> with partial arguments, keyword arguments and options merged in, as Celery's <c>_merge</c>.</summary>
    private static Signature Merged(Signature sig, JsonArray? args, JsonObject? kwargs, JsonObject? options)
    {
        Signature copy = sig.Clone();
        if (args is not null)
        {
            copy.PrependArgs(args.Select(a => (object?)a));
        }

        MergeKwargs(copy, kwargs);
        MergeOptions(copy.Options, options);
        return copy;
    }

    private static JsonObject Merged(JsonObject own, JsonObject? options)
    {
        var merged = (JsonObject)own.DeepClone();
        MergeOptions(merged, options);
        return merged;
    }

    private static void MergeKwargs(Signature sig, JsonObject? kwargs)
    {
        if (kwargs is null || sig.Immutable)
        {
            return;
        }

        foreach ((string key, JsonNode? value) in kwargs)
        {
            sig.Kwargs[key] = value?.DeepClone();
        }
    }

    /// <summary>
    /// Options win over the signature's own, except a group id it already has (Celery's immutable options) and, beyond
    /// Celery, its place in that group (so that a group's own index does not overwrite its members'); a null option is no option.
    /// </summary>
    private static void MergeOptions(JsonObject target, JsonObject? options)
    {
        if (options is null)
        {
            return;
        }

        foreach ((string key, JsonNode? value) in options)
        {
            if (value is null || (key is "group_id" or "group_index" && target[key] is not null))
            {
                continue;
            }

            target[key] = value.DeepClone();
        }
    }

    private static string? Take(JsonObject o, string key) => o.Remove(key, out JsonNode? v) && v is JsonValue s && s.TryGetValue(out string? text) ? text : null;

    private static List<Signature> TakeList(JsonObject o, string key) =>
        o.Remove(key, out JsonNode? v) ? v switch
        {
            JsonArray list => [.. list.OfType<JsonObject>().Select(Signature.FromJson)],
            JsonObject one => [Signature.FromJson(one)],
            _ => [],
        } : [];

    internal static string? Str(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    private static double? Num(JsonObject o, string key) => o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.Number
        ? double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture)
        : null;
}
