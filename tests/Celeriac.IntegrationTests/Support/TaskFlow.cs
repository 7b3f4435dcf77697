using System.Diagnostics;

namespace Celeriac.IntegrationTests.Support;

/// <summary>A steady flow of <c>test.record</c> tasks through an outage of the broker, as production sees one.</summary>
public static class TaskFlow
{
    /// <summary>
    /// Sends <paramref name="count"/> <c>test.record("t&lt;n&gt;")</c> calls at about 500 a second, runs
    /// <paramref name="outage"/> <paramref name="outageAfter"/> in (3 s unless given; the flow goes on meanwhile: sends
    /// wait for the broker), then waits up to 120 s for every result. Returns how many were sent, how many results
    /// were not there by then, and how long the flow took.
    /// </summary>
    public static async Task<(int Sent, int Missing, TimeSpan Elapsed)> RunAsync(CeleriacApp client, int count, Func<Task> outage, CancellationToken ct, TimeSpan? outageAfter = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(outage);
        CeleriacTask record = client.Signature("test.record");
        var sent = new List<AsyncResult>(count);
        var clock = Stopwatch.StartNew();
        Task producer = Task.Run(
            async () =>
            {
                for (int i = 0; i < count; i += 50)
                {
                    sent.AddRange(await Task.WhenAll(Enumerable.Range(i, Math.Min(50, count - i)).Select(n => record.DelayAsync("t" + n))));
                    await Task.Delay(100, ct);
                }
            },
            ct);

        await Task.Delay(outageAfter ?? TimeSpan.FromSeconds(3), ct);
        await outage();
        await producer.WaitAsync(TimeSpan.FromSeconds(180), ct);

        using var all = CancellationTokenSource.CreateLinkedTokenSource(ct);
        all.CancelAfter(TimeSpan.FromSeconds(120));
        int missing = 0;
        foreach (AsyncResult r in sent)
        {
            try
            {
                await r.GetAsync<string>(null, all.Token);
            }
            catch (OperationCanceledException) when (all.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                // Past the deadline each wait ends at once: count only the results that are really not there.
                if (!TaskStates.IsReady(await r.GetStateAsync(ct)))
                {
                    missing++;
                }
            }
        }

        return (sent.Count, missing, clock.Elapsed);
    }
}
