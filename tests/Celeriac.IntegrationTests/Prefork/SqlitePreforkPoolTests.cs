namespace Celeriac.IntegrationTests.Prefork;

/// <summary>The prefork pool on the embedded SQLite store, shared by the worker, its children and the client.</summary>
public sealed class SqlitePreforkPoolTests : PreforkPoolTests
{
    private string BrokerUrl => "sqlite:///" + Path.Join(Dir, "celeriac.db");

    protected override Dictionary<string, string> Env() => new() { ["CELERIAC_BROKER_URL"] = BrokerUrl };

    protected override CeleriacApp Client() => new(new CeleriacOptions { BrokerUrl = BrokerUrl });

    protected override async Task<string> SendBlockWithTimeLimitAsync(CeleriacApp client)
    {
        AsyncResult result = await client.SendTaskAsync("tasks.block", [30], options: new ApplyOptions { TimeLimit = TimeSpan.FromSeconds(2) }, ct: Ct);
        return result.Id;
    }
}
