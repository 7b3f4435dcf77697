namespace Celeriac;

/// <summary>
/// Marks a method, or a class with a <c>Run</c>/<c>RunAsync</c> method, as a task with the given name.
/// Instance methods run on an instance resolved from DI (or created with its dependencies), one scope per run.
/// </summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Class, AllowMultiple = false)]
public sealed class CeleriacTaskAttribute(string name) : Attribute
{
    /// <summary>The task name (<c>tasks.add</c>), as callers in any language send it.</summary>
    public string Name { get; } = name;

    /// <summary>The queue it is routed to; <see langword="null"/> uses the routes and the default queue.</summary>
    public string? Queue { get; set; }

    /// <summary>Ack after it ran (overrides the app default).</summary>
    public bool AcksLate { get; set; }

    /// <summary>Store no result.</summary>
    public bool IgnoreResult { get; set; }

    /// <summary>Exception types (and their subtypes) that retry the task by themselves (<see cref="TaskOptions.AutoRetryFor"/>).</summary>
#pragma warning disable CA1819 // an attribute argument can only be an array
    public Type[] AutoRetryFor { get; set; } = [];
#pragma warning restore CA1819

    /// <summary>The most retries (<see cref="TaskOptions.MaxRetries"/>); a negative value retries without end. <value>3</value></summary>
    public int MaxRetries { get; set; } = 3;

    /// <summary>The delay of a retry that names none, in seconds (<see cref="TaskOptions.DefaultRetryDelay"/>). <value>180</value></summary>
    public double DefaultRetryDelaySeconds { get; set; } = 180;

    /// <summary>The first back-off delay of automatic retries in seconds, doubled at each retry; 0 for none (<see cref="TaskOptions.RetryBackoff"/>). <value>0</value></summary>
    public double RetryBackoffSeconds { get; set; }

    /// <summary>The longest back-off delay in seconds (<see cref="TaskOptions.RetryBackoffMax"/>). <value>600</value></summary>
    public double RetryBackoffMaxSeconds { get; set; } = 600;

    /// <summary>Full jitter on back-off delays (<see cref="TaskOptions.RetryJitter"/>). <value>true</value></summary>
    public bool RetryJitter { get; set; } = true;

    /// <summary>Per-worker rate limit (<c>rate_limit</c>): <c>"100/s"</c>, <c>"10/m"</c>, <c>"1000/h"</c> or a number per second.</summary>
    public string? RateLimit { get; set; }

    /// <summary>Hard time limit in seconds (<c>time_limit</c>); 0 uses the worker's.</summary>
    public double TimeLimit { get; set; }

    /// <summary>Soft time limit in seconds (<c>soft_time_limit</c>); 0 uses the worker's.</summary>
    public double SoftTimeLimit { get; set; }
}

/// <summary>Marks a task parameter that is resolved from DI instead of bound from the message's arguments.</summary>
[AttributeUsage(AttributeTargets.Parameter)]
public sealed class InjectAttribute : Attribute;
