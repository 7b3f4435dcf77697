using System.Text;
using System.Text.Json;
using Celeriac.Protocol;

namespace Celeriac.Tests.Protocol;

public sealed class PythonFloatTests
{
    private sealed record Point(double X, double Y);

    [Fact]
    public void Serialize_WholeDoublesInsideObjects_KeepPointZero()
    {
        Assert.Equal("[2.0,0.5]", JsonSerializer.Serialize(new List<double> { 2, 0.5 }, CeleryJson.Options));
        Assert.Equal("{\"X\":1.0,\"Y\":-3.0}", JsonSerializer.Serialize(new Point(1, -3), CeleryJson.Options));
        Assert.Equal("[1.0,2.0]", Encoding.UTF8.GetString(TaskResultMeta.SerializeValue(new[] { 1.0, 2.0 })));
    }

    [Fact]
    public void Deserialize_IntegerJsonIntoDouble_Works()
    {
        Assert.Equal([2.0, 3.5], JsonSerializer.Deserialize<double[]>("[2, 3.5]", CeleryJson.Options)!);
    }
}
