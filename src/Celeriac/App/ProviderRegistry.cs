using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using Celeriac.Results;
using Celeriac.Transport;

namespace Celeriac;

/// <summary>
/// Maps URL schemes to transports and result backends, as Celery's aliases map them to modules.
/// Providers in other packages (<c>Celeriac.Sqlite</c>, <c>Celeriac.Redis</c>, ...) are found when their
/// assembly is referenced: the registry loads it by name on first use of its scheme.
/// </summary>
public sealed class ProviderRegistry
{
    // Only what the core needs to load a referenced provider by name and to say which package to add; what a
    // scheme means (its factories, its default result backend) comes from the provider's own registration.
    // Concurrent only so that a test may add a made-up scheme while others read.
    internal static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> s_knownAssemblies = new(new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["sqlite"] = "Celeriac.Sqlite",
        ["redis"] = "Celeriac.Redis",
        ["rediss"] = "Celeriac.Redis",
        ["redis+socket"] = "Celeriac.Redis",
        ["amqp"] = "Celeriac.RabbitMQ",
        ["amqps"] = "Celeriac.RabbitMQ",
        ["rpc"] = "Celeriac.RabbitMQ",
        ["postgresql"] = "Celeriac.PostgreSql",
        ["postgres"] = "Celeriac.PostgreSql",
        ["db+postgresql"] = "Celeriac.Database",
        ["db+postgresql+psycopg2"] = "Celeriac.Database",
        ["db+postgres"] = "Celeriac.Database",
        ["db+mysql"] = "Celeriac.Database",
        ["db+mysql+pymysql"] = "Celeriac.Database",
        ["db+mariadb"] = "Celeriac.Database",
        ["db+mariadb+pymysql"] = "Celeriac.Database",
        ["db+sqlite"] = "Celeriac.Database",
        ["cache+memcached"] = "Celeriac.Memcached",
        ["cache+pylibmc"] = "Celeriac.Memcached",
        ["s3"] = "Celeriac.Aws",
        ["dynamodb"] = "Celeriac.Aws",
        ["azureblockblob"] = "Celeriac.Azure",
    }, StringComparer.OrdinalIgnoreCase);

    private readonly Dictionary<string, Func<TransportOptions, ITransport>> _transports = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, Func<ResultBackendOptions, IResultBackend>> _backends = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, string> _defaultBackends = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<(Type Service, string Scheme), Func<Uri, CeleriacApp, object>> _extensions = [];
    private readonly HashSet<string> _loaded = new(StringComparer.OrdinalIgnoreCase);
    private readonly Lock _gate = new();

    /// <summary>Creates a registry that knows <c>memory://</c> and <c>file://</c>.</summary>
    public ProviderRegistry()
    {
        _transports["memory"] = static o => new MemoryTransport(o.Url);
        _backends["memory"] = static o => new MemoryResultBackend(o);
        _backends["file"] = static o => new FileSystemResultBackend(o);
    }

    /// <summary>
    /// Registers a transport for a URL scheme. When the app configures no result backend, results go to the broker's
    /// own store if this scheme also has a result backend (<see cref="AddResultBackend"/>), else they are disabled.
    /// </summary>
    public void AddTransport(string scheme, Func<TransportOptions, ITransport> factory)
    {
        lock (_gate)
        {
            _transports[scheme] = factory;
            _defaultBackends.Remove(scheme);
        }
    }

    /// <summary>
    /// Registers a transport for a URL scheme, with the result backend URL an app on this broker uses when it
    /// configures none (as Celery's users expect <c>rpc://</c> on <c>amqp://</c>). <c>{broker}</c> in it stands for
    /// the broker's URL: <c>db+{broker}</c> keeps a PostgreSQL broker's results in Celery's tables on the same database.
    /// </summary>
    public void AddTransport(string scheme, Func<TransportOptions, ITransport> factory, string defaultResultBackend)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(defaultResultBackend);
        lock (_gate)
        {
            _transports[scheme] = factory;
            _defaultBackends[scheme] = defaultResultBackend;
        }
    }

    /// <summary>Registers a result backend for a URL scheme.</summary>
    public void AddResultBackend(string scheme, Func<ResultBackendOptions, IResultBackend> factory)
    {
        lock (_gate)
        {
            _backends[scheme] = factory;
        }
    }

    /// <summary>
    /// Registers a package's schemes explicitly (what <c>UseRedis(...)</c>-style builder calls do): its assembly is then
    /// never looked up by name, which trimmed and NativeAOT apps need.
    /// </summary>
    public void Add(ICeleriacProvider provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        provider.Register(this);
        if (provider.GetType().Assembly.GetName().Name is { } name)
        {
            lock (_gate)
            {
                _loaded.Add(name);
            }
        }
    }

    /// <summary>Creates the transport for a broker URL; throws <see cref="CeleriacConfigurationException"/> with a clear reason.</summary>
    public ITransport CreateTransport(TransportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Find(_transports, options.Url, "broker")(options);
    }

    /// <summary>Creates the result backend for a URL; throws <see cref="CeleriacConfigurationException"/> with a clear reason.</summary>
    public IResultBackend CreateResultBackend(ResultBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Find(_backends, options.Url, "result backend")(options);
    }

    /// <summary>
    /// Registers another kind of store for a URL scheme (a beat schedule store, ...): parts above the app's core find
    /// theirs by service type and scheme, as transports are found.
    /// </summary>
    public void AddExtension<TService>(string scheme, Func<Uri, CeleriacApp, TService> factory)
        where TService : class
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(scheme);
        ArgumentNullException.ThrowIfNull(factory);
        lock (_gate)
        {
            _extensions[(typeof(TService), scheme.ToUpperInvariant())] = (url, app) => factory(url, app);
        }
    }

    /// <summary>Creates a store registered with <see cref="AddExtension"/> for the URL's scheme (loading its package if referenced), or <see langword="null"/>.</summary>
    public TService? CreateExtension<TService>(Uri url, CeleriacApp app)
        where TService : class
    {
        ArgumentNullException.ThrowIfNull(url);
        (Type, string) key = (typeof(TService), url.Scheme.ToUpperInvariant());
        Func<Uri, CeleriacApp, object>? factory;
        lock (_gate)
        {
            _extensions.TryGetValue(key, out factory);
        }

        if (factory is null && s_knownAssemblies.TryGetValue(url.Scheme, out string? assembly) && TryLoad(assembly))
        {
            lock (_gate)
            {
                _extensions.TryGetValue(key, out factory);
            }
        }

        return (TService?)factory?.Invoke(url, app);
    }

    /// <summary>Whether a scheme has a transport (loading its package if referenced).</summary>
    public bool HasTransport(string scheme) => TryFind(_transports, scheme, out _);

    /// <summary>Whether a scheme has a result backend (loading its package if referenced).</summary>
    public bool HasResultBackend(string scheme) => TryFind(_backends, scheme, out _);

    /// <summary>
    /// The result backend URL that the transport of <paramref name="scheme"/> was registered with as its default
    /// (loading its package if referenced), or <see langword="null"/> when it named none.
    /// </summary>
    public string? DefaultResultBackend(string scheme)
    {
        if (!TryFind(_transports, scheme, out _))
        {
            return null;
        }

        lock (_gate)
        {
            return _defaultBackends.GetValueOrDefault(scheme);
        }
    }

    private Func<TOptions, T> Find<TOptions, T>(Dictionary<string, Func<TOptions, T>> map, Uri url, string what)
    {
        string scheme = url.Scheme;
        if (TryFind(map, scheme, out Func<TOptions, T>? factory))
        {
            return factory;
        }

        if (s_knownAssemblies.TryGetValue(scheme, out string? assembly) && !TryLoad(assembly))
        {
            throw new CeleriacConfigurationException($"The {what} URL scheme '{scheme}://' needs the {assembly} package: add a reference to it.");
        }

        throw new CeleriacConfigurationException(UnknownSchemeMessage(map, url, what));
    }

    // Which of the packages' schemes are brokers (the rest are result backends only), so that a broker's error lists
    // only what could stand in its place.
    private static readonly HashSet<string> s_brokerSchemes = new(StringComparer.OrdinalIgnoreCase)
    {
        "sqlite", "redis", "rediss", "redis+socket", "amqp", "amqps", "postgresql", "postgres",
    };

    // The brokers that are not result backends, and what to write in a result backend's place: a PostgreSQL broker
    // keeps results in its database through Celery's database backend, and an AMQP broker through rpc://.
    private static readonly Dictionary<string, string> s_resultBackendOfBroker = new(StringComparer.OrdinalIgnoreCase)
    {
        ["amqp"] = "'rpc://' (results sent back through the AMQP broker)",
        ["amqps"] = "'rpc://' (results sent back through the AMQP broker)",
        ["postgresql"] = "'db+postgresql://' with the same address (Celery's database backend)",
        ["postgres"] = "'db+postgresql://' with the same address (Celery's database backend)",
    };

    /// <summary>
    /// The error for a scheme nobody knows: every scheme that could stand there, grouped by the package that brings it,
    /// and the nearest of them when the scheme is a typo of one (at most two edits: <c>sqllite</c>, <c>reddis</c>).
    /// </summary>
    private string UnknownSchemeMessage<TOptions, T>(Dictionary<string, Func<TOptions, T>> map, Uri url, string what)
    {
        string scheme = url.Scheme;
        bool broker = what == "broker";
        var byPackage = new SortedDictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        void Add(string package, string name) =>
            (byPackage.TryGetValue(package, out SortedSet<string>? set) ? set : byPackage[package] = new SortedSet<string>(StringComparer.Ordinal)).Add(name.ToLowerInvariant());

        lock (_gate)
        {
            foreach (string key in map.Keys)
            {
                Add(s_knownAssemblies.FirstOrDefault(kv => string.Equals(kv.Key, key, StringComparison.OrdinalIgnoreCase)).Value ?? "Celeriac", key);
            }
        }

        foreach (KeyValuePair<string, string> kv in s_knownAssemblies)
        {
            if (broker ? s_brokerSchemes.Contains(kv.Key) : !s_resultBackendOfBroker.ContainsKey(kv.Key))
            {
                Add(kv.Value, kv.Key);
            }
        }

        // The core first: it needs no package.
        IEnumerable<KeyValuePair<string, SortedSet<string>>> ordered = byPackage.OrderBy(kv => kv.Key == "Celeriac" ? 0 : 1).ThenBy(kv => kv.Key, StringComparer.Ordinal);
        string known = string.Join("; ", ordered.Select(kv => string.Join(", ", kv.Value.Select(k => k + "://")) + (kv.Key == "Celeriac" ? " (built in)" : $" ({kv.Key})")));
        string[] near = NearestSchemes(scheme, byPackage.Values.SelectMany(v => v));
        string hint = !broker && s_resultBackendOfBroker.TryGetValue(scheme, out string? instead)
            ? $" '{scheme}://' is a broker's scheme, not a result backend's: use {instead}, or set no result backend to keep results where that broker keeps them."
            : near.Length == 0 ? "" : $" Did you mean {string.Join(" or ", near.Select(n => $"'{n}://'"))}?";
        return $"Unknown {what} URL scheme '{scheme}://' in '{UrlText.Mask(url)}'.{hint} Known schemes: {known}.";
    }

    /// <summary>The known schemes nearest to <paramref name="scheme"/>, at most two edits away.</summary>
    internal static string[] NearestSchemes(string scheme, IEnumerable<string> known)
    {
        string lower = scheme.ToLowerInvariant();
        (string Name, int Distance)[] scored = [.. known.Distinct(StringComparer.Ordinal).Select(k => (k, EditDistance(lower, k))).Where(x => x.Item2 <= 2)];
        if (scored.Length == 0)
        {
            return [];
        }

        int best = scored.Min(x => x.Distance);
        return [.. scored.Where(x => x.Distance == best).Select(x => x.Name).Order(StringComparer.Ordinal)];
    }

    /// <summary>Levenshtein distance (schemes are short: the quadratic table costs nothing).</summary>
    private static int EditDistance(string a, string b)
    {
        int[] previous = new int[b.Length + 1];
        int[] current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }

    private bool TryFind<TOptions, T>(Dictionary<string, Func<TOptions, T>> map, string scheme, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Func<TOptions, T>? factory)
    {
        lock (_gate)
        {
            if (map.TryGetValue(scheme, out factory))
            {
                return true;
            }
        }

        if (s_knownAssemblies.TryGetValue(scheme, out string? assembly) && TryLoad(assembly))
        {
            lock (_gate)
            {
                return map.TryGetValue(scheme, out factory);
            }
        }

        factory = null;
        return false;
    }

    private bool TryLoad(string assemblyName)
    {
        lock (_gate)
        {
            if (_loaded.Contains(assemblyName))
            {
                return true;
            }
        }

        Assembly assembly;
        try
        {
            assembly = Assembly.Load(assemblyName);
        }
        catch (FileNotFoundException)
        {
            return false;
        }

        foreach (CeleriacProviderAttribute attribute in assembly.GetCustomAttributes<CeleriacProviderAttribute>())
        {
            var provider = (ICeleriacProvider)Activator.CreateInstance(attribute.ProviderType)!;
            provider.Register(this);
        }

        lock (_gate)
        {
            _loaded.Add(assemblyName);
        }

        return true;
    }
}

/// <summary>A package's hook that registers its transports and backends with a <see cref="ProviderRegistry"/>.</summary>
public interface ICeleriacProvider
{
    /// <summary>Registers the package's URL schemes.</summary>
    void Register(ProviderRegistry registry);
}

/// <summary>Names the <see cref="ICeleriacProvider"/> of an assembly, so the registry finds it by scheme.</summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
public sealed class CeleriacProviderAttribute([DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] Type providerType) : Attribute
{
    /// <summary>The provider type (a public class with a parameterless constructor).</summary>
    [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)]
    public Type ProviderType { get; } = providerType;
}

/// <summary>Thrown for a configuration that cannot work: a bad URL, an unknown scheme, a missing package.</summary>
public sealed class CeleriacConfigurationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CeleriacConfigurationException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public CeleriacConfigurationException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public CeleriacConfigurationException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
