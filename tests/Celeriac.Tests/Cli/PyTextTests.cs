using Celeriac.Cli;
using Celeriac.Cli.Commands.Monitor;
using Celeriac.Protocol;

namespace Celeriac.Tests.Cli;

/// <summary>The CLI prints values as Celery's Python does (expected values checked with python3: repr, json.dumps, datetime.utcfromtimestamp).</summary>
public sealed class PyTextTests
{
    [Theory]
    [InlineData("null", "None")]
    [InlineData("true", "True")]
    [InlineData("1.0", "1.0")]
    [InlineData("2.5", "2.5")]
    [InlineData("1e-05", "1e-05")]
    [InlineData("1e+20", "1e+20")]
    [InlineData("123456789012345678901234567890", "123456789012345678901234567890")]
    [InlineData("\"it's\"", "\"it's\"")]
    [InlineData("\"a\\nb\"", "'a\\nb'")]
    [InlineData("{\"a\": [1, \"x\", null], \"b\": {}}", "{'a': [1, 'x', None], 'b': {}}")]
    public void Repr_IsPythons(string json, string expected) =>
        Assert.Equal(expected, PyText.Repr(JsonValues.Parse(System.Text.Encoding.UTF8.GetBytes(json))));

    [Fact]
    public void Dumps_Indented_IsPythonsJsonDumpsSortKeysIndent4()
    {
        object? value = JsonValues.Parse("{\"b\": [1, 2.0], \"a\": {\"é\": []}, \"c\": {}}"u8);

        Assert.Equal("{\n    \"a\": {\n        \"\\u00e9\": []\n    },\n    \"b\": [\n        1,\n        2.0\n    ],\n    \"c\": {}\n}", PyText.Dumps(value, indent: 4, sortKeys: true));
        Assert.Equal("{\"b\": [1, 2.0], \"a\": {\"\\u00e9\": []}, \"c\": {}}", PyText.Dumps(value));
    }

    [Theory]
    [InlineData(1733324289.187509, "2024-12-04 14:58:09.187509")]
    [InlineData(1733324289.0, "2024-12-04 14:58:09")]
    [InlineData(1796401262.150593, "2026-12-04 16:21:02.150593")]
    [InlineData(1796401262.9999996, "2026-12-04 16:21:03")]
    public void DumperTime_IsPythonsUtcDatetimeStr(double seconds, string expected) =>
        Assert.Equal(expected, EventDumper.UtcText(seconds));

    [Fact]
    public void Dumper_WorkerEvent_SortedFieldsAfterTheHumanType()
    {
        var e = new Celeriac.Events.CeleryEvent(new Dictionary<string, object?>
        {
            ["type"] = "worker-online",
            ["hostname"] = "w1@h",
            ["timestamp"] = 1733324289.5,
            ["freq"] = 2.0,
            ["active"] = 0L,
            ["sw_ident"] = "celeriac",
        });

        Assert.Equal("w1@h [2024-12-04 14:58:09.500000] started: active=0, freq=2.0, sw_ident=celeriac", new EventDumper().Format(e));
    }
}
