using Celeriac.Results;

namespace Celeriac;

/// <summary>A handle on a task's result whose value is read as <typeparamref name="TResult"/> (what typed calls return).</summary>
public class AsyncResult<TResult> : AsyncResult
{
    /// <summary>Creates a typed handle on a task id in a backend (constructible in tests).</summary>
    public AsyncResult(string id, IResultBackend backend)
        : base(id, backend)
    {
    }

    /// <summary>Wraps an untyped handle (same id, backend and app).</summary>
    public AsyncResult(AsyncResult untyped)
        : base((untyped ?? throw new ArgumentNullException(nameof(untyped))).Id, untyped.ReadBackend)
    {
        App = untyped.App;
        Name = untyped.Name;
        Parent = untyped.Parent;
    }

    /// <summary>Waits for the result and returns it (see <see cref="AsyncResult.GetAsync{T}"/>).</summary>
    public new Task<TResult?> GetAsync(TimeSpan? timeout = null, CancellationToken ct = default) => GetAsync<TResult>(timeout, ct);
}
