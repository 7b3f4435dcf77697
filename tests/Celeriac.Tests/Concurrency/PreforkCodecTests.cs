using System.Text;
using Celeriac.Concurrency;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Concurrency;

/// <summary>What crosses between a prefork pool and its children: outcomes, frames, and how an exit is worded.</summary>
public sealed class PreforkCodecTests
{
    [Fact]
    public void TaskOutcomeCodec_FailureRoundTrip_KeepsEveryFieldTheWorkerReads()
    {
        var failure = new TaskOutcome
        {
            Kind = TaskOutcomeKind.Failed,
            Result = """{"exc_type":"ValueError","exc_message":["bad \u00e9"],"exc_module":"builtins"}"""u8.ToArray(),
            Traceback = "Traceback\n  at X",
            ErrorType = "ValueError",
            ErrorMessage = "bad é",
            ErrorModule = "builtins",
            LogStack = true,
            Runtime = 0.25,
            SignalsRaised = true,
        };

        Assert.True(TaskOutcomeCodec.TryDecode(TaskOutcomeCodec.Encode(failure), out TaskOutcome? back, out string? error), error);
        Assert.Equal(
            (failure.Kind, failure.Traceback, failure.ErrorType, failure.ErrorMessage, failure.ErrorModule, failure.LogStack, failure.Runtime, failure.SignalsRaised),
            (back!.Kind, back.Traceback, back.ErrorType, back.ErrorMessage, back.ErrorModule, back.LogStack, back.Runtime, back.SignalsRaised));
        JsonAssert.Equal(JsonAssert.Parse(Encoding.UTF8.GetString(failure.Result)), JsonAssert.Parse(Encoding.UTF8.GetString(back.Result!)));
    }

    [Fact]
    public void TaskOutcomeCodec_RejectedWithoutResult_StaysWithoutResult()
    {
        var rejected = new TaskOutcome { Kind = TaskOutcomeKind.Rejected, Requeue = true, Reason = "later" };

        Assert.True(TaskOutcomeCodec.TryDecode(TaskOutcomeCodec.Encode(rejected), out TaskOutcome? back, out _));
        Assert.Equal((TaskOutcomeKind.Rejected, true, "later", (byte[]?)null), (back!.Kind, back.Requeue, back.Reason, back.Result));
    }

    [Theory]
    [InlineData("")]
    [InlineData("[]")]
    [InlineData("{\"kind\":\"Exploded\"}")]
    [InlineData("{\"kind\":7}")]
    [InlineData("{\"kind\":\"Succeeded\"")]
    public void TaskOutcomeCodec_BadInput_FalseWithAReasonNeverThrows(string json)
    {
        Assert.False(TaskOutcomeCodec.TryDecode(Encoding.UTF8.GetBytes(json), out TaskOutcome? outcome, out string? error));
        Assert.Null(outcome);
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public async Task PoolFrames_WrittenThenRead_SameFramesThenNullAtTheEnd()
    {
        using var stream = new MemoryStream();
        await PoolFrames.WriteAsync(stream, PoolFrameType.Run, "abc"u8.ToArray(), TestContext.Current.CancellationToken);
        await PoolFrames.WriteAsync(stream, PoolFrameType.Outcome, ReadOnlyMemory<byte>.Empty, TestContext.Current.CancellationToken);
        stream.Position = 0;

        (PoolFrameType Type, byte[] Payload)? first = await PoolFrames.ReadAsync(stream, TestContext.Current.CancellationToken);
        (PoolFrameType Type, byte[] Payload)? second = await PoolFrames.ReadAsync(stream, TestContext.Current.CancellationToken);

        Assert.Equal((PoolFrameType.Run, "abc"), (first!.Value.Type, Encoding.UTF8.GetString(first.Value.Payload)));
        Assert.Equal((PoolFrameType.Outcome, 0), (second!.Value.Type, second.Value.Payload.Length));
        Assert.Null(await PoolFrames.ReadAsync(stream, TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 0, 0, 1 })]
    [InlineData(new byte[] { 0x7f, 0xff, 0xff, 0xff, 1 })]
    [InlineData(new byte[] { 0, 0, 0, 9, 2, 1, 2 })]
    [InlineData(new byte[] { 0, 0 })]
    public async Task PoolFrames_ImpossibleOrCutShortFrame_InvalidData(byte[] bytes)
    {
        using var stream = new MemoryStream(bytes);
        await Assert.ThrowsAsync<InvalidDataException>(async () => await PoolFrames.ReadAsync(stream, TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData(137, "signal 9 (SIGKILL)")]
    [InlineData(134, "signal 6 (SIGABRT)")]
    [InlineData(1, "exitcode 1")]
    [InlineData(0, "exitcode 0")]
    public void DescribeExit_AsBilliardWordsIt(int exitCode, string expected) => Assert.Equal(expected, PreforkPool.DescribeExit(exitCode));
}
