using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace Celeriac.Results;

/// <summary>
/// Celery's filesystem result backend (<c>file:///dir</c>): one file per key in a shared directory,
/// named as Celery names it (<c>celery-task-meta-&lt;id&gt;</c>) and holding the same JSON document, so
/// Python Celery reads what Celeriac writes and the other way round. Writes are atomic (write, then rename);
/// results older than the expiry (by modification time) read as missing and are deleted.
/// </summary>
public sealed class FileSystemResultBackend : KeyValueResultBackend
{
    private readonly string _directory;
    private readonly SemaphoreSlim _incrementLock = new(1, 1);

    /// <summary>Opens the directory named by the URL's path; it must exist, as Celery requires.</summary>
    public FileSystemResultBackend(ResultBackendOptions options) : base(options)
    {
        _directory = options.Url.LocalPath;
        if (string.IsNullOrEmpty(_directory) || !Directory.Exists(_directory))
        {
            throw new ArgumentException($"The result directory '{_directory}' of '{options.Url}' does not exist; create it first.", nameof(options));
        }
    }

    private string PathOf(string key) => Path.Join(_directory, key);

    /// <inheritdoc />
    protected override async ValueTask<byte[]?> GetValueAsync(string key, CancellationToken ct)
    {
        string path = PathOf(key);
        try
        {
            if (Options.ResultExpires is { } expires &&
                File.GetLastWriteTimeUtc(path) is var written &&
                new DateTimeOffset(written, TimeSpan.Zero) + expires < Options.TimeProvider.GetUtcNow() &&
                File.Exists(path))
            {
                File.Delete(path);
                return null;
            }

            return await File.ReadAllBytesAsync(path, ct).ConfigureAwait(false);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <inheritdoc />
    protected override async ValueTask SetValueAsync(string key, byte[] value, TimeSpan? expiry, CancellationToken ct)
    {
        string path = PathOf(key);
        string temp = Path.Join(_directory, "." + key + "." + Guid.NewGuid().ToString("N") + ".tmp");
        await File.WriteAllBytesAsync(temp, value, ct).ConfigureAwait(false);
        File.Move(temp, path, overwrite: true);
    }

    /// <inheritdoc />
    protected override ValueTask DeleteValueAsync(string key, CancellationToken ct)
    {
        File.Delete(PathOf(key));
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    protected override async ValueTask<long> IncrementValueAsync(string key, TimeSpan? expiry, CancellationToken ct)
    {
        // Celery's filesystem backend has no counter at all; here a lock file makes the read-and-write atomic across
        // processes too (an exclusive open is an flock on Unix), so that a chord's join fires once.
        await _incrementLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            FileStream gate = await LockAsync(PathOf(key) + ".lock", ct).ConfigureAwait(false);
            await using ConfiguredAsyncDisposable held = gate.ConfigureAwait(false);
            byte[]? old = await GetValueAsync(key, ct).ConfigureAwait(false);
            long value = old is null ? 1 : long.Parse(Encoding.ASCII.GetString(old), CultureInfo.InvariantCulture) + 1;
            await SetValueAsync(key, Encoding.ASCII.GetBytes(value.ToString(CultureInfo.InvariantCulture)), expiry, ct).ConfigureAwait(false);
            return value;
        }
        finally
        {
            _incrementLock.Release();
        }
    }

    private static async Task<FileStream> LockAsync(string path, CancellationToken ct)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1);
            }
            catch (IOException) when (attempt < 6000)
            {
                // Held by another process: it holds it for one read and one write.
                await Task.Delay(5, ct).ConfigureAwait(false);
            }
        }
    }

    /// <inheritdoc />
    public override ValueTask DisposeAsync()
    {
        _incrementLock.Dispose();
        return base.DisposeAsync();
    }
}
