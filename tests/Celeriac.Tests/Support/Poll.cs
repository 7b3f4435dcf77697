using System.Diagnostics;

namespace Celeriac.Tests.Support;

/// <summary>Waiting in tests for what a worker does in the background.</summary>
internal static class Poll
{
    private static readonly TimeSpan s_interval = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// Checks <paramref name="condition"/> until it holds or <paramref name="timeout"/> has passed, and says whether it
    /// held. It does not fail by itself: the caller asserts on what it waited for, with its own message.
    /// </summary>
    public static async Task<bool> UntilAsync(Func<ValueTask<bool>> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed >= timeout)
            {
                return false;
            }

            await Task.Delay(s_interval, TestContext.Current.CancellationToken);
        }

        return true;
    }

    /// <inheritdoc cref="UntilAsync(Func{ValueTask{bool}}, TimeSpan)"/>
    public static Task<bool> UntilAsync(Func<bool> condition, TimeSpan timeout) => UntilAsync(() => ValueTask.FromResult(condition()), timeout);
}
