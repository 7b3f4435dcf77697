using System.Runtime.InteropServices;

namespace Celeriac.Cli;

/// <summary>
/// SIGINT and SIGTERM cancel a command's stop token: how a command with nothing to finish (a monitor, beat, the
/// dashboard) stops at the first Ctrl+C, with exit code 0, instead of being killed by the runtime's default handler.
/// </summary>
internal sealed class StopSignals : IDisposable
{
    private readonly List<PosixSignalRegistration> _signals = [];

    public StopSignals(CancellationTokenSource stop)
    {
        foreach (PosixSignal signal in (ReadOnlySpan<PosixSignal>)[PosixSignal.SIGINT, PosixSignal.SIGTERM])
        {
            try
            {
                _signals.Add(PosixSignalRegistration.Create(signal, c =>
                {
                    c.Cancel = true;
                    try
                    {
                        stop.Cancel();
                    }
                    catch (ObjectDisposedException)
                    {
                        // A signal that came as the command ended.
                    }
                }));
            }
            catch (PlatformNotSupportedException)
            {
                // Windows without these signals: Ctrl+C still cancels through the host's token.
            }
        }
    }

    public void Dispose()
    {
        foreach (PosixSignalRegistration signal in _signals)
        {
            signal.Dispose();
        }
    }
}
