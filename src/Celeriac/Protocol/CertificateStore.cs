using System.Collections.Concurrent;
using System.Formats.Asn1;
using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Celeriac.Protocol;

/// <summary>
/// The certificates whose signatures a receiver trusts, each under its id (issuer and serial number), as Celery's
/// <c>CertStore</c>. <see cref="Load"/> reads a folder or a glob of PEM files as Celery's <c>FSCertStore</c> does
/// (<c>security_cert_store</c>); a certificate is trusted because it is in the store, not through a chain.
/// </summary>
public sealed class CertificateStore : IDisposable
{
    private readonly ConcurrentDictionary<string, X509Certificate2> _certificates = new(StringComparer.Ordinal);
    private readonly Lock _refreshGate = new();
    private string? _path;

    /// <summary>The ids of the certificates held.</summary>
    public IReadOnlyCollection<string> Ids => [.. _certificates.Keys];

    /// <summary>
    /// Reads every file <paramref name="path"/> names: a folder (all its files) or a glob (<c>/etc/certs/*.pem</c>;
    /// <c>*</c> and <c>?</c>, in any part). As Celery: a file that is not a PEM certificate, an expired certificate (at
    /// <paramref name="time"/>'s now) and two certificates with one id are errors, naming the file.
    /// </summary>
    public static CertificateStore Load(string path, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        time ??= TimeProvider.System;
        var store = new CertificateStore { _path = path };
        try
        {
            foreach (string file in Expand(Directory.Exists(path) ? Path.Combine(path, "*") : path))
            {
                X509Certificate2 cert = ReadPem(File.ReadAllText(file), file);
                DateTime notAfter = cert.NotAfter.ToUniversalTime();
                if (time.GetUtcNow() >= notAfter)
                {
                    string id = SignerId(cert);
                    cert.Dispose();
                    throw new MessageSecurityException($"Expired certificate: '{id}' ({file}, not valid after {notAfter:u})");
                }

                store.Add(cert, file);
            }
        }
        catch
        {
            store.Dispose();
            throw;
        }

        return store;
    }

    /// <summary>
    /// Reads the folder or glob it was loaded from again and adds the certificates that are new there (a certificate put
    /// in the store after the start is trusted without a restart); files that are not certificates, expired ones and
    /// ids already held are skipped. Returns how many were added. Not in Celery, which reads its store once.
    /// </summary>
    public int Refresh(TimeProvider? time = null)
    {
        if (_path is null)
        {
            return 0;
        }

        time ??= TimeProvider.System;
        lock (_refreshGate)
        {
            int added = 0;
            foreach (string file in Expand(Directory.Exists(_path) ? Path.Combine(_path, "*") : _path))
            {
                X509Certificate2 cert;
                try
                {
                    cert = ReadPem(File.ReadAllText(file), file);
                }
                catch (Exception ex) when (ex is MessageSecurityException or IOException or UnauthorizedAccessException)
                {
                    continue;
                }

                if (time.GetUtcNow() >= cert.NotAfter.ToUniversalTime() || !_certificates.TryAdd(SignerId(cert), cert))
                {
                    cert.Dispose();
                    continue;
                }

                added++;
            }

            return added;
        }
    }

    /// <summary>Adds a certificate (the store owns it from now on).</summary>
    public void Add(X509Certificate2 certificate) => Add(certificate, null);

    private void Add(X509Certificate2 certificate, string? file)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        string id = SignerId(certificate);
        if (!_certificates.TryAdd(id, certificate))
        {
            certificate.Dispose();
            throw new MessageSecurityException($"Duplicate certificate: '{id}'{(file is null ? "" : $" ({file})")}");
        }
    }

    /// <summary>The certificate with this id, or <see langword="null"/>.</summary>
    public X509Certificate2? Find(string id) => _certificates.GetValueOrDefault(id);

    /// <summary>Reads the first certificate of a PEM text; a clear error (naming <paramref name="source"/>) otherwise.</summary>
    public static X509Certificate2 ReadPem(string pem, string source)
    {
        ArgumentNullException.ThrowIfNull(pem);
        try
        {
            X509Certificate2 cert = X509Certificate2.CreateFromPem(pem);
            if (cert.GetRSAPublicKey() is not { } rsa)
            {
                cert.Dispose();
                throw new MessageSecurityException($"Invalid certificate: {source} has no RSA public key (Celery signs with RSA)");
            }

            rsa.Dispose();
            return cert;
        }
        catch (CryptographicException ex)
        {
            throw new MessageSecurityException($"Invalid certificate: {source} is not a PEM X.509 certificate ({ex.Message})", ex);
        }
        catch (ArgumentException ex)
        {
            throw new MessageSecurityException($"Invalid certificate: {source} is not a PEM X.509 certificate ({ex.Message})", ex);
        }
    }

    /// <summary>
    /// A certificate's id as Celery writes it in the <c>signer</c> field: the values of the issuer's attributes in the
    /// order they are encoded, joined by spaces, then a space and the serial number in decimal.
    /// </summary>
    public static string SignerId(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var values = new List<string>();
        var name = new AsnReader(certificate.IssuerName.RawData, AsnEncodingRules.DER);
        AsnReader rdns = name.ReadSequence();
        while (rdns.HasData)
        {
            AsnReader set = rdns.ReadSetOf();
            while (set.HasData)
            {
                AsnReader attribute = set.ReadSequence();
                attribute.ReadObjectIdentifier();
                values.Add(ReadValue(attribute));
            }
        }

        var serial = new BigInteger(certificate.SerialNumberBytes.Span, isUnsigned: false, isBigEndian: true);
        return $"{string.Join(' ', values)} {serial.ToString(CultureInfo.InvariantCulture)}";
    }

    private static string ReadValue(AsnReader attribute)
    {
        Asn1Tag tag = attribute.PeekTag();
        if (tag.TagClass == TagClass.Universal)
        {
            switch ((UniversalTagNumber)tag.TagValue)
            {
                case UniversalTagNumber.UTF8String:
                case UniversalTagNumber.PrintableString:
                case UniversalTagNumber.IA5String:
                case UniversalTagNumber.BMPString:
                case UniversalTagNumber.NumericString:
                case UniversalTagNumber.VisibleString:
                case UniversalTagNumber.T61String:
                case UniversalTagNumber.UniversalString:
                    return attribute.ReadCharacterString((UniversalTagNumber)tag.TagValue);
            }
        }

        return Convert.ToHexString(attribute.ReadEncodedValue().Span);
    }

    /// <summary>Python's <c>glob.glob</c> for <c>*</c> and <c>?</c>: every existing path that matches, sorted.</summary>
    private static IEnumerable<string> Expand(string pattern)
    {
        string full = Path.GetFullPath(pattern);
        string root = Path.GetPathRoot(full) ?? "/";
        string[] parts = full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        var current = new List<string> { root };
        for (int i = 0; i < parts.Length; i++)
        {
            bool last = i == parts.Length - 1;
            var next = new List<string>();
            foreach (string dir in current)
            {
                if (parts[i].AsSpan().IndexOfAny('*', '?') < 0)
                {
                    string p = Path.Combine(dir, parts[i]);
                    if (last ? File.Exists(p) : Directory.Exists(p))
                    {
                        next.Add(p);
                    }
                }
                else if (Directory.Exists(dir))
                {
                    // As Python's glob: a wildcard does not match a leading dot.
                    next.AddRange((last ? Directory.EnumerateFiles(dir, parts[i]) : Directory.EnumerateDirectories(dir, parts[i]))
                        .Where(p => !Path.GetFileName(p).StartsWith('.') || parts[i].StartsWith('.')));
                }
            }

            current = next;
        }

        return current.Order(StringComparer.Ordinal);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (X509Certificate2 cert in _certificates.Values)
        {
            cert.Dispose();
        }

        _certificates.Clear();
    }
}

/// <summary>A message signing problem (Celery's <c>SecurityError</c>): a bad key or certificate, or a message that fails verification.</summary>
public sealed class MessageSecurityException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MessageSecurityException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public MessageSecurityException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public MessageSecurityException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
