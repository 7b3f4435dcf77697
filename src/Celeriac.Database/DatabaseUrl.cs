using System.Globalization;
using Celeriac.Results;

namespace Celeriac.Database;

/// <summary>The engines behind Celery's <c>db+...</c> URLs.</summary>
internal enum DatabaseEngine
{
    PostgreSql,
    MySql,
    Sqlite,
}

/// <summary>A <c>db+engine[+driver]://user:password@host:port/database</c> URL read as SQLAlchemy reads it.</summary>
internal sealed record DatabaseUrl(DatabaseEngine Engine, string? Host, int? Port, string? User, string? Password, string? Database, string? FilePath)
{
    public static DatabaseUrl Parse(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        string scheme = url.Scheme.ToLowerInvariant();
        string dialect = (scheme.StartsWith("db+", StringComparison.Ordinal) ? scheme[3..] : scheme).Split('+')[0];
        DatabaseEngine engine = dialect switch
        {
            "postgresql" or "postgres" => DatabaseEngine.PostgreSql,
            "mysql" or "mariadb" => DatabaseEngine.MySql,
            "sqlite" => DatabaseEngine.Sqlite,
            _ => throw new ImproperlyConfiguredException($"The database result backend does not know the engine '{dialect}' of {UrlText.Mask(url)}: use db+postgresql://, db+mysql://, db+mariadb:// or db+sqlite:///."),
        };
        if (engine == DatabaseEngine.Sqlite)
        {
            return new DatabaseUrl(engine, null, null, null, null, null, UrlText.FilePath(url));
        }

        string? user = null, password = null;
        if (url.UserInfo.Length > 0)
        {
            string[] parts = url.UserInfo.Split(':', 2);
            user = Uri.UnescapeDataString(parts[0]);
            password = parts.Length > 1 ? Uri.UnescapeDataString(parts[1]) : null;
        }

        string database = Uri.UnescapeDataString(url.AbsolutePath.TrimStart('/'));
        return new DatabaseUrl(engine, url.Host.Length > 0 ? url.Host : "localhost", url.Port > 0 ? url.Port : null, user, password, database.Length > 0 ? database : null, null);
    }

    /// <summary>An ADO.NET connection string for the engine's driver; a network engine gives up a connect after <paramref name="connectTimeoutSeconds"/>.</summary>
    public string ConnectionString(int poolSize, int connectTimeoutSeconds = 15)
    {
        switch (Engine)
        {
            case DatabaseEngine.PostgreSql:
                {
                    var b = new Npgsql.NpgsqlConnectionStringBuilder { Host = Host, Port = Port ?? 5432, Username = User, Password = Password, Database = Database, MaxPoolSize = poolSize, Timeout = connectTimeoutSeconds };
                    return b.ConnectionString;
                }

            case DatabaseEngine.MySql:
                {
                    var b = new MySqlConnector.MySqlConnectionStringBuilder { Server = Host, Port = (uint)(Port ?? 3306), UserID = User, Password = Password, Database = Database, MaximumPoolSize = (uint)poolSize, AllowUserVariables = false, ConnectionTimeout = (uint)connectTimeoutSeconds };
                    return b.ConnectionString;
                }

            default:
                {
                    var b = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder { DataSource = FilePath, Pooling = true, DefaultTimeout = 30 };
                    return b.ConnectionString;
                }
        }
    }

    public override string ToString() => Engine == DatabaseEngine.Sqlite
        ? "sqlite:" + FilePath
        : string.Create(CultureInfo.InvariantCulture, $"{Engine}://{User}@{Host}:{Port}/{Database}");
}
