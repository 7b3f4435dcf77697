namespace Celeriac.Cli;

/// <summary>Bad input on the command line: reported as one line on stderr, exit code 2.</summary>
internal sealed class CliUsageException : Exception
{
    public CliUsageException()
    {
    }

    public CliUsageException(string message) : base(message)
    {
    }

    public CliUsageException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
