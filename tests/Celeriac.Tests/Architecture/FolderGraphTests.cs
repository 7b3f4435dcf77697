namespace Celeriac.Tests.Architecture;

/// <summary>The failing paths of the layering check, on made-up graphs (the real one should never fail).</summary>
public sealed class FolderGraphTests
{
    [Fact]
    public void Describe_Cycle_NamesTheFoldersAndTheTypesOfEachEdge()
    {
        var graph = new FolderGraph();
        graph.Add("Protocol", "Transport", "Celeriac.Protocol.KombuEnvelope", "Celeriac.Transport.TransportMessage");
        graph.Add("Transport", "Protocol", "Celeriac.Transport.Delivery", "Celeriac.Protocol.TaskHeaders");
        graph.Add("App", "Protocol", "Celeriac.CeleriacApp", "Celeriac.Protocol.TaskMessage");

        string text = graph.Describe(LayeringTests.Allowed);

        Assert.Equal(["Protocol", "Transport", "Protocol"], Assert.Single(graph.FindCycles()));
        Assert.Contains("Cycle between folders: Protocol -> Transport -> Protocol", text, StringComparison.Ordinal);
        Assert.Contains("Celeriac.Protocol.KombuEnvelope -> Celeriac.Transport.TransportMessage", text, StringComparison.Ordinal);
        Assert.Contains("Celeriac.Transport.Delivery -> Celeriac.Protocol.TaskHeaders", text, StringComparison.Ordinal);
        Assert.Contains("Edge against the layering: Protocol may not use Transport", text, StringComparison.Ordinal);
        Assert.DoesNotContain("App", text, StringComparison.Ordinal);
    }

    [Fact]
    public void FindCycles_LongCycle_ReturnsItInOrder()
    {
        var graph = new FolderGraph();
        graph.Add("A", "B", "a", "b");
        graph.Add("B", "C", "b", "c");
        graph.Add("C", "A", "c", "a");
        graph.Add("C", "D", "c", "d");

        Assert.Equal(["A", "B", "C", "A"], Assert.Single(graph.FindCycles()));
    }

    [Fact]
    public void FindCycles_TwoCyclesThroughOneFolder_NamesBoth()
    {
        var graph = new FolderGraph();
        graph.Add("App", "Results", "a", "r");
        graph.Add("Results", "App", "r", "a");
        graph.Add("App", "Worker", "a", "w");
        graph.Add("Worker", "App", "w", "a");

        Assert.Equal([["App", "Results", "App"], ["App", "Worker", "App"]], graph.FindCycles());
    }

    [Fact]
    public void Describe_EdgeAgainstTheOrderWithoutCycle_Fails()
    {
        var graph = new FolderGraph();
        graph.Add("Results", "App", "Celeriac.Results.X", "Celeriac.CeleriacApp");

        string text = graph.Describe(LayeringTests.Allowed);

        Assert.Empty(graph.FindCycles());
        Assert.Contains("Edge against the layering: Results may not use App (allowed: Protocol, Concurrency, Diagnostics)", text, StringComparison.Ordinal);
        Assert.Contains("Celeriac.Results.X -> Celeriac.CeleriacApp", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Describe_AllowedAcyclicGraph_IsEmpty()
    {
        var graph = new FolderGraph();
        graph.Add("Worker", "App", "w", "a");
        graph.Add("App", "Protocol", "a", "p");
        graph.Add("Worker", "Worker", "w", "w2");

        Assert.Equal("", graph.Describe(LayeringTests.Allowed));
    }

    [Theory]
    [InlineData("/work/x/src/Celeriac/App/CeleriacApp.cs", "App")]
    [InlineData("C:\\w\\src\\Celeriac\\Worker\\CeleriacWorker.Limits.cs", "Worker")]
    [InlineData("/_/src/Celeriac/Top.cs", "(root)")]
    [InlineData("/work/x/src/Celeriac.Sqlite/SqliteStore.cs", null)]
    [InlineData("/work/x/src/Celeriac/obj/Release/net10.0/Gen.g.cs", null)]
    [InlineData("Microsoft.Extensions.Logging.Generators/LoggerMessage.g.cs", null)]
    public void FolderOf_Document_FolderUnderTheAssemblysSource(string document, string? expected) =>
        Assert.Equal(expected, SourceFolderMap.FolderOf(document, "Celeriac"));
}
