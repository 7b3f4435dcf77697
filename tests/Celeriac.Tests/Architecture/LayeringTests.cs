using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace Celeriac.Tests.Architecture;

/// <summary>
/// The core's folders depend on each other in one direction only (docs: DESIGN.md, "Layout"), and
/// providers depend on the core, never on each other. Read from the compiled assemblies, so that every
/// use counts: signatures, attributes and IL bodies alike.
/// </summary>
public sealed class LayeringTests(ITestOutputHelper output)
{
    /// <summary>
    /// Which folders each folder of src/Celeriac may use, bottom up as DESIGN.md orders them. Diagnostics (the
    /// internal Log classes) is a leaf every folder may use; a folder that is not listed may use nothing else.
    /// Concurrency is a leaf too, so the layers on Protocol may also use its primitives (AsyncPulse wakes
    /// both transports' consumers and result waiters). Canvas may read Results (group and chord results).
    /// </summary>
    internal static readonly IReadOnlyDictionary<string, string[]> Allowed = WithDiagnostics(new Dictionary<string, string[]>
    {
        ["Diagnostics"] = [],
        ["Protocol"] = [],
        ["Concurrency"] = [],
        ["Transport"] = ["Protocol", "Concurrency"],
        ["Results"] = ["Protocol", "Concurrency"],
        ["Canvas"] = ["Protocol", "Concurrency", "Results"],
        ["App"] = ["Protocol", "Concurrency", "Transport", "Results", "Canvas"],
        ["Events"] = ["App", "Protocol", "Concurrency", "Transport", "Results", "Canvas"],
        ["Control"] = ["Events", "App", "Protocol", "Concurrency", "Transport", "Results", "Canvas"],
        ["Beat"] = ["App", "Protocol", "Concurrency", "Transport", "Results", "Canvas"],
        ["Worker"] = ["Control", "Events", "App", "Protocol", "Concurrency", "Transport", "Results", "Canvas"],
        ["Hosting"] = ["Worker", "Beat", "Control", "Events", "App", "Protocol", "Concurrency", "Transport", "Results", "Canvas"],
    });

    private static readonly string s_directory = Path.GetDirectoryName(typeof(CeleriacApp).Assembly.Location)!;

    private static Dictionary<string, string[]> WithDiagnostics(Dictionary<string, string[]> table)
    {
        foreach (string folder in table.Keys.Where(f => f != "Diagnostics").ToList())
        {
            table[folder] = [.. table[folder], "Diagnostics"];
        }

        return table;
    }

    [Fact]
    public void CoreFolders_NoCycleAndNoEdgeAgainstTheOrder()
    {
        SourceFolderMap.Result result = SourceFolderMap.Build(typeof(CeleriacApp).Assembly.Location);
        foreach (string from in result.Graph.Folders)
        {
            output.WriteLine($"{from} -> {string.Join(", ", result.Graph.Targets(from))}");
        }

        Assert.Empty(result.Problems);
        // The map must see the folders, or an empty graph would pass.
        Assert.Contains("App", result.FolderOfType.Values);
        Assert.Equal("Worker", result.FolderOfType["Celeriac.Worker.CeleriacWorker"]);
        Assert.Equal("App", result.FolderOfType["Celeriac.CeleriacApp"]);

        string failures = result.Graph.Describe(Allowed);
        Assert.True(failures.Length == 0, "The core's folders break the layering (DESIGN.md, \"Layout\"):\n" + failures);
    }

    [Fact]
    public void Providers_NeverReferenceEachOther()
    {
        Dictionary<string, string[]> providers = Directory.GetFiles(s_directory, "Celeriac.*.dll")
            .Select(path => Read(path))
            .Where(a => a.IsProvider)
            .ToDictionary(a => a.Name, a => a.References, StringComparer.Ordinal);

        Assert.Superset(new HashSet<string>(["Celeriac.Sqlite", "Celeriac.Redis", "Celeriac.RabbitMQ"]), providers.Keys.ToHashSet());
        string[] crossings = [.. providers.SelectMany(p => p.Value.Where(providers.ContainsKey).Select(r => $"{p.Key} references {r}"))];
        Assert.True(crossings.Length == 0, "Providers must depend on the core only: " + string.Join("; ", crossings));
    }

    [Fact]
    public void Core_GrantsNoProviderItsInternals()
    {
        string[] providers = [.. Directory.GetFiles(s_directory, "Celeriac.*.dll").Select(path => Read(path)).Where(a => a.IsProvider).Select(a => a.Name)];
        string[] friends = [.. typeof(CeleriacApp).Assembly.GetCustomAttributes(typeof(System.Runtime.CompilerServices.InternalsVisibleToAttribute), false)
            .Cast<System.Runtime.CompilerServices.InternalsVisibleToAttribute>()
            .Select(a => a.AssemblyName)];

        Assert.NotEmpty(providers);
        Assert.Empty(friends.Intersect(providers, StringComparer.Ordinal));
    }

    /// <summary>An assembly's name, the assemblies it references, and whether it declares a [CeleriacProvider].</summary>
    private static (string Name, string[] References, bool IsProvider) Read(string path)
    {
        using var pe = new PEReader(File.OpenRead(path));
        MetadataReader md = pe.GetMetadataReader();
        string[] references = [.. md.AssemblyReferences.Select(r => md.GetString(md.GetAssemblyReference(r).Name))];
        bool isProvider = md.GetAssemblyDefinition().GetCustomAttributes()
            .Select(a => md.GetCustomAttribute(a).Constructor)
            .Where(c => c.Kind == HandleKind.MemberReference)
            .Select(c => md.GetMemberReference((MemberReferenceHandle)c).Parent)
            .Where(p => p.Kind == HandleKind.TypeReference)
            .Any(p => md.GetString(md.GetTypeReference((TypeReferenceHandle)p).Name) == nameof(CeleriacProviderAttribute));
        return (md.GetString(md.GetAssemblyDefinition().Name), references, isProvider);
    }
}
