namespace Celeriac;

/// <summary>
/// Creates the tables a provider keeps in a store (idempotently), for teams that manage schemas instead of letting
/// the first worker create them: <c>celeriac migrate</c> asks the provider of the broker's (and the result backend's)
/// URL for one with <see cref="ProviderRegistry.CreateExtension{TService}"/>.
/// </summary>
public interface IStoreMigrator : IAsyncDisposable
{
    /// <summary>The SQL (or other script) that <see cref="MigrateAsync"/> runs, to review or to run by hand.</summary>
    string Script { get; }

    /// <summary>Creates what is missing; safe to run again and beside running workers.</summary>
    ValueTask MigrateAsync(CancellationToken ct = default);
}
