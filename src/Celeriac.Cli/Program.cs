using Celeriac.Cli;

return await CeleriacCli.RunAsync(args).ConfigureAwait(false);
