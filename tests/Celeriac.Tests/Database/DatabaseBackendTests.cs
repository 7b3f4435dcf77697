using System.Diagnostics;
using System.Text;
using Celeriac.Database;
using Celeriac.Database.Pickle;
using Celeriac.Results;
using Celeriac.Tests.Conformance;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Celeriac.Tests.Database;

/// <summary>PostgreSQL wakes a waiting client by NOTIFY on the result's commit, whoever wrote it.</summary>
public sealed class PostgresNotifyTests(PostgresDatabaseFixture pg) : IClassFixture<PostgresDatabaseFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan s_poll = TimeSpan.FromMinutes(10);

    private async Task<(DatabaseResultBackend Waiter, DatabaseResultBackend Writer, string Database)> BackendsAsync()
    {
        string database = await pg.Server.CreateDatabaseAsync(Ct);
        // A poll interval of minutes: the first re-read would come after PollInterval / 16 (37 s), so only a notification
        // explains a wake-up within seconds.
        var options = new ResultBackendOptions { Url = new Uri(pg.Server.Url(database, "db+postgresql")), PollInterval = s_poll };
        return (new DatabaseResultBackend(options), new DatabaseResultBackend(options), database);
    }

    [Fact]
    public async Task WaitAsync_AnotherProcessStores_WokenByNotifyLongBeforeItsPoll()
    {
        (DatabaseResultBackend waiter, DatabaseResultBackend writer, _) = await BackendsAsync();
        await using (waiter)
        await using (writer)
        {
            string id = Guid.NewGuid().ToString();
            Task<TaskResultMeta> wait = waiter.WaitAsync(id, Ct).AsTask();
            await Task.Delay(500, Ct);
            Assert.False(wait.IsCompleted);

            var clock = Stopwatch.StartNew();
            await writer.StoreAsync(new TaskResultMeta { TaskId = id, Status = TaskStates.Success, Result = "7"u8.ToArray(), DateDone = TimeProvider.System.GetUtcNow() }, Ct);
            TaskResultMeta got = await wait.WaitAsync(TimeSpan.FromSeconds(10), Ct);

            Assert.Equal("7", Encoding.UTF8.GetString(got.Result.Span));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"woken after {clock.Elapsed}");
        }
    }

    [Fact]
    public async Task WaitAsync_RowWrittenBySqlAsPythonWould_WokenByTheTrigger()
    {
        (DatabaseResultBackend waiter, DatabaseResultBackend writer, string database) = await BackendsAsync();
        await using (waiter)
        await using (writer)
        {
            string id = Guid.NewGuid().ToString();
            Task<TaskResultMeta> wait = waiter.WaitAsync(id, Ct).AsTask();
            await Task.Delay(500, Ct);

            // SQLAlchemy's statements, as Celery's _store_result runs them: an INSERT, then an UPDATE in the same session.
            await using var connection = new NpgsqlConnection(pg.Server.ConnectionString(database));
            await connection.OpenAsync(Ct);
            await using (var insert = new NpgsqlCommand("INSERT INTO celery_taskmeta (id, task_id, status) VALUES (nextval('task_id_sequence'), @id, 'PENDING')", connection))
            {
                insert.Parameters.AddWithValue("id", id);
                await insert.ExecuteNonQueryAsync(Ct);
            }

            Assert.False(wait.IsCompleted);
            await using (var update = new NpgsqlCommand("UPDATE celery_taskmeta SET status = 'SUCCESS', result = @r, date_done = now() AT TIME ZONE 'utc' WHERE task_id = @id", connection))
            {
                update.Parameters.AddWithValue("id", id);
                update.Parameters.AddWithValue("r", PickleWriter.FromJson("""{"py":[1,2]}"""u8));
                await update.ExecuteNonQueryAsync(Ct);
            }

            TaskResultMeta got = await wait.WaitAsync(TimeSpan.FromSeconds(5), Ct);
            Assert.Equal("""{"py":[1,2]}""", Encoding.UTF8.GetString(got.Result.Span));
        }
    }
}

/// <summary>Hostile pickles in <c>celery_taskmeta.result</c>: refused with a clear error, nothing runs, other rows read on.</summary>
public sealed class DatabaseHostileRowTests : IAsyncDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-db-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GetAndWait_HostilePickles_RefusedClearlyNothingRunsOtherRowsRead()
    {
        string marker = Path.Combine(_directory, "pwned");
        string url = "db+sqlite:///" + Path.Combine(_directory, "results.db");
        await using var b = new DatabaseResultBackend(new ResultBackendOptions { Url = new Uri(url) });
        await b.StoreAsync(new TaskResultMeta { TaskId = "good", Status = TaskStates.Success, Result = "[1,2]"u8.ToArray(), DateDone = TimeProvider.System.GetUtcNow() }, Ct);
        (string Id, byte[] Pickle, string Expected)[] hostile =
        [
            ("global", Encoding.Latin1.GetBytes($"cos\nsystem\n(S'touch {marker}'\ntR."), "Refused pickle opcode GLOBAL 'os.system'"),
            ("stack-global", [0x80, 4, 0x8c, 5, .. "posix"u8, 0x8c, 6, .. "system"u8, 0x93, 0x8c, (byte)(6 + marker.Length), .. Encoding.UTF8.GetBytes("touch " + marker), 0x85, (byte)'R', (byte)'.'], "Refused pickle opcode STACK_GLOBAL 'posix.system'"),
            ("truncated", PickleWriter.FromJson("""{"a":[1,2,3]}"""u8)[..^3], "Truncated pickle"),
            ("deep", [0x80, 4, .. Enumerable.Repeat((byte)']', 100_000), .. Enumerable.Repeat((byte)'a', 99_999), (byte)'.'], "deeper than 64"),
        ];
        await using (var connection = new SqliteConnection("Data Source=" + Path.Combine(_directory, "results.db")))
        {
            await connection.OpenAsync(Ct);
            foreach ((string id, byte[] pickle, _) in hostile)
            {
                using SqliteCommand insert = connection.CreateCommand();
                insert.CommandText = "INSERT INTO celery_taskmeta (task_id, status, result, date_done) VALUES ($id, 'SUCCESS', $r, $done)";
                insert.Parameters.AddWithValue("$id", id);
                insert.Parameters.AddWithValue("$r", pickle);
                insert.Parameters.AddWithValue("$done", TimeProvider.System.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", System.Globalization.CultureInfo.InvariantCulture));
                await insert.ExecuteNonQueryAsync(Ct);
            }
        }

        foreach ((string id, _, string expected) in hostile)
        {
            UnpicklingException get = await Assert.ThrowsAnyAsync<UnpicklingException>(() => b.GetAsync(id, Ct).AsTask());
            Assert.Contains($"The result of task {id} in celery_taskmeta cannot be read", get.Message, StringComparison.Ordinal);
            Assert.Contains(expected, get.Message, StringComparison.Ordinal);
            await Assert.ThrowsAnyAsync<UnpicklingException>(() => b.WaitAsync(id, Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(5), Ct));
            Assert.Equal("[1,2]", Encoding.UTF8.GetString((await b.GetAsync("good", Ct))!.Result.Span));
        }

        Assert.False(File.Exists(marker));
    }

    public ValueTask DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }
}
