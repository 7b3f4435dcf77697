using Celeriac;
using Celeriac.Results;
using Shop;

namespace Shop.Tests;

/// <summary>(a) Code that depends on ICeleriacClient, tested with a plain fake class: no broker, no mocking library.</summary>
public sealed class CheckoutServiceTests
{
    /// <summary>A fake client that records what was sent.</summary>
    private sealed class FakeCeleriacClient : ICeleriacClient
    {
        private readonly MemoryResultBackend _results = new(new ResultBackendOptions { Url = new Uri("memory://fake-client") });

        public List<(string Name, IReadOnlyList<object?>? Args)> Sent { get; } = [];

        public Task<AsyncResult> SendTaskAsync(string name, IReadOnlyList<object?>? args = null, IReadOnlyDictionary<string, object?>? kwargs = null, ApplyOptions? options = null, CancellationToken ct = default)
        {
            Sent.Add((name, args));
            return Task.FromResult(new AsyncResult($"id-{Sent.Count}", _results));
        }

        public Task<AsyncResult> ApplyAsync(Signature signature, IEnumerable<object?>? args = null, IReadOnlyDictionary<string, object?>? kwargs = null, ApplyOptions? options = null, CancellationToken ct = default) =>
            SendTaskAsync(signature.Task, args?.ToList(), kwargs, options, ct);

        public AsyncResult AsyncResult(string taskId) => new(taskId, _results);

        public Task<GroupResult?> RestoreGroupAsync(string groupId, CancellationToken ct = default) => Task.FromResult<GroupResult?>(null);

        public Task RevokeAsync(IEnumerable<string> taskIds, bool terminate, CancellationToken ct = default) => Task.CompletedTask;

        public Task SetRateLimitAsync(string taskName, string? rateLimit, IReadOnlyList<string>? destination = null, CancellationToken ct = default) => Task.CompletedTask;
    }

    [Fact]
    public async Task Checkout_SendsOneChargeWithTheOrderAndAmount()
    {
        var client = new FakeCeleriacClient();
        var checkout = new CheckoutService(client);

        string id = await checkout.CheckoutAsync("A-17", 25.50m, TestContext.Current.CancellationToken);

        Assert.Equal("id-1", id);
        (string name, IReadOnlyList<object?>? args) = Assert.Single(client.Sent);
        Assert.Equal("shop.charge", name);
        Assert.Equal(["A-17", 25.50m], args!);
    }

    [Fact]
    public async Task Checkout_NothingToCharge_SendsNothing()
    {
        var client = new FakeCeleriacClient();
        var checkout = new CheckoutService(client);

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => checkout.CheckoutAsync("A-18", 0m, TestContext.Current.CancellationToken));

        Assert.Empty(client.Sent);
    }
}
