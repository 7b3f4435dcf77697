using Microsoft.Data.Sqlite;

namespace Celeriac.Sqlite;

/// <summary>
/// The writer connection's prepared commands, reused across batches: SQLite keeps each statement
/// compiled, and each batch only rebinds parameter values.
/// </summary>
internal sealed class WriteContext(SqliteConnection connection, SqliteStore store) : IDisposable
{
    private readonly Dictionary<string, SqliteCommand> _commands = new(StringComparer.Ordinal);
    private SqliteTransaction? _transaction;

    public SqliteStore Store { get; } = store;

    public void Begin(SqliteTransaction transaction) => _transaction = transaction;

    /// <summary>The prepared command for <paramref name="sql"/>, with its parameters named by the SQL ($name).</summary>
    public SqliteCommand Command(string sql)
    {
        if (!_commands.TryGetValue(sql, out SqliteCommand? command))
        {
            command = connection.CreateCommand();
            command.CommandText = sql;
            foreach (string name in ParameterNames(sql))
            {
                command.Parameters.Add(new SqliteParameter(name, null));
            }

            _commands[sql] = command;
        }

        command.Transaction = _transaction;
        return command;
    }

    private static IEnumerable<string> ParameterNames(string sql)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < sql.Length; i++)
        {
            if (sql[i] != '$')
            {
                continue;
            }

            int end = i + 1;
            while (end < sql.Length && (char.IsAsciiLetterOrDigit(sql[end]) || sql[end] == '_'))
            {
                end++;
            }

            string name = sql[i..end];
            if (seen.Add(name))
            {
                yield return name;
            }

            i = end - 1;
        }
    }

    public void Dispose()
    {
        foreach (SqliteCommand command in _commands.Values)
        {
            command.Dispose();
        }

        _commands.Clear();
    }
}
