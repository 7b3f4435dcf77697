using System.Diagnostics;
using Celeriac.Aws;
using Celeriac.Results;
using Celeriac.TestServers;

namespace Celeriac.Tests.Conformance;

/// <summary>
/// The round trip a client pays per result on the AWS backends (store, then get), against the emulators: the figure
/// goes to the test's output, and each round trip must read back what it stored.
/// </summary>
public sealed class AwsRoundTripTests(S3ServerFixture s3, DynamoDbServerFixture dynamo) : IClassFixture<S3ServerFixture>, IClassFixture<DynamoDbServerFixture>
{
    private const int Samples = 200;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task S3_StoreThenGet_RoundTripMeasured()
    {
        await using var backend = new S3ResultBackend(s3.Options(await s3.Server.CreateBucketAsync(Ct)));
        await MeasureAsync("S3 (s3rver emulator)", backend);
    }

    [Fact]
    public async Task DynamoDb_StoreThenGet_RoundTripMeasured()
    {
        await using var backend = new DynamoDbResultBackend(dynamo.Options(DynamoDbServer.NewTable()));
        await MeasureAsync("DynamoDB (dynalite emulator)", backend);
    }

    private static async Task MeasureAsync(string store, IResultBackend backend)
    {
        // Warm-up: the client's first calls pay for connections, the table and JIT.
        for (int i = 0; i < 20; i++)
        {
            await RoundTripAsync(backend, i);
        }

        var times = new double[Samples];
        for (int i = 0; i < Samples; i++)
        {
            long start = Stopwatch.GetTimestamp();
            await RoundTripAsync(backend, i);
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        Array.Sort(times);
        double median = times[Samples / 2], p99 = times[(int)(Samples * 0.99)];
        TestContext.Current.TestOutputHelper?.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{store}: store + get round trip, {Samples} sequential: median {median:F2} ms, p99 {p99:F2} ms"));
        Assert.InRange(median, 0, 1000);
    }

    private static async Task RoundTripAsync(IResultBackend backend, int i)
    {
        string id = Guid.NewGuid().ToString();
        byte[] value = System.Text.Encoding.UTF8.GetBytes(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await backend.StoreAsync(new TaskResultMeta { TaskId = id, Status = TaskStates.Success, Result = value }, Ct);
        TaskResultMeta? got = await backend.GetAsync(id, Ct);
        Assert.Equal(i, got?.ResultElement.GetInt32());
    }
}
