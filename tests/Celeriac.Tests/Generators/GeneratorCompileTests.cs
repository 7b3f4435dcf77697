using System.Collections.Immutable;
using Celeriac.Generators;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Celeriac.Tests.Generators;

/// <summary>The generator run by Roslyn on snippets, as a user's build runs it: what the compiler then says.</summary>
public sealed class GeneratorCompileTests
{
    private const string Tasks = """
        using Celeriac;
        namespace Shop;
        public static class Tasks
        {
            [CeleriacTask("tasks.add")]
            public static int Add(int x, int y) => x + y;

            [CeleriacTask("tasks.greet")]
            public static System.Threading.Tasks.Task<string> GreetAsync(string name, int times = 1) => System.Threading.Tasks.Task.FromResult(name);
        }
        """;

    private static readonly Lazy<ImmutableArray<MetadataReference>> s_references = new(() =>
    [
        .. ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => p.Length > 0)
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)),
    ]);

    private static (ImmutableArray<Diagnostic> Generator, ImmutableArray<Diagnostic> Compiler, string Generated) Compile(params string[] sources)
    {
        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        CSharpCompilation compilation = CSharpCompilation.Create(
            "Shop",
            sources.Select(s => CSharpSyntaxTree.ParseText(s, parse)),
            s_references.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        GeneratorDriver driver = CSharpGeneratorDriver.Create([new TaskGenerator().AsSourceGenerator()], parseOptions: parse);
        driver = driver.RunGeneratorsAndUpdateCompilation(compilation, out Compilation output, out ImmutableArray<Diagnostic> generatorDiagnostics);
        GeneratorDriverRunResult run = driver.GetRunResult();
        string generated = string.Concat(run.GeneratedTrees.Select(t => t.GetText().ToString()));
        return (generatorDiagnostics, output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToImmutableArray(), generated);
    }

    [Fact]
    public void TypedCall_RightArguments_Compiles()
    {
        (ImmutableArray<Diagnostic> gen, ImmutableArray<Diagnostic> compiler, string generated) = Compile(Tasks, """
            using System.Threading;
            using System.Threading.Tasks;
            using Celeriac;
            namespace Shop;
            public static class Producer
            {
                public static async Task<int> RunAsync(ICeleriacClient client, CancellationToken ct)
                {
                    var tasks = new CeleriacTasks(client);
                    AsyncResult<int> sum = await tasks.Add.DelayAsync(2, 3, ct);
                    AsyncResult<string> hi = await tasks.Greet.ApplyAsync("ann", times: 2, options: new ApplyOptions { Queue = "q" }, ct: ct);
                    Signature s = tasks.Add.S(1, 2);
                    return (await sum.GetAsync(null, ct)) + (hi.Id.Length) + s.Args.Count;
                }
            }
            """);

        Assert.Empty(gen);
        Assert.Empty(compiler);
        Assert.Contains("class CeleriacTasks", generated, StringComparison.Ordinal);
    }

    [Fact]
    public void TypedCall_WrongArgumentType_IsCompileErrorCS1503()
    {
        (_, ImmutableArray<Diagnostic> compiler, _) = Compile(Tasks, """
            using System.Threading;
            using System.Threading.Tasks;
            using Celeriac;
            namespace Shop;
            public static class Producer
            {
                public static Task RunAsync(ICeleriacClient client, CancellationToken ct) =>
                    new CeleriacTasks(client).Add.DelayAsync("two", 3, ct);
            }
            """);

        Diagnostic error = Assert.Single(compiler);
        Assert.Equal("CS1503", error.Id);
        Assert.Contains("string", error.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        Assert.Contains("int", error.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
    }

    [Fact]
    public void TypedCall_MissingArgument_IsCompileError()
    {
        (_, ImmutableArray<Diagnostic> compiler, _) = Compile(Tasks, """
            using Celeriac;
            namespace Shop;
            public static class Producer
            {
                public static object Run(ICeleriacClient client) => new CeleriacTasks(client).Add.DelayAsync(2);
            }
            """);

        Assert.Contains(compiler, d => d.Id == "CS7036");
    }

    [Fact]
    public void GenericTask_IsGeneratorError()
    {
        (ImmutableArray<Diagnostic> gen, _, _) = Compile("""
            using Celeriac;
            public static class T
            {
                [CeleriacTask("t.generic")]
                public static T1 Echo<T1>(T1 value) => value;
            }
            """);

        Diagnostic d = Assert.Single(gen);
        Assert.Equal("CELERIAC002", d.Id);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Contains("t.generic", d.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
    }

    [Fact]
    public void RefParameter_IsGeneratorError()
    {
        (ImmutableArray<Diagnostic> gen, _, _) = Compile("""
            using Celeriac;
            public static class T
            {
                [CeleriacTask("t.ref")]
                public static void Bump(ref int value) => value++;
            }
            """);

        Diagnostic d = Assert.Single(gen);
        Assert.Equal("CELERIAC002", d.Id);
        Assert.Contains("'value' is passed by reference", d.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
    }

    [Fact]
    public void TaskClassWithoutRun_IsGeneratorError()
    {
        (ImmutableArray<Diagnostic> gen, _, _) = Compile("""
            using Celeriac;
            [CeleriacTask("t.norun")]
            public sealed class NoRun { public int Go() => 1; }
            """);

        Diagnostic d = Assert.Single(gen);
        Assert.Equal("CELERIAC003", d.Id);
    }

    [Fact]
    public void DuplicateName_IsGeneratorError()
    {
        (ImmutableArray<Diagnostic> gen, _, _) = Compile("""
            using Celeriac;
            public static class T
            {
                [CeleriacTask("t.same")] public static int A() => 1;
                [CeleriacTask("t.same")] public static int B() => 2;
            }
            """);

        Diagnostic d = Assert.Single(gen);
        Assert.Equal("CELERIAC004", d.Id);
    }

    [Fact]
    public void PrivateTask_IsInfo_LeftToReflection()
    {
        (ImmutableArray<Diagnostic> gen, ImmutableArray<Diagnostic> compiler, string generated) = Compile("""
            using Celeriac;
            public static class T
            {
                [CeleriacTask("t.private")] private static int Hidden() => 1;
                [CeleriacTask("t.public")] public static int Shown() => 2;
            }
            """);

        Diagnostic d = Assert.Single(gen);
        Assert.Equal("CELERIAC001", d.Id);
        Assert.Equal(DiagnosticSeverity.Info, d.Severity);
        Assert.Empty(compiler);
        Assert.Contains("\"t.public\" }, false, AddTo)", generated, StringComparison.Ordinal);
    }
}
