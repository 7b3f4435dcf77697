using System.Globalization;
using System.Text.Json;

namespace Celeriac;

/// <summary>
/// Reads <see cref="CeleriacOptions"/> from the <c>Celeriac</c> section of <c>appsettings.json</c> and from
/// <c>CELERIAC_*</c> environment variables, in that order (the later wins).
/// </summary>
public static class CeleriacSettings
{
    /// <summary>The setting names, their environment variables and how each applies.</summary>
    private static readonly (string Key, string Env, Action<CeleriacOptions, string> Apply)[] s_settings =
    [
        ("BrokerUrl", "CELERIAC_BROKER_URL", static (o, v) => o.BrokerUrl = v),
        ("ResultBackend", "CELERIAC_RESULT_BACKEND", static (o, v) => o.ResultBackend = v),
        ("DefaultQueue", "CELERIAC_DEFAULT_QUEUE", static (o, v) => o.DefaultQueue = v),
        ("ResultExpires", "CELERIAC_RESULT_EXPIRES", static (o, v) => o.ResultExpires = v is "" or "none" or "null" ? null : Seconds("ResultExpires", v)),
        ("PrefetchMultiplier", "CELERIAC_PREFETCH_MULTIPLIER", static (o, v) => o.PrefetchMultiplier = Int("PrefetchMultiplier", v)),
        ("DisablePrefetch", "CELERIAC_DISABLE_PREFETCH", static (o, v) => o.DisablePrefetch = Bool("DisablePrefetch", v)),
        ("AcksLate", "CELERIAC_ACKS_LATE", static (o, v) => o.AcksLate = Bool("AcksLate", v)),
        ("TaskTimeLimit", "CELERIAC_TASK_TIME_LIMIT", static (o, v) => o.TaskTimeLimit = v is "" or "none" or "null" ? null : Seconds("TaskTimeLimit", v)),
        ("TaskSoftTimeLimit", "CELERIAC_TASK_SOFT_TIME_LIMIT", static (o, v) => o.TaskSoftTimeLimit = v is "" or "none" or "null" ? null : Seconds("TaskSoftTimeLimit", v)),
        ("AcksOnFailureOrTimeout", "CELERIAC_ACKS_ON_FAILURE_OR_TIMEOUT", static (o, v) => o.AcksOnFailureOrTimeout = Bool("AcksOnFailureOrTimeout", v)),
        ("RejectOnWorkerLost", "CELERIAC_REJECT_ON_WORKER_LOST", static (o, v) => o.RejectOnWorkerLost = Bool("RejectOnWorkerLost", v)),
        ("ColdShutdownGrace", "CELERIAC_COLD_SHUTDOWN_GRACE", static (o, v) => o.ColdShutdownGrace = Seconds("ColdShutdownGrace", v)),
        ("StateDb", "CELERIAC_STATEDB", static (o, v) => o.StateDb = v is "" ? null : v),
        ("Concurrency", "CELERIAC_CONCURRENCY", static (o, v) => o.Concurrency = Int("Concurrency", v)),
        ("Pool", "CELERIAC_POOL", static (o, v) => o.Pool = v),
        ("Autoscale", "CELERIAC_AUTOSCALE", static (o, v) => o.Autoscale = v is "" or "none" or "null" ? null : v),
        ("AutoscaleKeepAlive", "CELERIAC_AUTOSCALE_KEEPALIVE", static (o, v) => o.AutoscaleKeepAlive = Seconds("AutoscaleKeepAlive", v)),
        ("SoftShutdownTimeout", "CELERIAC_SOFT_SHUTDOWN_TIMEOUT", static (o, v) => o.SoftShutdownTimeout = Seconds("SoftShutdownTimeout", v)),
        ("MaxTasksPerChild", "CELERIAC_MAX_TASKS_PER_CHILD", static (o, v) => o.MaxTasksPerChild = v is "" or "none" or "null" ? null : Int("MaxTasksPerChild", v)),
        ("MaxMemoryPerChild", "CELERIAC_MAX_MEMORY_PER_CHILD", static (o, v) => o.MaxMemoryPerChild = v is "" or "none" or "null" ? null : Int("MaxMemoryPerChild", v)),
        ("TrackStarted", "CELERIAC_TRACK_STARTED", static (o, v) => o.TrackStarted = Bool("TrackStarted", v)),
        ("TaskEvents", "CELERIAC_TASK_EVENTS", static (o, v) => o.TaskEvents = Bool("TaskEvents", v)),
        ("WithoutHeartbeat", "CELERIAC_WITHOUT_HEARTBEAT", static (o, v) => o.WithoutHeartbeat = Bool("WithoutHeartbeat", v)),
        ("WithoutMingle", "CELERIAC_WITHOUT_MINGLE", static (o, v) => o.WithoutMingle = Bool("WithoutMingle", v)),
        ("Timezone", "CELERIAC_TIMEZONE", static (o, v) => o.Timezone = v),
        ("BeatScheduleUrl", "CELERIAC_BEAT_SCHEDULE", static (o, v) => o.BeatScheduleUrl = v is "" ? null : v),
        ("BeatMaxInterval", "CELERIAC_BEAT_MAX_INTERVAL", static (o, v) => o.BeatMaxInterval = Seconds("BeatMaxInterval", v)),
        ("BeatLeaseTime", "CELERIAC_BEAT_LEASE_TIME", static (o, v) => o.BeatLeaseTime = Seconds("BeatLeaseTime", v)),
        ("BeatMisfireGrace", "CELERIAC_BEAT_MISFIRE_GRACE", static (o, v) => o.BeatMisfireGrace = Seconds("BeatMisfireGrace", v)),
        ("HeartbeatInterval", "CELERIAC_HEARTBEAT_INTERVAL", static (o, v) => o.HeartbeatInterval = Seconds("HeartbeatInterval", v)),
        ("TaskSendSentEvent", "CELERIAC_TASK_SEND_SENT_EVENT", static (o, v) => o.TaskSendSentEvent = Bool("TaskSendSentEvent", v)),
        ("ResultExtended", "CELERIAC_RESULT_EXTENDED", static (o, v) => o.ResultExtended = Bool("ResultExtended", v)),
        ("VisibilityTimeout", "CELERIAC_VISIBILITY_TIMEOUT", static (o, v) => o.VisibilityTimeout = Seconds("VisibilityTimeout", v)),
        ("BrokerConnectTimeout", "CELERIAC_BROKER_CONNECT_TIMEOUT", static (o, v) => o.BrokerConnectTimeout = Seconds("BrokerConnectTimeout", v)),
        ("QueueMaxPriority", "CELERIAC_QUEUE_MAX_PRIORITY", static (o, v) => o.QueueMaxPriority = v is "" or "none" or "null" ? null : Int("QueueMaxPriority", v)),
        ("QueueType", "CELERIAC_QUEUE_TYPE", static (o, v) => o.QueueType = v),
        ("Queues", "CELERIAC_QUEUES", static (o, v) => SetQueues(o, v)),
        ("NodeName", "CELERIAC_HOSTNAME", static (o, v) => o.NodeName = v),
    ];

    /// <summary>The environment variable of each setting, for documentation and help text.</summary>
    public static IEnumerable<(string Setting, string Variable)> Variables => s_settings.Select(s => (s.Key, s.Env));

    /// <summary>Applies <c>appsettings.json</c> (if the file exists) and then the environment.</summary>
    public static void Apply(CeleriacOptions options, string? appSettingsPath = "appsettings.json", Func<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (appSettingsPath is not null && File.Exists(appSettingsPath))
        {
            ApplyJson(options, File.ReadAllBytes(appSettingsPath), appSettingsPath);
        }

        ApplyEnvironment(options, environment ?? Environment.GetEnvironmentVariable);
    }

    /// <summary>Applies the <c>Celeriac</c> object of an <c>appsettings.json</c> document.</summary>
    public static void ApplyJson(CeleriacOptions options, ReadOnlySpan<byte> json, string source = "appsettings.json")
    {
        ArgumentNullException.ThrowIfNull(options);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            throw new CeleriacConfigurationException($"{source} is not valid JSON: {ex.Message}", ex);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("Celeriac", out JsonElement section))
            {
                return;
            }

            foreach (JsonProperty p in section.EnumerateObject())
            {
                if (p.NameEquals("TaskRoutes") && p.Value.ValueKind == JsonValueKind.Object)
                {
                    foreach (JsonProperty route in p.Value.EnumerateObject())
                    {
                        options.TaskRoutes[route.Name] = route.Value.GetString() ?? "";
                    }

                    continue;
                }

                if (p.NameEquals("ResultBackendSettings") && p.Value.ValueKind == JsonValueKind.Object)
                {
                    foreach (JsonProperty setting in p.Value.EnumerateObject())
                    {
                        options.ResultBackendSettings[setting.Name] = setting.Value.ValueKind == JsonValueKind.String ? setting.Value.GetString()! : setting.Value.GetRawText();
                    }

                    continue;
                }

                if (p.NameEquals("BeatSchedule") && p.Value.ValueKind == JsonValueKind.Object)
                {
                    // Kept as written: beat reads each entry (and names the bad ones) when it starts.
                    foreach (JsonProperty entry in p.Value.EnumerateObject())
                    {
                        options.BeatSchedule[entry.Name] = entry.Value.Clone();
                    }

                    continue;
                }

                string value = p.Value.ValueKind switch
                {
                    JsonValueKind.String => p.Value.GetString()!,
                    JsonValueKind.Array => string.Join(',', p.Value.EnumerateArray().Select(e => e.ToString())),
                    JsonValueKind.Null => "",
                    _ => p.Value.GetRawText(),
                };
                ApplySetting(options, p.Name, value, source);
            }
        }
    }

    /// <summary>Applies one setting by its name (<c>BrokerUrl</c>, <c>Concurrency</c>, ...), case-insensitive.</summary>
    public static void ApplySetting(CeleriacOptions options, string name, string value, string source = "configuration")
    {
        ArgumentNullException.ThrowIfNull(options);
        var setting = s_settings.FirstOrDefault(s => string.Equals(s.Key, name, StringComparison.OrdinalIgnoreCase));
        if (setting.Apply is null)
        {
            throw new CeleriacConfigurationException($"{source}: unknown setting Celeriac:{name} (known: {string.Join(", ", s_settings.Select(s => s.Key))}, TaskRoutes, BeatSchedule, ResultBackendSettings).");
        }

        setting.Apply(options, value);
    }

    /// <summary>Applies the <c>CELERIAC_*</c> environment variables that are set.</summary>
    public static void ApplyEnvironment(CeleriacOptions options, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(environment);
        foreach ((string _, string env, Action<CeleriacOptions, string> apply) in s_settings)
        {
            if (environment(env) is { } value)
            {
                apply(options, value);
            }
        }
    }

    private static void SetQueues(CeleriacOptions o, string v)
    {
        o.Queues.Clear();
        foreach (string q in v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            o.Queues.Add(q);
        }
    }

    private static TimeSpan Seconds(string name, string v) =>
        double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) && s >= 0 && double.IsFinite(s)
            ? TimeSpan.FromSeconds(s)
            : throw new CeleriacConfigurationException($"Setting {name} must be a number of seconds (got '{v}').");

    private static int Int(string name, string v) =>
        int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i)
            ? i
            : throw new CeleriacConfigurationException($"Setting {name} must be a whole number (got '{v}').");

    private static bool Bool(string name, string v) => v.ToUpperInvariant() switch
    {
        "1" or "TRUE" or "YES" or "ON" => true,
        "0" or "FALSE" or "NO" or "OFF" or "" => false,
        _ => throw new CeleriacConfigurationException($"Setting {name} must be true or false (got '{v}')."),
    };
}
