namespace Celeriac.Cli;

/// <summary>The exit codes of the <c>celeriac</c> command.</summary>
public static class ExitCodes
{
    /// <summary>Success; for <c>worker</c>, a warm shutdown.</summary>
    public const int Ok = 0;

    /// <summary>The task failed or was revoked (<c>result</c>), a cold shutdown (<c>worker</c>), or a runtime error (broker unreachable).</summary>
    public const int Failure = 1;

    /// <summary>Bad usage or configuration: unknown command or option, bad number, bad JSON, bad URL, missing assembly.</summary>
    public const int Usage = 2;

    /// <summary>The result is not ready (<c>result</c> without <c>--wait</c>, or its wait timed out).</summary>
    public const int NotReady = 3;

    /// <summary>No worker replied in time (<c>inspect</c>, <c>control</c>, <c>status</c>): Celery's <c>EX_UNAVAILABLE</c>.</summary>
    public const int Unavailable = 69;

    /// <summary>The text shown in <c>--help</c>.</summary>
    internal const string HelpText = "Exit codes: 0 ok; 1 task failed or revoked, cold shutdown, or runtime error; 2 bad usage or configuration; 3 result not ready; 69 no worker replied.";
}
