using System.Globalization;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace Celeriac;

/// <summary>How strictly a TLS client checks the server's certificate (Python's <c>ssl.CERT_*</c>).</summary>
public enum TlsVerification
{
    /// <summary>The certificate must chain to a trusted CA and name the host (<c>CERT_REQUIRED</c>; the default).</summary>
    Required,

    /// <summary>Any certificate is accepted (<c>CERT_NONE</c>): the connection is encrypted but the server is not authenticated.</summary>
    None,
}

/// <summary>
/// The TLS settings of a <c>rediss://</c> or <c>amqps://</c> URL, read from its query with the names kombu, redis-py and
/// Celery's <c>broker_use_ssl</c> use: <c>ssl_cert_reqs=required|optional|none</c> (or <c>CERT_REQUIRED</c>, ...),
/// <c>ssl_ca_certs=/ca.pem</c>, <c>ssl_certfile=/client.pem</c>, <c>ssl_keyfile=/client-key.pem</c> and
/// <c>ssl_check_hostname=false</c> (each also without its <c>ssl_</c> prefix). The server's certificate is verified by
/// default; a failed verification is remembered so that the provider can say why it could not connect.
/// </summary>
public sealed class BrokerTls
{
    // OpenSSL's names of the TLS alerts a server sends when it refuses the client's certificate (or its absence).
    private static readonly string[] s_alerts =
        ["alert certificate required", "alert bad certificate", "alert unknown ca", "alert certificate unknown", "alert handshake failure", "alert certificate expired", "alert access denied"];

    private static readonly TimeSpan s_failureRelevance = TimeSpan.FromMinutes(1);
    private readonly X509Certificate2Collection? _trusted;
    private readonly Lock _gate = new();
    private TaskCompletionSource _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? _failure;
    private long _failedAt;
    private string? _unansweredIssuers;
    private long _requestedAt;

    private BrokerTls(string display, string host, TlsVerification verification, bool checkHostName, X509Certificate2Collection? trusted, X509Certificate2? clientCertificate, string? caFile)
    {
        Display = display;
        Host = host;
        Verification = verification;
        CheckHostName = checkHostName;
        _trusted = trusted;
        ClientCertificate = clientCertificate;
        CaFile = caFile;
    }

    /// <summary>The URL, password masked.</summary>
    public string Display { get; }

    /// <summary>The host name the certificate must name.</summary>
    public string Host { get; }

    /// <summary>Whether the server's certificate is verified.</summary>
    public TlsVerification Verification { get; }

    /// <summary>Whether the certificate must name <see cref="Host"/> (redis-py's <c>ssl_check_hostname</c>; on unless set to false).</summary>
    public bool CheckHostName { get; }

    /// <summary>The CA file the server's certificate must chain to, instead of the system's trust store.</summary>
    public string? CaFile { get; }

    /// <summary>The client certificate with its private key (<c>ssl_certfile</c> and <c>ssl_keyfile</c>), if given.</summary>
    public X509Certificate2? ClientCertificate { get; }

    /// <summary>Why the last handshake failed, when it failed within the last minute and none succeeded since.</summary>
    public string? RecentFailure
    {
        get
        {
            lock (_gate)
            {
                return _failure is not null && TimeSpan.FromMilliseconds(Environment.TickCount64 - _failedAt) < s_failureRelevance ? _failure : null;
            }
        }
    }

    /// <summary>A task that completes when a handshake fails (now, if the last one failed).</summary>
    public Task Failed
    {
        get
        {
            lock (_gate)
            {
                return _failed.Task;
            }
        }
    }

    /// <summary>
    /// The URL with TLS options given apart from it (Celery's <c>broker_use_ssl</c>, <c>redis_backend_use_ssl</c>):
    /// <c>redis://</c> becomes <c>rediss://</c> and <c>amqp://</c> <c>amqps://</c>, and each option the query does not
    /// give already is added to it. No options: the URL as it is. Throws <see cref="CeleriacConfigurationException"/>,
    /// naming <paramref name="setting"/>, for a URL that has no TLS form.
    /// </summary>
    public static string WithOptions(string url, IEnumerable<KeyValuePair<string, string>> options, string setting)
    {
        ArgumentNullException.ThrowIfNull(url);
        ArgumentNullException.ThrowIfNull(options);
        KeyValuePair<string, string>[] given = [.. options];
        if (given.Length == 0)
        {
            return url;
        }

        int colon = url.IndexOf("://", StringComparison.Ordinal);
        string scheme = colon < 0 ? "" : url[..colon].ToLowerInvariant();
        string secure = scheme switch
        {
            "redis" or "rediss" => "rediss",
            "amqp" or "amqps" => "amqps",
            _ => throw new CeleriacConfigurationException(
                $"{setting} turns TLS on for redis:// and amqp:// URLs, not for '{UrlText.Mask(url)}'" +
                (scheme is "postgresql" or "postgres" ? "; for PostgreSQL set sslmode (and its certificate options) in the URL." : "."))
        };

        static string Key(string key) => key.StartsWith("ssl_", StringComparison.OrdinalIgnoreCase) ? key[4..].ToLowerInvariant() : key.ToLowerInvariant();
        int question = url.IndexOf('?', colon);
        var present = new HashSet<string>(StringComparer.Ordinal);
        if (question >= 0)
        {
            foreach (string pair in url[(question + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                present.Add(Key(Uri.UnescapeDataString(pair.Split('=', 2)[0])));
            }
        }

        var text = new System.Text.StringBuilder(secure).Append(url, colon, url.Length - colon);
        char separator = question >= 0 ? '&' : '?';
        foreach ((string key, string value) in given)
        {
            if (present.Add(Key(key)))
            {
                text.Append(separator).Append(Uri.EscapeDataString("ssl_" + Key(key))).Append('=').Append(Uri.EscapeDataString(value));
                separator = '&';
            }
        }

        return text.ToString();
    }

    /// <summary>
    /// Reads the TLS settings of <paramref name="url"/>; throws <see cref="CeleriacConfigurationException"/> for a bad
    /// value or a file that cannot be read, naming the option.
    /// </summary>
    public static BrokerTls FromUrl(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        string display = UrlText.Mask(url);
        Dictionary<string, string> query = new(StringComparer.OrdinalIgnoreCase);
        foreach (string pair in url.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] kv = pair.Split('=', 2);
            string key = Uri.UnescapeDataString(kv[0]);
            query[key.StartsWith("ssl_", StringComparison.OrdinalIgnoreCase) ? key[4..] : key] = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "";
        }

        TlsVerification verification = query.TryGetValue("cert_reqs", out string? reqs)
            ? reqs.ToUpperInvariant() switch
            {
                // Python: in a client, optional is required. The numbers are ssl.CERT_*'s values, as a config file holds them.
                "REQUIRED" or "CERT_REQUIRED" or "OPTIONAL" or "CERT_OPTIONAL" or "2" or "1" => TlsVerification.Required,
                "NONE" or "CERT_NONE" or "0" => TlsVerification.None,
                _ => throw new CeleriacConfigurationException($"'{display}': ssl_cert_reqs must be required, optional or none (CERT_REQUIRED, CERT_OPTIONAL, CERT_NONE), not '{reqs}'."),
            }
            : TlsVerification.Required;

        bool checkHostName = !query.TryGetValue("check_hostname", out string? check) || check.ToUpperInvariant() switch
        {
            "TRUE" or "1" or "YES" or "ON" => true,
            "FALSE" or "0" or "NO" or "OFF" => false,
            _ => throw new CeleriacConfigurationException($"'{display}': ssl_check_hostname must be true or false, not '{check}'."),
        };

        string? caFile = query.GetValueOrDefault("ca_certs") is { Length: > 0 } ca ? ca : null;
        X509Certificate2Collection? trusted = null;
        if (caFile is not null)
        {
            trusted = [];
            try
            {
                trusted.ImportFromPemFile(caFile);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
            {
                throw new CeleriacConfigurationException($"'{display}': ssl_ca_certs '{caFile}' cannot be read as PEM certificates: {e.Message}", e);
            }

            if (trusted.Count == 0)
            {
                throw new CeleriacConfigurationException($"'{display}': ssl_ca_certs '{caFile}' holds no PEM certificate (-----BEGIN CERTIFICATE-----).");
            }
        }

        X509Certificate2? client = null;
        string? certFile = query.GetValueOrDefault("certfile") is { Length: > 0 } c ? c : null;
        string? keyFile = query.GetValueOrDefault("keyfile") is { Length: > 0 } k ? k : null;
        if (certFile is null && keyFile is not null)
        {
            throw new CeleriacConfigurationException($"'{display}': ssl_keyfile is set without ssl_certfile; give the client certificate too.");
        }

        if (certFile is not null)
        {
            client = LoadClientCertificate(certFile, keyFile, display);
        }

        string host = url.Host.Trim('[', ']');
        return new BrokerTls(display, host, verification, checkHostName, trusted, client, caFile);
    }

    /// <summary>
    /// Checks the server's certificate as the settings say (a handshake's validation callback); a rejection is
    /// remembered with its reason (<see cref="RecentFailure"/>).
    /// </summary>
    public bool Validate(X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (Verification == TlsVerification.None)
        {
            return Succeeded();
        }

        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return Reject("the server sent no certificate");
        }

        if (CheckHostName && errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
        {
            return Reject(string.Create(CultureInfo.InvariantCulture, $"the server's certificate ({certificate.Subject}) does not name the host '{Host}' (set ssl_check_hostname=false to accept it anyway)"));
        }

        if (_trusted is null)
        {
            return errors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors)
                ? Reject($"the server's certificate ({certificate.Subject}, issued by {certificate.Issuer}) is not trusted by this machine ({ChainStatus(chain)}); set ssl_ca_certs=/path/to/ca.pem in the URL to trust the CA that issued it")
                : Succeeded();
        }

        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_trusted);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain is not null)
        {
            // Intermediates the server sent along.
            foreach (X509ChainElement element in chain.ChainElements)
            {
                custom.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        using X509Certificate2 leaf = new(certificate);
        return custom.Build(leaf)
            ? Succeeded()
            : Reject($"the server's certificate ({certificate.Subject}, issued by {certificate.Issuer}) does not chain to a CA of ssl_ca_certs '{CaFile}' ({ChainStatus(custom)}); give the CA that issued it");
    }

    /// <summary>
    /// The client certificate to show (a handshake's selection callback). A request the server makes while none is set is
    /// remembered: TLS 1.3 servers refuse its absence only after the client's side of the handshake, by closing.
    /// </summary>
    public X509Certificate? SelectClientCertificate(X509Certificate? remote, string[] acceptableIssuers)
    {
        ArgumentNullException.ThrowIfNull(acceptableIssuers);

        // .NET asks once before the handshake (no server certificate yet) and again when the server requests one.
        if (remote is not null && ClientCertificate is null)
        {
            lock (_gate)
            {
                _unansweredIssuers = acceptableIssuers.Length == 0 ? "any CA" : string.Join("; ", acceptableIssuers);
                _requestedAt = Environment.TickCount64;
            }
        }

        return ClientCertificate;
    }

    /// <summary>
    /// The clear error for <paramref name="exception"/> when it (or a handshake shortly before it) was a TLS failure:
    /// a <see cref="CeleriacConfigurationException"/> naming the broker, the reason and what to set; otherwise null.
    /// With <paramref name="closedMeansRefused"/> (the error of a fresh connect, whose TCP connection was accepted), a
    /// connection the server closed counts as a refused handshake too: some servers close without a TLS alert.
    /// </summary>
    public CeleriacConfigurationException? Explain(Exception exception, bool closedMeansRefused = false)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (RecentError(exception) is { } recent)
        {
            return recent;
        }

        string? unanswered = UnansweredRequest();
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            // A refused handshake: at once (TLS 1.2), or on the first read or write after it (TLS 1.3 checks the
            // client's certificate after the client has finished its side), as an alert or as a closed connection.
            if (e is AuthenticationException || s_alerts.Any(a => e.Message.Contains(a, StringComparison.OrdinalIgnoreCase))
                || closedMeansRefused && ClosedByTheServer(e))
            {
                return Refused(Innermost(e), exception, unanswered);
            }
        }

        return null;
    }

    /// <summary>
    /// The clear error when the server asked for a client certificate within the last minute and none is set: the
    /// cause of a connection that it then dropped, whatever form the drop took on the client's side; otherwise null.
    /// </summary>
    public CeleriacConfigurationException? MissingClientCertificate(Exception cause)
    {
        ArgumentNullException.ThrowIfNull(cause);
        return UnansweredRequest() is { } issuers ? Refused(Innermost(cause), cause, issuers) : null;
    }

    /// <summary>Notes that a connection over these settings was established: a client-certificate request before it was not refused.</summary>
    public void NoteConnected()
    {
        lock (_gate)
        {
            _unansweredIssuers = null;
        }
    }

    private CeleriacConfigurationException Refused(Exception reason, Exception cause, string? unansweredIssuers)
    {
        string hint = ClientCertificate is not null
            ? $"check that the server trusts the issuer of the client certificate ({ClientCertificate.Issuer})"
            : unansweredIssuers is not null
                ? $"it asked for a client certificate ({unansweredIssuers}) and none is set: set ssl_certfile and ssl_keyfile in the URL"
                : "if the server requires a client certificate, set ssl_certfile and ssl_keyfile in the URL";
        return new CeleriacConfigurationException($"TLS to '{Display}' failed: the server refused the handshake ({reason.Message}); {hint}.", cause);
    }

    // How a server's close shows on a client's first read or write: a reset, an end of stream, a failed TLS record
    // (OpenSSL's SSL_ERROR_SYSCALL when writing to a closed socket), or a broken pipe. The failed record is an
    // IOException of SslStream's, told by its Source or by its cause, a TLS library error of that assembly: its Source
    // alone is no sure sign (an IOException thrown through async code can name System.Private.CoreLib). Not by its
    // TargetSite, which trimming (NativeAOT) may strip.
    private static bool ClosedByTheServer(Exception e) =>
        e is System.Net.Sockets.SocketException
        {
            SocketErrorCode: System.Net.Sockets.SocketError.ConnectionReset or System.Net.Sockets.SocketError.ConnectionAborted or System.Net.Sockets.SocketError.Shutdown,
        }
        or EndOfStreamException
        || e is IOException && (string.Equals(e.Source, "System.Net.Security", StringComparison.Ordinal)
            || e.InnerException?.GetType().Assembly == typeof(SslStream).Assembly);

    private string? UnansweredRequest()
    {
        lock (_gate)
        {
            return _unansweredIssuers is not null && TimeSpan.FromMilliseconds(Environment.TickCount64 - _requestedAt) < s_failureRelevance ? _unansweredIssuers : null;
        }
    }

    /// <summary>The clear error of the last handshake, when it failed within the last minute and none succeeded since.</summary>
    public CeleriacConfigurationException? RecentError(Exception? cause = null) =>
        RecentFailure is not { } failure ? null
        : cause is null ? new CeleriacConfigurationException($"TLS to '{Display}' failed: {failure}.")
        : new CeleriacConfigurationException($"TLS to '{Display}' failed: {failure}.", cause);

    /// <summary>Remembers why a handshake failed (as the provider learns it from the client's error).</summary>
    public void NoteFailure(string reason)
    {
        lock (_gate)
        {
            _failure = reason;
            _failedAt = Environment.TickCount64;
            _failed.TrySetResult();
        }
    }

    private bool Succeeded()
    {
        lock (_gate)
        {
            _failure = null;
            if (_failed.Task.IsCompleted)
            {
                _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }

        return true;
    }

    private bool Reject(string reason)
    {
        NoteFailure(reason);
        return false;
    }

    private static string ChainStatus(X509Chain? chain) =>
        chain is null || chain.ChainStatus.Length == 0
            ? "no chain"
            : string.Join(", ", chain.ChainStatus.Select(s => s.Status.ToString()).Distinct());

    private static Exception Innermost(Exception e) => e.InnerException is null ? e : Innermost(e.InnerException);

    private static X509Certificate2 LoadClientCertificate(string certFile, string? keyFile, string display)
    {
        try
        {
            using X509Certificate2 pem = X509Certificate2.CreateFromPemFile(certFile, keyFile);

            // An ephemeral PEM key is not usable by SslStream on every platform: a PKCS#12 round trip makes it so.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            throw new CeleriacConfigurationException(
                $"'{display}': the client certificate ssl_certfile '{certFile}'{(keyFile is null ? " (with its key in the same file)" : $" with ssl_keyfile '{keyFile}'")} cannot be loaded: {e.Message}",
                e);
        }
    }
}
