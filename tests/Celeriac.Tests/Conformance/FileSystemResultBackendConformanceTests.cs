using Celeriac.Results;

namespace Celeriac.Tests.Conformance;

public sealed class FileSystemResultBackendConformanceTests : ResultBackendConformanceTests
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-file-").FullName;

    protected override ValueTask<IResultBackend> CreateBackendAsync(BackendSetup setup) =>
        ValueTask.FromResult<IResultBackend>(new FileSystemResultBackend(new ResultBackendOptions
        {
            Url = new Uri("file://" + _directory),
            TimeProvider = setup.Time ?? TimeProvider.System,
            ResultExpires = setup.Expires ?? TimeSpan.FromDays(1),
            PollInterval = TimeSpan.FromMilliseconds(100),
        }));

    protected override async ValueTask<byte[]?> ReadRawAsync(string key) =>
        await File.ReadAllBytesAsync(Path.Join(_directory, key), Ct);

    protected override ValueTask DisposeStoreAsync()
    {
        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }
}
