using Microsoft.Extensions.Logging;

namespace Celeriac.Cli;

/// <summary>
/// The app a command works on, configured for this run, and what the run owns: an app it created and a
/// logger factory it made are disposed at the end; an app passed in by the host is left open.
/// </summary>
internal sealed class CliSession : IAsyncDisposable
{
    private readonly bool _ownsApp;
    private readonly ILoggerFactory? _ownedLogging;
    private readonly ILoggerFactory? _previousLogging;

    public CliSession(CeleriacApp app, bool ownsApp, ILoggerFactory? ownedLogging, ILoggerFactory? previousLogging)
    {
        App = app;
        _ownsApp = ownsApp;
        _ownedLogging = ownedLogging;
        _previousLogging = previousLogging;
    }

    public CeleriacApp App { get; }

    public async ValueTask DisposeAsync()
    {
        if (_ownsApp)
        {
            await App.DisposeAsync().ConfigureAwait(false);
        }

        if (_ownedLogging is not null)
        {
            if (!_ownsApp && ReferenceEquals(App.Options.LoggerFactory, _ownedLogging))
            {
                // A host's app outlives this run: give it back its own logging.
                App.Options.LoggerFactory = _previousLogging;
            }

            _ownedLogging.Dispose();
        }
    }
}
