using System.Reflection;
using System.Text.Json;
using builtins;
using Celeriac.Protocol;
using Celeriac.Transport;
using t.integration.tasks;

namespace Celeriac.SuiteWorker;

/// <summary>
/// The tasks of Celery 5.2.6's integration suite, <c>t/integration/tasks.py</c>, in C#: the same names
/// (<c>t.integration.tasks.&lt;name&gt;</c>), parameters, defaults, return values and exceptions, in the file's order.
/// Values the Python tasks take untyped are <see cref="object"/> here (plain JSON values) and combined with
/// Python's meaning (<see cref="Py"/>). A Python task with <c>bind=True</c> takes a <see cref="TaskContext"/>
/// (its <c>self.request</c>); a task that builds signatures takes one too, for its app. Python's keyword-only
/// parameters after <c>*args</c> come from the <c>kwargs</c> dictionary (a C# <c>params</c> array must be last).
/// </summary>
public static class IntegrationTasks
{
    private const string P = "t.integration.tasks.";

    private static readonly Lock s_attemptGate = new();
    private static int s_attempt;

    /// <summary><c>identity(x)</c>: returns the argument.</summary>
    [CeleriacTask(P + "identity")]
    public static object? Identity(object? x) => x;

    /// <summary><c>add(x, y, z=None)</c>: adds two or three values (Python's <c>+</c>: numbers, strings, lists).</summary>
    [CeleriacTask(P + "add")]
    public static object? Add(object? x, object? y, object? z = null) => Py.Truthy(z) ? Py.Add(Py.Add(x, y), z) : Py.Add(x, y);

    /// <summary><c>write_to_file_and_return_int(file_name, i)</c>: appends <c>str(i)</c> and a newline to the file, returns i.</summary>
    [CeleriacTask(P + "write_to_file_and_return_int")]
    public static object? WriteToFileAndReturnInt(string file_name, object? i)
    {
        File.AppendAllText(file_name, Py.Str(i) + "\n");
        return i;
    }

    /// <summary><c>add_not_typed(x, y)</c> (<c>typing=False</c>: the client does not check the arguments; a bad call fails here).</summary>
    [CeleriacTask(P + "add_not_typed")]
    public static object? AddNotTyped(object? x, object? y) => Py.Add(x, y);

    /// <summary><c>add_ignore_result(x, y)</c> (<c>ignore_result=True</c>).</summary>
    [CeleriacTask(P + "add_ignore_result", IgnoreResult = true)]
    public static object? AddIgnoreResult(object? x, object? y) => Py.Add(x, y);

    /// <summary><c>raise_error(*args)</c>: raises <c>ValueError("deliberate error")</c>.</summary>
    [CeleriacTask(P + "raise_error")]
    public static void RaiseError(params object?[] args) => throw new ValueError("deliberate error");

    /// <summary><c>chain_add(x, y)</c>: sends <c>add.s(x, x) | add.s(y)</c>, returns None.</summary>
    [CeleriacTask(P + "chain_add")]
    public static async Task ChainAdd(TaskContext context, object? x, object? y)
    {
        CeleriacApp app = AppOf(context);
        await (Named(app, "add").S(x, x) | Named(app, "add").S(y)).ApplyAsync();
    }

    /// <summary><c>chord_add(x, y)</c>: sends <c>chord(add.s(x, x), add.s(y))</c>, returns None.</summary>
    [CeleriacTask(P + "chord_add")]
    public static async Task ChordAdd(TaskContext context, object? x, object? y)
    {
        CeleriacApp app = AppOf(context);
        await Canvas.Chord([Named(app, "add").S(x, x)], Named(app, "add").S(y)).ApplyAsync();
    }

    /// <summary><c>delayed_sum(numbers, pause_time=1)</c>: sleeps, then returns the sum (stays STARTED that long).</summary>
    [CeleriacTask(P + "delayed_sum")]
    public static async Task<object?> DelayedSum(object? numbers, CancellationToken ct, double pause_time = 1)
    {
        await Task.Delay(TimeSpan.FromSeconds(pause_time), ct);
        return Py.Sum(numbers);
    }

    /// <summary>
    /// <c>delayed_sum_with_soft_guard(numbers, pause_time=1)</c>: as <c>delayed_sum</c>, but returns 0 when its soft time
    /// limit cuts the sleep (Python catches <c>SoftTimeLimitExceeded</c>; Celeriac cancels the task's token).
    /// </summary>
    [CeleriacTask(P + "delayed_sum_with_soft_guard")]
    public static async Task<object?> DelayedSumWithSoftGuard(object? numbers, CancellationToken ct, double pause_time = 1)
    {
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(pause_time), ct);
            return Py.Sum(numbers);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return 0L;
        }
    }

    /// <summary><c>tsum(nums)</c>: the sum.</summary>
    [CeleriacTask(P + "tsum")]
    public static object? TSum(object? nums) => Py.Sum(nums);

    /// <summary><c>add_replaced(x, y)</c> (bound): replaces itself with <c>add.s(x, y)</c>.</summary>
    [CeleriacTask(P + "add_replaced")]
    public static async Task AddReplaced(TaskContext context, object? x, object? y) =>
        throw await context.ReplaceAsync(Named(AppOf(context), "add").S(x, y));

    /// <summary>
    /// <c>replace_with_chain(*args, link_msg=None)</c> (bound): replaces itself with <c>identity.s(*args) | identity.s()</c>
    /// linked to <c>redis_echo</c> (with <c>link_msg</c>, immutable, when given).
    /// </summary>
    [CeleriacTask(P + "replace_with_chain")]
    public static async Task ReplaceWithChain(TaskContext context, IReadOnlyDictionary<string, JsonElement> kwargs, params JsonElement[] args)
    {
        JsonElement? linkMsg = LinkMsg(KeywordOnly(kwargs, "replace_with_chain", "link_msg"));
        CeleriacApp app = AppOf(context);
        Chain c = Canvas.Chain(Named(app, "identity").S(args.Select(a => (object?)a), null), Named(app, "identity").S());
        c.Link(EchoLink(app, linkMsg));
        throw await context.ReplaceAsync(c);
    }

    /// <summary>
    /// <c>replace_with_chain_which_raises(*args, link_msg=None)</c> (bound): replaces itself with
    /// <c>identity.s(*args) | raise_error.s()</c> whose error callback is <c>redis_echo</c> (as above).
    /// </summary>
    [CeleriacTask(P + "replace_with_chain_which_raises")]
    public static async Task ReplaceWithChainWhichRaises(TaskContext context, IReadOnlyDictionary<string, JsonElement> kwargs, params JsonElement[] args)
    {
        JsonElement? linkMsg = LinkMsg(KeywordOnly(kwargs, "replace_with_chain_which_raises", "link_msg"));
        CeleriacApp app = AppOf(context);
        Chain c = Canvas.Chain(Named(app, "identity").S(args.Select(a => (object?)a), null), Named(app, "raise_error").S());
        c.LinkError(EchoLink(app, linkMsg));
        throw await context.ReplaceAsync(c);
    }

    /// <summary><c>replace_with_empty_chain(*_)</c> (bound): replaces itself with an empty chain, which Celery refuses.</summary>
    [CeleriacTask(P + "replace_with_empty_chain")]
    public static async Task ReplaceWithEmptyChain(TaskContext context, params JsonElement[] _) =>
        throw await context.ReplaceAsync(Canvas.Chain());

    /// <summary><c>add_to_all(nums, val)</c> (bound): replaces itself with <c>group(add.s(num, val) for num in nums)</c>.</summary>
    [CeleriacTask(P + "add_to_all")]
    public static async Task AddToAll(TaskContext context, object? nums, object? val)
    {
        CeleriacApp app = AppOf(context);
        List<Signature> subtasks = [.. Items(nums).Select(num => Named(app, "add").S(num, val))];
        throw await context.ReplaceAsync(Canvas.Group(subtasks));
    }

    /// <summary><c>add_to_all_to_chord(nums, val)</c> (bound): adds <c>add.s(num, val)</c> to its chord for each num, returns 0.</summary>
    [CeleriacTask(P + "add_to_all_to_chord")]
    public static async Task<long> AddToAllToChord(TaskContext context, object? nums, object? val)
    {
        CeleriacApp app = AppOf(context);
        foreach (object? num in Items(nums))
        {
            await context.AddToChordAsync(Named(app, "add").S(num, val));
        }

        return 0;
    }

    /// <summary><c>add_chord_to_chord(nums, val)</c> (bound): adds <c>group(add.s(num, val) ...) | tsum.s()</c> to its chord, returns 0.</summary>
    [CeleriacTask(P + "add_chord_to_chord")]
    public static async Task<long> AddChordToChord(TaskContext context, object? nums, object? val)
    {
        CeleriacApp app = AppOf(context);
        List<Signature> subtasks = [.. Items(nums).Select(num => Named(app, "add").S(num, val))];
        await context.AddToChordAsync(Canvas.Group(subtasks) | Named(app, "tsum").S());
        return 0;
    }

    /// <summary>
    /// <c>print_unicode(log_message='håå®ƒ valmuefrø', print_message='hiöäüß')</c>: logs a warning and prints, both with
    /// non-ASCII characters, returns None. Celery logs through the task logger and prints to the worker's redirected
    /// stdout; here the warning goes to stderr and the print to stdout (the worker's log).
    /// </summary>
    [CeleriacTask(P + "print_unicode")]
    public static void PrintUnicode(string log_message = "håå®ƒ valmuefrø", string print_message = "hiöäüß")
    {
        Console.Error.WriteLine("WARNING/t.integration.tasks.print_unicode: " + log_message);
        Console.Out.WriteLine(print_message);
    }

    /// <summary><c>return_exception(e)</c>: returns <c>(e, True)</c>.</summary>
    [CeleriacTask(P + "return_exception")]
    public static object?[] ReturnException(object? e) => [e, true];

    /// <summary><c>sleeping(i, **_)</c>: sleeps i seconds (cut short by a time limit or a terminate), returns None.</summary>
    [CeleriacTask(P + "sleeping")]
    public static async Task Sleeping(double i, IReadOnlyDictionary<string, JsonElement> kwargs, CancellationToken ct) =>
        await Task.Delay(TimeSpan.FromSeconds(i), ct);

    /// <summary><c>ids(i)</c> (bound): returns <c>(root_id, parent_id, i)</c>.</summary>
    [CeleriacTask(P + "ids")]
    public static object?[] Ids(TaskContext context, object? i) => [context.RootId, context.ParentId, i];

    /// <summary><c>collect_ids(res, i)</c> (bound): returns <c>(res, (root_id, parent_id, i))</c>.</summary>
    [CeleriacTask(P + "collect_ids")]
    public static object?[] CollectIds(TaskContext context, object? res, object? i) => [res, new object?[] { context.RootId, context.ParentId, i }];

    /// <summary>
    /// <c>retry(return_value=None)</c> (bound, <c>default_retry_delay=1</c>): retries itself with
    /// <c>ExpectedException()</c> every 5 s; with a truthy return_value it returns it on its fourth attempt. The attempt
    /// count is kept on the task (Python's <c>self.attempt</c>), so it is shared by the worker's runs of it.
    /// </summary>
    [CeleriacTask(P + "retry", DefaultRetryDelaySeconds = 1)]
    public static async Task<object?> Retry(TaskContext context, object? return_value = null)
    {
        if (Py.Truthy(return_value))
        {
            int attempt;
            lock (s_attemptGate)
            {
                attempt = s_attempt;
                s_attempt = attempt >= 3 ? 0 : attempt + 1;
            }

            Console.Out.WriteLine("attempt " + attempt.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (attempt >= 3)
            {
                return return_value;
            }
        }

        throw await context.RetryAsync(new ExpectedException(), countdown: TimeSpan.FromSeconds(5));
    }

    /// <summary>
    /// <c>retry_once(*args, expires=60.0, max_retries=1, countdown=0.1)</c> (bound, <c>max_retries=1</c>): retries once,
    /// then returns the number of retries. A countdown of None uses the default retry delay (3 minutes), as Celery's.
    /// </summary>
    [CeleriacTask(P + "retry_once", MaxRetries = 1)]
    public static async Task<int> RetryOnce(TaskContext context, IReadOnlyDictionary<string, JsonElement> kwargs, params JsonElement[] args)
    {
        (int? maxRetries, TimeSpan? countdown) = RetryOnceOptions(kwargs, "retry_once");
        if (context.Retries > 0)
        {
            return context.Retries;
        }

        throw await context.RetryAsync(countdown: countdown, maxRetries: maxRetries);
    }

    /// <summary>
    /// <c>retry_once_priority(*args, expires=60.0, max_retries=1, countdown=0.1)</c> (bound): retries once, then returns
    /// the priority it was delivered with (<c>delivery_info['priority']</c>).
    /// </summary>
    [CeleriacTask(P + "retry_once_priority", MaxRetries = 1)]
    public static async Task<int?> RetryOncePriority(TaskContext context, IReadOnlyDictionary<string, JsonElement> kwargs, params JsonElement[] args)
    {
        (int? maxRetries, TimeSpan? countdown) = RetryOnceOptions(kwargs, "retry_once_priority");
        if (context.Retries > 0)
        {
            return TransportOf(context)?.Priority;
        }

        throw await context.RetryAsync(countdown: countdown, maxRetries: maxRetries);
    }

    /// <summary><c>redis_echo(message, redis_key="redis-echo")</c>: appends the message to a Redis list, returns None.</summary>
    [CeleriacTask(P + "redis_echo")]
    public static async Task RedisEcho(object? message, string redis_key = "redis-echo") =>
        await SuiteRedis.Db.ListRightPushAsync(redis_key, SuiteRedis.Encode(message));

    /// <summary><c>redis_count(redis_key="redis-count")</c>: increments a Redis key, returns None.</summary>
    [CeleriacTask(P + "redis_count")]
    public static async Task RedisCount(string redis_key = "redis-count") =>
        await SuiteRedis.Db.StringIncrementAsync(redis_key);

    /// <summary>
    /// <c>second_order_replace1(state=False)</c> (bound): pushes "In A" and replaces itself with
    /// <c>second_order_replace2.s() | second_order_replace1.si(state=True)</c>, which pushes "Out A".
    /// </summary>
    [CeleriacTask(P + "second_order_replace1")]
    public static async Task SecondOrderReplace1(TaskContext context, object? state = null)
    {
        if (!Py.Truthy(state))
        {
            await SuiteRedis.Db.ListRightPushAsync("redis-echo", "In A");
            CeleriacApp app = AppOf(context);
            Chain newTask = Canvas.Chain(
                Named(app, "second_order_replace2").S(),
                Named(app, "second_order_replace1").S([], new Dictionary<string, object?> { ["state"] = true }).SetImmutable());
            throw await context.ReplaceAsync(newTask);
        }

        await SuiteRedis.Db.ListRightPushAsync("redis-echo", "Out A");
    }

    /// <summary>
    /// <c>second_order_replace2(state=False)</c> (bound): pushes "In B" and replaces itself with
    /// <c>redis_echo.s("In/Out C") | second_order_replace2.si(state=True)</c>, which pushes "Out B".
    /// </summary>
    [CeleriacTask(P + "second_order_replace2")]
    public static async Task SecondOrderReplace2(TaskContext context, object? state = null)
    {
        if (!Py.Truthy(state))
        {
            await SuiteRedis.Db.ListRightPushAsync("redis-echo", "In B");
            CeleriacApp app = AppOf(context);
            Chain newTask = Canvas.Chain(
                Named(app, "redis_echo").S("In/Out C"),
                Named(app, "second_order_replace2").S([], new Dictionary<string, object?> { ["state"] = true }).SetImmutable());
            throw await context.ReplaceAsync(newTask);
        }

        await SuiteRedis.Db.ListRightPushAsync("redis-echo", "Out B");
    }

    /// <summary>
    /// <c>build_chain_inside_task()</c> (bound): sends <c>add.s(1, 1) | add.s(2) | group(add.s(3), add.s(4)) | add.s(5)</c>
    /// and returns its result, which Celery's JSON backend stores as <c>result.as_tuple()</c>.
    /// </summary>
    [CeleriacTask(P + "build_chain_inside_task")]
    public static async Task<object?[]> BuildChainInsideTask(TaskContext context)
    {
        CeleriacApp app = AppOf(context);
        Signature testChain =
            Named(app, "add").S(1, 1) |
            Named(app, "add").S(2) |
            Canvas.Group(Named(app, "add").S(3), Named(app, "add").S(4)) |
            Named(app, "add").S(5);
        AsyncResult result = await testChain.ApplyAsync();
        return AsTuple(result);
    }

    /// <summary><c>fail(*args)</c>: raises <c>ExpectedException("Task expected to fail", *args)</c>.</summary>
    [CeleriacTask(P + "fail")]
    public static void Fail(params object?[] args) => throw new ExpectedException(["Task expected to fail", .. args]);

    /// <summary><c>fail_replaced(*args)</c> (bound): replaces itself with <c>fail.si(*args)</c>.</summary>
    [CeleriacTask(P + "fail_replaced")]
    public static async Task FailReplaced(TaskContext context, params object?[] args) =>
        throw await context.ReplaceAsync(Named(AppOf(context), "fail").S((IEnumerable<object?>)args, null).SetImmutable());

    /// <summary><c>return_priority(*_args)</c> (bound): returns <c>"Priority: %s" % delivery_info['priority']</c>.</summary>
    [CeleriacTask(P + "return_priority")]
    public static string ReturnPriority(TaskContext context, params JsonElement[] _args) =>
        "Priority: " + Py.Str(TransportOf(context)?.Priority is { } p ? (long)p : null);

    /// <summary>
    /// <c>return_properties()</c> (bound): returns the message's properties (<c>self.request.properties</c>). Celeriac
    /// keeps only some of them (no <c>app_id</c>): the ones it has are returned.
    /// </summary>
    [CeleriacTask(P + "return_properties")]
    public static Dictionary<string, object?> ReturnProperties(TaskContext context)
    {
        TransportMessage? transport = TransportOf(context);
        var properties = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["correlation_id"] = transport?.CorrelationId ?? context.Id,
            ["reply_to"] = context.ReplyTo,
            ["delivery_info"] = new Dictionary<string, object?>(StringComparer.Ordinal) { ["exchange"] = context.Exchange, ["routing_key"] = context.RoutingKey },
        };
        if (transport is not null)
        {
            properties["delivery_mode"] = (long)transport.DeliveryMode;
            properties["priority"] = transport.Priority is { } p ? (long)p : null;
            properties["delivery_tag"] = transport.DeliveryTag;
        }

        return properties;
    }

    /// <summary>
    /// <c>ClassBasedAutoRetryTask</c>, named <c>auto_retry_class_task</c>: retries itself on <c>ValueError</c>
    /// (<c>autoretry_for</c>, <c>max_retries=1</c>, <c>retry_backoff=True</c>), then returns the number of retries.
    /// </summary>
    [CeleriacTask("auto_retry_class_task", AutoRetryFor = [typeof(ValueError)], MaxRetries = 1, RetryBackoffSeconds = 1)]
    public static int AutoRetryClassTask(TaskContext context) => context.Retries > 0 ? context.Retries : throw new ValueError();

    // The signatures returned by these tasks would not run (their arguments are missing); they are never sent, only
    // returned, as Celery's dicts, to be rebuilt by rebuild_signature. Each has the shape Celery's constructors make.

    /// <summary><c>return_nested_signature_chain_chain()</c>: <c>chain(chain([add.s()]))</c>.</summary>
    [CeleriacTask(P + "return_nested_signature_chain_chain")]
    public static object ReturnNestedSignatureChainChain() => Canvas.Chain(Canvas.Chain(AddSig())).ToJson();

    /// <summary><c>return_nested_signature_chain_group()</c>: <c>chain(group([add.s()]))</c>.</summary>
    [CeleriacTask(P + "return_nested_signature_chain_group")]
    public static object ReturnNestedSignatureChainGroup() => Canvas.Chain(Canvas.Group(AddSig())).ToJson();

    /// <summary><c>return_nested_signature_chain_chord()</c>: <c>chain(chord([add.s()], add.s()))</c>.</summary>
    [CeleriacTask(P + "return_nested_signature_chain_chord")]
    public static object ReturnNestedSignatureChainChord() => Canvas.Chain(Canvas.Chord([AddSig()], AddSig())).ToJson();

    /// <summary><c>return_nested_signature_group_chain()</c>: <c>group(chain([add.s()]))</c>.</summary>
    [CeleriacTask(P + "return_nested_signature_group_chain")]
    public static object ReturnNestedSignatureGroupChain() => Canvas.Group(Canvas.Chain(AddSig())).ToJson();

    /// <summary><c>return_nested_signature_group_group()</c>: <c>group(group([add.s()]))</c> (a group of one group is that group, as in Celery).</summary>
    [CeleriacTask(P + "return_nested_signature_group_group")]
    public static object ReturnNestedSignatureGroupGroup() => Canvas.Group(Canvas.Group(AddSig()).Tasks).ToJson();

    /// <summary><c>return_nested_signature_group_chord()</c>: <c>group(chord([add.s()], add.s()))</c>.</summary>
    [CeleriacTask(P + "return_nested_signature_group_chord")]
    public static object ReturnNestedSignatureGroupChord() => Canvas.Group(Canvas.Chord([AddSig()], AddSig())).ToJson();

    /// <summary><c>return_nested_signature_chord_chain()</c>: <c>chord(chain([add.s()]), add.s())</c> (a chain header gives its tasks, as in Celery).</summary>
    [CeleriacTask(P + "return_nested_signature_chord_chain")]
    public static object ReturnNestedSignatureChordChain() => Canvas.Chord(Canvas.Chain(AddSig()).Tasks, AddSig()).ToJson();

    /// <summary><c>return_nested_signature_chord_group()</c>: <c>chord(group([add.s()]), add.s())</c>.</summary>
    [CeleriacTask(P + "return_nested_signature_chord_group")]
    public static object ReturnNestedSignatureChordGroup() => Canvas.Chord(Canvas.Group(AddSig()), AddSig()).ToJson();

    /// <summary><c>return_nested_signature_chord_chord()</c>: <c>chord(chord([add.s()], add.s()), add.s())</c>.</summary>
    [CeleriacTask(P + "return_nested_signature_chord_chord")]
    public static object ReturnNestedSignatureChordChord() => Canvas.Chord([Canvas.Chord([AddSig()], AddSig())], AddSig()).ToJson();

    /// <summary>
    /// <c>rebuild_signature(sig_dict)</c>: rebuilds a signature from Celery's dict and checks that every nested part
    /// (a chain's or group's tasks, a chord's header and body) is a signature too, else raises <c>TypeError</c>. Returns None.
    /// </summary>
    [CeleriacTask(P + "rebuild_signature")]
    public static void RebuildSignature(object? sig_dict)
    {
        Signature sig;
        try
        {
            sig = Signature.FromJson(Signature.ToNode(sig_dict) ?? throw new TypeError("None is not a signature object"));
        }
        catch (JsonException ex)
        {
            throw new TypeError($"{Py.Repr(sig_dict)} is not a signature object", ex);
        }

        static void Recurse(Signature? s)
        {
            if (s is null)
            {
                throw new TypeError("None is not a signature object");
            }

            IEnumerable<Signature> tasks = s switch
            {
                Chain c => c.Tasks,
                Group g => g.Tasks,
                Chord chord => chord.Header.Tasks,
                _ => [],
            };
            foreach (Signature task in tasks)
            {
                Recurse(task);
            }

            if (s is Chord withBody)
            {
                Recurse(withBody.Body);
            }
        }

        Recurse(sig);
    }

    /// <summary><c>errback_old_style(request_id)</c>: increments the Redis key named by the failed task's id, returns the id.</summary>
    [CeleriacTask(P + "errback_old_style")]
    public static async Task<string> ErrbackOldStyle(string request_id)
    {
        await RedisCount(request_id);
        return request_id;
    }

    /// <summary>
    /// <c>errback_new_style(request, exc, tb)</c>: an error callback called with the failed task's request: increments
    /// the Redis key named by its id, returns the id.
    /// </summary>
    [CeleriacTask(P + "errback_new_style")]
    public static async Task<string?> ErrbackNewStyle(object? request, object? exc, object? tb)
    {
        string? id = request is IDictionary<string, object?> r && r.TryGetValue("id", out object? value) ? value as string
            : throw new TypeError($"'{Py.TypeName(request)}' object has no attribute 'id'");
        await RedisCount(id!);
        return id;
    }

    private static CeleriacApp AppOf(TaskContext context) =>
        context.App ?? throw new InvalidOperationException("this task builds signatures: it runs only on a worker");

    private static CeleriacTask Named(CeleriacApp app, string name) => app.Signature(P + name);

    private static Signature AddSig() => new(P + "add");

    /// <summary>The <c>redis_echo</c> callback of the replace_with_chain tasks: <c>redis_echo.s()</c>, or with <c>link_msg</c> as its only argument, immutable.</summary>
    private static Signature EchoLink(CeleriacApp app, JsonElement? linkMsg) =>
        linkMsg is { } msg ? Named(app, "redis_echo").S(msg).SetImmutable() : Named(app, "redis_echo").S();

    /// <summary>The <c>link_msg=None</c> keyword: its value, or <see langword="null"/> when not given or None.</summary>
    private static JsonElement? LinkMsg(Dictionary<string, JsonElement> kwargs) =>
        kwargs.TryGetValue("link_msg", out JsonElement m) && m.ValueKind != JsonValueKind.Null ? m : null;

    private static IEnumerable<object?> Items(object? iterable) => iterable switch
    {
        IEnumerable<object?> items => items,
        _ => throw new TypeError($"'{Py.TypeName(iterable)}' object is not iterable"),
    };

    /// <summary>Python's keyword-only parameters: the keyword arguments, refusing names the function does not have.</summary>
    private static Dictionary<string, JsonElement> KeywordOnly(IReadOnlyDictionary<string, JsonElement> kwargs, string function, params string[] names)
    {
        var known = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach ((string name, JsonElement value) in kwargs)
        {
            if (!names.Contains(name, StringComparer.Ordinal))
            {
                throw new TypeError($"{function}() got an unexpected keyword argument '{name}'");
            }

            known[name] = value;
        }

        return known;
    }

    /// <summary>The keyword-only <c>expires=60.0, max_retries=1, countdown=0.1</c> of the retry_once tasks (None is None).</summary>
    private static (int? MaxRetries, TimeSpan? Countdown) RetryOnceOptions(IReadOnlyDictionary<string, JsonElement> kwargs, string function)
    {
        Dictionary<string, JsonElement> k = KeywordOnly(kwargs, function, "expires", "max_retries", "countdown");
        int? maxRetries = k.TryGetValue("max_retries", out JsonElement m) ? (m.ValueKind == JsonValueKind.Null ? null : m.GetInt32()) : 1;
        TimeSpan? countdown = k.TryGetValue("countdown", out JsonElement c)
            ? (c.ValueKind == JsonValueKind.Null ? null : TimeSpan.FromSeconds(c.GetDouble()))
            : TimeSpan.FromSeconds(0.1);
        return (maxRetries, countdown);
    }

    // Celeriac's TaskContext has no public delivery_info or message properties yet: the transport message (priority,
    // correlation id, delivery mode) is read from its internal Message property. Null when that property is gone.
    private static readonly PropertyInfo? s_message = typeof(TaskContext).GetProperty("Message", BindingFlags.Instance | BindingFlags.NonPublic);

    private static TransportMessage? TransportOf(TaskContext context) => (s_message?.GetValue(context) as TaskMessage)?.Transport;

    /// <summary>Celery's <c>ResultBase.as_tuple()</c>: <c>((id, parent), None)</c>, a group's <c>((id, parent), [children])</c>.</summary>
    private static object?[] AsTuple(AsyncResult result) => result is GroupResult group
        ? [new object?[] { group.Id, group.Parent is null ? null : AsTuple(group.Parent) }, group.Results.Select(r => (object?)AsTuple(r)).ToList()]
        : [new object?[] { result.Id, result.Parent is null ? null : AsTuple(result.Parent) }, null];
}
