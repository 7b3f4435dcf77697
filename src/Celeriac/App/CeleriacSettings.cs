using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace Celeriac;

/// <summary>
/// The one reader of Celeriac's settings, on <see cref="IConfiguration"/>: the <c>Celeriac</c> section (a worker's
/// settings also under <c>Celeriac:Worker</c>) and the documented <c>CELERIAC_*</c> environment variables, the later
/// configuration source winning (appsettings.json &lt; environment &lt; command line, as a .NET host stacks them).
/// <c>AddCeleriac</c> reads the host's configuration with it; <c>CeleriacApp.Create</c> and the CLI read the stack
/// <see cref="BuildConfiguration"/> makes. Settings given in code come before all of them.
/// </summary>
public static class CeleriacSettings
{
    /// <summary>The configuration section of Celeriac's settings.</summary>
    public const string SectionName = "Celeriac";

    /// <summary>The sub-section of a worker's settings (<c>Celeriac:Worker</c>), beside their flat keys.</summary>
    public const string WorkerSectionName = "Worker";

    private static readonly string[] s_sections = ["TaskRoutes", "ResultBackendSettings", "BrokerUseSsl", "BeatSchedule", WorkerSectionName];

    /// <summary>
    /// The one table of setting names: each setting's key (under <c>Celeriac</c>, and under <c>Celeriac:Worker</c> for a
    /// worker's), its documented environment variable, whether it is the worker's, and how its text applies.
    /// </summary>
    private static readonly (string Key, string Env, bool Worker, Action<CeleriacOptions, string> Apply)[] s_settings =
    [
        ("BrokerUrl", "CELERIAC_BROKER_URL", false, static (o, v) => o.BrokerUrl = v),
        ("ResultBackend", "CELERIAC_RESULT_BACKEND", false, static (o, v) => o.ResultBackend = v),
        ("DefaultQueue", "CELERIAC_DEFAULT_QUEUE", false, static (o, v) => o.DefaultQueue = v),
        ("ResultExpires", "CELERIAC_RESULT_EXPIRES", false, static (o, v) => o.ResultExpires = v is "" or "none" or "null" ? null : Seconds("ResultExpires", v)),
        ("PrefetchMultiplier", "CELERIAC_PREFETCH_MULTIPLIER", true, static (o, v) => o.PrefetchMultiplier = Int("PrefetchMultiplier", v)),
        ("DisablePrefetch", "CELERIAC_DISABLE_PREFETCH", true, static (o, v) => o.DisablePrefetch = Bool("DisablePrefetch", v)),
        ("AcksLate", "CELERIAC_ACKS_LATE", true, static (o, v) => o.AcksLate = Bool("AcksLate", v)),
        ("TaskTimeLimit", "CELERIAC_TASK_TIME_LIMIT", true, static (o, v) => o.TaskTimeLimit = v is "" or "none" or "null" ? null : Seconds("TaskTimeLimit", v)),
        ("TaskSoftTimeLimit", "CELERIAC_TASK_SOFT_TIME_LIMIT", true, static (o, v) => o.TaskSoftTimeLimit = v is "" or "none" or "null" ? null : Seconds("TaskSoftTimeLimit", v)),
        ("AcksOnFailureOrTimeout", "CELERIAC_ACKS_ON_FAILURE_OR_TIMEOUT", true, static (o, v) => o.AcksOnFailureOrTimeout = Bool("AcksOnFailureOrTimeout", v)),
        ("RejectOnWorkerLost", "CELERIAC_REJECT_ON_WORKER_LOST", true, static (o, v) => o.RejectOnWorkerLost = Bool("RejectOnWorkerLost", v)),
        ("ColdShutdownGrace", "CELERIAC_COLD_SHUTDOWN_GRACE", true, static (o, v) => o.ColdShutdownGrace = Seconds("ColdShutdownGrace", v)),
        ("StateDb", "CELERIAC_STATEDB", true, static (o, v) => o.StateDb = v is "" ? null : v),
        ("Concurrency", "CELERIAC_CONCURRENCY", true, static (o, v) => o.Concurrency = Int("Concurrency", v)),
        ("Pool", "CELERIAC_POOL", true, static (o, v) => o.Pool = v),
        ("Autoscale", "CELERIAC_AUTOSCALE", true, static (o, v) => o.Autoscale = v is "" or "none" or "null" ? null : v),
        ("AutoscaleKeepAlive", "CELERIAC_AUTOSCALE_KEEPALIVE", true, static (o, v) => o.AutoscaleKeepAlive = Seconds("AutoscaleKeepAlive", v)),
        ("SoftShutdownTimeout", "CELERIAC_SOFT_SHUTDOWN_TIMEOUT", true, static (o, v) => o.SoftShutdownTimeout = Seconds("SoftShutdownTimeout", v)),
        ("MaxTasksPerChild", "CELERIAC_MAX_TASKS_PER_CHILD", true, static (o, v) => o.MaxTasksPerChild = v is "" or "none" or "null" ? null : Int("MaxTasksPerChild", v)),
        ("MaxMemoryPerChild", "CELERIAC_MAX_MEMORY_PER_CHILD", true, static (o, v) => o.MaxMemoryPerChild = v is "" or "none" or "null" ? null : Int("MaxMemoryPerChild", v)),
        ("TrackStarted", "CELERIAC_TRACK_STARTED", true, static (o, v) => o.TrackStarted = Bool("TrackStarted", v)),
        ("TaskEvents", "CELERIAC_TASK_EVENTS", true, static (o, v) => o.TaskEvents = Bool("TaskEvents", v)),
        ("WithoutHeartbeat", "CELERIAC_WITHOUT_HEARTBEAT", true, static (o, v) => o.WithoutHeartbeat = Bool("WithoutHeartbeat", v)),
        ("WithoutMingle", "CELERIAC_WITHOUT_MINGLE", true, static (o, v) => o.WithoutMingle = Bool("WithoutMingle", v)),
        ("Timezone", "CELERIAC_TIMEZONE", false, static (o, v) => o.Timezone = v),
        ("BeatScheduleUrl", "CELERIAC_BEAT_SCHEDULE", false, static (o, v) => o.BeatScheduleUrl = v is "" ? null : v),
        ("BeatMaxInterval", "CELERIAC_BEAT_MAX_INTERVAL", false, static (o, v) => o.BeatMaxInterval = Seconds("BeatMaxInterval", v)),
        ("BeatLeaseTime", "CELERIAC_BEAT_LEASE_TIME", false, static (o, v) => o.BeatLeaseTime = Seconds("BeatLeaseTime", v)),
        ("BeatMisfireGrace", "CELERIAC_BEAT_MISFIRE_GRACE", false, static (o, v) => o.BeatMisfireGrace = Seconds("BeatMisfireGrace", v)),
        ("HeartbeatInterval", "CELERIAC_HEARTBEAT_INTERVAL", true, static (o, v) => o.HeartbeatInterval = Seconds("HeartbeatInterval", v)),
        ("TaskSendSentEvent", "CELERIAC_TASK_SEND_SENT_EVENT", false, static (o, v) => o.TaskSendSentEvent = Bool("TaskSendSentEvent", v)),
        ("ResultExtended", "CELERIAC_RESULT_EXTENDED", false, static (o, v) => o.ResultExtended = Bool("ResultExtended", v)),
        ("VisibilityTimeout", "CELERIAC_VISIBILITY_TIMEOUT", false, static (o, v) => o.VisibilityTimeout = Seconds("VisibilityTimeout", v)),
        ("QueueMaxPriority", "CELERIAC_QUEUE_MAX_PRIORITY", false, static (o, v) => o.QueueMaxPriority = v is "" or "none" or "null" ? null : Int("QueueMaxPriority", v)),
        ("QueueType", "CELERIAC_QUEUE_TYPE", false, static (o, v) => o.QueueType = v),
        ("Queues", "CELERIAC_QUEUES", true, static (o, v) => SetQueues(o, v)),
        ("NodeName", "CELERIAC_HOSTNAME", true, static (o, v) => o.NodeName = v),
        ("SecurityKey", "CELERIAC_SECURITY_KEY", false, static (o, v) => o.Security.Key = v is "" ? null : v),
        ("SecurityKeyPassword", "CELERIAC_SECURITY_KEY_PASSWORD", false, static (o, v) => o.Security.KeyPassword = v is "" ? null : v),
        ("SecurityCertificate", "CELERIAC_SECURITY_CERTIFICATE", false, static (o, v) => o.Security.Certificate = v is "" ? null : v),
        ("SecurityCertStore", "CELERIAC_SECURITY_CERT_STORE", false, static (o, v) => o.Security.CertStore = v is "" ? null : v),
        ("SecurityDigest", "CELERIAC_SECURITY_DIGEST", false, static (o, v) => o.Security.Digest = v),
        ("TaskAlwaysEager", "CELERIAC_TASK_ALWAYS_EAGER", false, static (o, v) => o.TaskAlwaysEager = Bool("TaskAlwaysEager", v)),
        ("TaskEagerPropagates", "CELERIAC_TASK_EAGER_PROPAGATES", false, static (o, v) => o.TaskEagerPropagates = Bool("TaskEagerPropagates", v)),
        ("BrokerConnectTimeout", "CELERIAC_BROKER_CONNECT_TIMEOUT", false, static (o, v) => o.BrokerConnectTimeout = Seconds("BrokerConnectTimeout", v)),
    ];


    /// <summary>The environment variable of each setting, for documentation and help text.</summary>
    public static IEnumerable<(string Setting, string Variable)> Variables => s_settings.Select(s => (s.Key, s.Env));

    /// <summary>The settings that are the worker's (those <see cref="CeleriacWorkerOptions"/> holds).</summary>
    public static IEnumerable<string> WorkerSettings => s_settings.Where(s => s.Worker).Select(s => s.Key);

    /// <summary>
    /// The configuration Celeriac reads outside a host, lowest first: <paramref name="appSettingsPath"/> (if it exists),
    /// the environment (<paramref name="environment"/>, else the process's), the command line
    /// (<c>--Celeriac:Concurrency=4</c>). Throws <see cref="CeleriacConfigurationException"/> for a file that is not JSON.
    /// </summary>
    public static IConfiguration BuildConfiguration(string? appSettingsPath = "appsettings.json", string[]? args = null, Func<string, string?>? environment = null)
    {
        var builder = new ConfigurationBuilder();
        if (appSettingsPath is not null && File.Exists(appSettingsPath))
        {
            builder.AddJsonFile(Path.GetFullPath(appSettingsPath), optional: true, reloadOnChange: false);
        }

        if (environment is null)
        {
            builder.AddEnvironmentVariables();
        }
        else
        {
            builder.Add(new DocumentedVariablesSource(environment));
        }

        if (args is { Length: > 0 })
        {
            builder.AddCommandLine(args);
        }

        return Build(builder, appSettingsPath ?? "appsettings.json");
    }

    /// <summary>
    /// Applies the settings <paramref name="configuration"/> holds onto <paramref name="options"/>: each setting from the
    /// last configuration source that has it under any of its names (<c>Celeriac:Worker:X</c>, <c>Celeriac:X</c>,
    /// <c>CELERIAC_X</c>). Throws <see cref="CeleriacConfigurationException"/> naming the key and the value for a bad
    /// value, and for an unknown key under <c>Celeriac</c>.
    /// </summary>
    public static void Bind(CeleriacOptions options, IConfiguration configuration) => Bind(options, configuration, fallback: null);

    /// <summary>Applies <c>appsettings.json</c> (if the file exists) and then the environment.</summary>
    public static void Apply(CeleriacOptions options, string? appSettingsPath = "appsettings.json", Func<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        Bind(options, BuildConfiguration(appSettingsPath, null, environment));
    }

    /// <summary>Applies the <c>Celeriac</c> object of an <c>appsettings.json</c> document.</summary>
    public static void ApplyJson(CeleriacOptions options, ReadOnlySpan<byte> json, string source = "appsettings.json")
    {
        ArgumentNullException.ThrowIfNull(options);
        var builder = new ConfigurationBuilder().AddJsonStream(new MemoryStream(json.ToArray()));
        Bind(options, Build(builder, source));
    }

    /// <summary>Applies one setting by its name (<c>BrokerUrl</c>, <c>Concurrency</c>, ...), case-insensitive.</summary>
    public static void ApplySetting(CeleriacOptions options, string name, string value, string source = "configuration")
    {
        ArgumentNullException.ThrowIfNull(options);
        var setting = s_settings.FirstOrDefault(s => string.Equals(s.Key, name, StringComparison.OrdinalIgnoreCase));
        if (setting.Apply is null)
        {
            throw new CeleriacConfigurationException($"{source}: unknown setting Celeriac:{name} (known: {string.Join(", ", s_settings.Select(s => s.Key))}, {string.Join(", ", s_sections)}).");
        }

        setting.Apply(options, value);
    }

    /// <summary>Applies the <c>CELERIAC_*</c> environment variables that are set.</summary>
    public static void ApplyEnvironment(CeleriacOptions options, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(environment);
        Bind(options, new ConfigurationBuilder().Add(new DocumentedVariablesSource(environment)).Build());
    }

    /// <summary>
    /// <see cref="Bind(CeleriacOptions, IConfiguration)"/> with the process's documented variables that
    /// <paramref name="configuration"/> lacks (a configuration built without the environment) applied last, as they
    /// were before configuration came through the host.
    /// </summary>
    internal static void BindWithEnvironment(CeleriacOptions options, IConfiguration configuration) =>
        Bind(options, configuration, new DocumentedVariablesSource(name => configuration[name] is null ? Environment.GetEnvironmentVariable(name) : null).BuildProvider());

    private static void Bind(CeleriacOptions options, IConfiguration configuration, IConfigurationProvider? fallback)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(configuration);
        IConfigurationSection section = configuration.GetSection(SectionName);
        CheckKeys(section);
        foreach ((string name, string env, bool worker, Action<CeleriacOptions, string> apply) in s_settings)
        {
            string[] keys = worker
                ? [$"{SectionName}:{WorkerSectionName}:{name}", $"{SectionName}:{name}", env]
                : [$"{SectionName}:{name}", env];
            if (Resolve(configuration, fallback, keys) is not var (key, value))
            {
                continue;
            }

            try
            {
                apply(options, value);
            }
            catch (CeleriacConfigurationException ex)
            {
                throw new CeleriacConfigurationException($"{key}: {ex.Message}", ex);
            }
        }

        foreach (IConfigurationSection route in section.GetSection("TaskRoutes").GetChildren())
        {
            options.TaskRoutes[route.Key] = route.Value ?? "";
        }

        foreach (IConfigurationSection setting in section.GetSection("ResultBackendSettings").GetChildren())
        {
            options.ResultBackendSettings[setting.Key] = setting.Value ?? ConfigurationJson.ToJson(setting).GetRawText();
        }

        foreach (IConfigurationSection setting in section.GetSection("BrokerUseSsl").GetChildren())
        {
            options.BrokerUseSsl[setting.Key] = setting.Value ?? "";
        }

        // Kept as written: beat reads each entry (and names the bad ones) when it starts.
        foreach (IConfigurationSection entry in section.GetSection("BeatSchedule").GetChildren())
        {
            options.BeatSchedule[entry.Key] = ConfigurationJson.ToJson(entry);
        }
    }

    private static void CheckKeys(IConfigurationSection section)
    {
        foreach (IConfigurationSection child in section.GetChildren())
        {
            if (string.Equals(child.Key, WorkerSectionName, StringComparison.OrdinalIgnoreCase))
            {
                foreach (IConfigurationSection w in child.GetChildren())
                {
                    if (!s_settings.Any(s => s.Worker && string.Equals(s.Key, w.Key, StringComparison.OrdinalIgnoreCase)))
                    {
                        throw new CeleriacConfigurationException($"configuration: unknown setting {w.Path} (a worker's: {string.Join(", ", WorkerSettings)}).");
                    }
                }
            }
            else if (!s_sections.Contains(child.Key, StringComparer.OrdinalIgnoreCase)
                && !s_settings.Any(s => string.Equals(s.Key, child.Key, StringComparison.OrdinalIgnoreCase)))
            {
                throw new CeleriacConfigurationException($"configuration: unknown setting {child.Path} (known: {string.Join(", ", s_settings.Select(s => s.Key))}, {string.Join(", ", s_sections)}).");
            }
        }
    }

    /// <summary>The value of the last source (the fallback last of all) that has any of <paramref name="keys"/>, and which key.</summary>
    private static (string Key, string Value)? Resolve(IConfiguration configuration, IConfigurationProvider? fallback, string[] keys)
    {
        IEnumerable<IConfigurationProvider> providers = configuration is IConfigurationRoot root ? root.Providers : [];
        if (fallback is not null)
        {
            providers = providers.Append(fallback);
        }

        foreach (IConfigurationProvider provider in providers.Reverse())
        {
            foreach (string key in keys)
            {
                if (provider.TryGet(key, out string? value))
                {
                    return (key, value ?? "");
                }

                // A list (Queues: ["a", "b"]) is keys 0..n below its name.
                string[] items = [.. provider.GetChildKeys([], key).Distinct(StringComparer.OrdinalIgnoreCase)];
                if (items.Length > 0)
                {
                    IEnumerable<string> ordered = items.OrderBy(i => int.TryParse(i, NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : int.MaxValue);
                    return (key, string.Join(',', ordered.Select(i => provider.TryGet($"{key}:{i}", out string? v) ? v : null).Where(v => v is not null)));
                }
            }
        }

        if (configuration is IConfigurationRoot)
        {
            return null;
        }

        // Not a root (a section, a hand-made IConfiguration): no sources to order, so the environment's name, usually
        // the later source, wins.
        foreach (string key in keys.Reverse())
        {
            IConfigurationSection s = configuration.GetSection(key);
            if (s.Value is { } v)
            {
                return (key, v);
            }

            if (s.GetChildren().Any())
            {
                return (key, string.Join(',', s.GetChildren().Select(c => c.Value)));
            }
        }

        return null;
    }

    private static IConfiguration Build(IConfigurationBuilder builder, string source)
    {
        try
        {
            return builder.Build();
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException)
        {
            Exception inner = ex;
            while (inner.InnerException is not null)
            {
                inner = inner.InnerException;
            }

            throw new CeleriacConfigurationException($"{source} is not valid JSON: {inner.Message}", ex);
        }
    }

    /// <summary>The documented <c>CELERIAC_*</c> variables that a function (an environment) has.</summary>
    private sealed class DocumentedVariablesSource(Func<string, string?> environment) : IConfigurationSource
    {
        public IConfigurationProvider Build(IConfigurationBuilder builder) => BuildProvider();

        public IConfigurationProvider BuildProvider()
        {
            var provider = new Provider(environment);
            provider.Load();
            return provider;
        }

        private sealed class Provider(Func<string, string?> environment) : ConfigurationProvider
        {
            public override void Load()
            {
                foreach ((string _, string env, bool _, Action<CeleriacOptions, string> _) in s_settings)
                {
                    if (environment(env) is { } value)
                    {
                        Data[env] = value;
                    }
                }
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
