using System.CommandLine;

namespace Celeriac.Cli.Commands.Migrate;

/// <summary>
/// <c>celeriac migrate</c>: runs (or prints) the schema scripts of the stores behind the broker and result backend URLs
/// whose providers keep tables; says so when neither does.
/// </summary>
internal static class MigrateCommand
{
    public static async Task<int> RunAsync(CliContext context, MigrateCommandDefinition definition, ParseResult parse, CancellationToken ct)
    {
        CliSession session = context.Open(parse);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeSession = session.ConfigureAwait(false);
        CeleriacApp app = session.App;
        bool print = parse.GetValue(definition.PrintSqlOption);
        var urls = new List<string> { app.Options.BrokerUrl };
        if (app.Options.ResultBackend is { Length: > 0 } backend && backend != app.Options.BrokerUrl)
        {
            urls.Add(backend);
        }

        int migrated = 0;
        foreach (string url in urls)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out Uri? uri) || app.Providers.CreateExtension<IStoreMigrator>(uri, app) is not { } migrator)
            {
                continue;
            }

            await using (migrator.ConfigureAwait(false))
            {
                if (print)
                {
                    await context.Out.WriteLineAsync(migrator.Script.AsMemory(), ct).ConfigureAwait(false);
                }
                else
                {
                    await migrator.MigrateAsync(ct).ConfigureAwait(false);
                    await context.Out.WriteLineAsync($"Migrated {UrlText.Mask(uri)}".AsMemory(), ct).ConfigureAwait(false);
                }
            }

            migrated++;
        }

        if (migrated == 0)
        {
            context.WriteError($"Nothing to migrate: {string.Join(" and ", urls.Select(UrlText.Mask))} keep no tables that need creating.");
            return ExitCodes.Failure;
        }

        return ExitCodes.Ok;
    }
}
