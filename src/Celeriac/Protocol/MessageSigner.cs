using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Celeriac.Transport;

namespace Celeriac.Protocol;

/// <summary>
/// Celery's <c>auth</c> serializer (<c>celery.security.serialization.SecureSerializer</c>, Celery 5.2.6): a task body
/// is serialized as JSON, the JSON bytes are signed with the sender's RSA key (PSS, MGF1, longest salt, digest
/// <c>sha256</c> by default), and the message carries
/// <c>base64(signer \x00\x01 signature \x00\x01 content_type \x00\x01 content_encoding \x00\x01 body)</c> with the
/// content type <c>application/data</c>, where signer is the certificate's issuer and serial number. A receiver
/// verifies the signature with the signer's certificate from its <see cref="CertificateStore"/> before it reads the
/// body. Signing authenticates the sender; it does not encrypt anything.
/// </summary>
public sealed class MessageSigner : IDisposable
{
    /// <summary>The content type of a signed message, as Celery 5.2.6 registers the <c>auth</c> serializer.</summary>
    public const string ContentType = "application/data";

    private static ReadOnlySpan<byte> Separator => "\x00\x01"u8;

    private readonly RsaPrivate? _key;
    private readonly byte[]? _signer;
    private readonly CertificateStore _store;
    private readonly HashAlgorithmName _digest;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, RSAParameters> _publicKeys = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>
    /// Creates a signer. <paramref name="keyPem"/> (an RSA private key: PKCS#1 <c>RSA PRIVATE KEY</c>, PKCS#8
    /// <c>PRIVATE KEY</c>, or <c>ENCRYPTED PRIVATE KEY</c> with <paramref name="keyPassword"/>) and
    /// <paramref name="certificatePem"/> (its X.509 certificate) sign; <paramref name="store"/> verifies (the signer
    /// owns it from now on). Without a key and certificate it only verifies.
    /// </summary>
    public MessageSigner(string? keyPem, string? keyPassword, string? certificatePem, CertificateStore store, string digest = "sha256", TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _digest = Digest(digest);
        _time = time ?? TimeProvider.System;
        if (keyPem is null != certificatePem is null)
        {
            throw new MessageSecurityException("Signing needs both a private key and its certificate");
        }

        if (keyPem is not null)
        {
            _key = ReadKey(keyPem, keyPassword);
            using X509Certificate2 cert = CertificateStore.ReadPem(certificatePem!, "the signing certificate");
            using RSA pub = cert.GetRSAPublicKey()!;
            if (!pub.ExportParameters(false).Modulus.AsSpan().SequenceEqual(_key.N.ToByteArray(isUnsigned: true, isBigEndian: true)))
            {
                throw new MessageSecurityException("The private key does not belong to the signing certificate");
            }

            _signer = Encoding.UTF8.GetBytes(CertificateStore.SignerId(cert));
        }
    }

    /// <summary>Whether this signer has a key to sign with (else it only verifies).</summary>
    public bool CanSign => _key is not null;

    /// <summary>The id this signer writes (<c>issuer serial</c>), or <see langword="null"/> when it only verifies.</summary>
    public string? SignerId => _signer is null ? null : Encoding.UTF8.GetString(_signer);

    /// <summary>Whether a message is signed (its content type is <see cref="ContentType"/>).</summary>
    public static bool IsSigned(TransportMessage message) =>
        message?.ContentType.Equals(ContentType, StringComparison.OrdinalIgnoreCase) ?? throw new ArgumentNullException(nameof(message));

    /// <summary>The signed form of a message: the body and its content type and encoding go inside the envelope.</summary>
    public TransportMessage Sign(TransportMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (_key is null)
        {
            throw new InvalidOperationException("This signer has no private key: it can verify, not sign.");
        }

        ReadOnlySpan<byte> body = message.Body.Span;
        byte[] signature = RsaPss.Sign(_key, body, _digest);
        byte[] contentType = Encoding.UTF8.GetBytes(message.ContentType);
        byte[] contentEncoding = Encoding.UTF8.GetBytes(message.ContentEncoding);
        byte[] fields = new byte[_signer!.Length + signature.Length + contentType.Length + contentEncoding.Length + body.Length + (4 * Separator.Length)];
        var w = new Span<byte>(fields);
        int at = 0;
        Put(w, ref at, _signer, true);
        Put(w, ref at, signature, true);
        Put(w, ref at, contentType, true);
        Put(w, ref at, contentEncoding, true);
        Put(w, ref at, body, false);
        return message with { Body = Encoding.ASCII.GetBytes(Convert.ToBase64String(fields)), ContentType = ContentType, ContentEncoding = "utf-8" };

        static void Put(Span<byte> w, ref int at, ReadOnlySpan<byte> part, bool separator)
        {
            part.CopyTo(w[at..]);
            at += part.Length;
            if (separator)
            {
                Separator.CopyTo(w[at..]);
                at += Separator.Length;
            }
        }
    }

    /// <summary>
    /// Verifies a signed message and gives it back with the body, content type and encoding that were signed. Never
    /// throws for bad input: <see langword="false"/> with a one-line reason (unsigned, not an envelope, unknown signer,
    /// expired certificate, bad signature).
    /// </summary>
    public bool TryVerify(TransportMessage message, out TransportMessage? verified, out string? error)
    {
        ArgumentNullException.ThrowIfNull(message);
        verified = null;
        if (!IsSigned(message))
        {
            error = $"unsigned message (content type '{message.ContentType}'): this worker accepts only messages signed with Celery's auth serializer ({ContentType})";
            return false;
        }

        byte[] raw;
        try
        {
            raw = Convert.FromBase64String(Encoding.ASCII.GetString(message.Body.Span));
        }
        catch (FormatException)
        {
            error = "the signed envelope is not base64";
            return false;
        }

        int first = raw.AsSpan().IndexOf(Separator);
        if (first < 0)
        {
            error = "the signed envelope has no signer field";
            return false;
        }

        string signer = Encoding.UTF8.GetString(raw, 0, first);
        X509Certificate2? cert = _store.Find(signer) ?? Refreshed(signer);
        if (cert is null)
        {
            error = $"Unknown certificate: '{signer}' is not in the trusted certificate store";
            return false;
        }

        if (_time.GetUtcNow() >= cert.NotAfter.ToUniversalTime())
        {
            error = $"Expired certificate: '{signer}' (not valid after {cert.NotAfter.ToUniversalTime():u})";
            return false;
        }

        RSAParameters key = PublicKey(signer, cert);

        // As Celery's _unpack: the signature's length is the signer's key size in bytes, then split the rest.
        int sigLength = key.Modulus!.Length;
        int sigStart = first + Separator.Length;
        int sigEnd = sigStart + sigLength;
        if (sigEnd + Separator.Length > raw.Length)
        {
            error = $"the signed envelope is too short for a signature by '{signer}'";
            return false;
        }

        ReadOnlySpan<byte> rest = raw.AsSpan(sigEnd + Separator.Length);
        if (!Split(ref rest, out ReadOnlySpan<byte> contentType) || !Split(ref rest, out ReadOnlySpan<byte> contentEncoding))
        {
            error = "the signed envelope lacks its content type or encoding";
            return false;
        }

        int end = rest.IndexOf(Separator);
        ReadOnlySpan<byte> body = end < 0 ? rest : rest[..end];
        if (!RsaPss.Verify(key, body, raw.AsSpan(sigStart, sigLength), _digest))
        {
            error = $"Bad signature: the body does not match the signature of '{signer}'";
            return false;
        }

        verified = message with
        {
            Body = body.ToArray(),
            ContentType = Encoding.UTF8.GetString(contentType),
            ContentEncoding = Encoding.UTF8.GetString(contentEncoding),
        };
        error = null;
        return true;

        static bool Split(ref ReadOnlySpan<byte> rest, out ReadOnlySpan<byte> field)
        {
            int i = rest.IndexOf(Separator);
            if (i < 0)
            {
                field = default;
                return false;
            }

            field = rest[..i];
            rest = rest[(i + Separator.Length)..];
            return true;
        }
    }

    /// <summary>
    /// The store read again for an unknown signer, at most once per <see cref="RefreshInterval"/> so that a flood of
    /// made-up signers costs no more than one folder read per interval.
    /// </summary>
    private X509Certificate2? Refreshed(string signer)
    {
        DateTimeOffset now = _time.GetUtcNow();
        lock (_gate)
        {
            if (now - _lastRefresh < RefreshInterval)
            {
                return null;
            }

            _lastRefresh = now;
        }

        _store.Refresh(_time);
        return _store.Find(signer);
    }

    /// <summary>The least time between two reads of the store for unknown signers. <value>5 seconds</value></summary>
    public static TimeSpan RefreshInterval { get; } = TimeSpan.FromSeconds(5);

    private DateTimeOffset _lastRefresh = DateTimeOffset.MinValue;

    private RSAParameters PublicKey(string signer, X509Certificate2 cert)
    {
        lock (_gate)
        {
            if (!_publicKeys.TryGetValue(signer, out RSAParameters key))
            {
                using RSA rsa = cert.GetRSAPublicKey()!;
                key = rsa.ExportParameters(false);
                _publicKeys[signer] = key;
            }

            return key;
        }
    }

    /// <summary>Celery's <c>security_digest</c> names (<c>sha256</c>, <c>sha1</c>, <c>sha384</c>, <c>sha512</c>), any case.</summary>
    public static HashAlgorithmName Digest(string name) => name?.ToUpperInvariant().Replace("-", "", StringComparison.Ordinal) switch
    {
        "SHA256" => HashAlgorithmName.SHA256,
        "SHA1" => HashAlgorithmName.SHA1,
        "SHA384" => HashAlgorithmName.SHA384,
        "SHA512" => HashAlgorithmName.SHA512,
        _ => throw new MessageSecurityException($"Unknown digest '{name}' (known: sha256, sha1, sha384, sha512)"),
    };

    private static RsaPrivate ReadKey(string pem, string? password)
    {
        using var rsa = RSA.Create();
        try
        {
            if (pem.Contains("ENCRYPTED PRIVATE KEY", StringComparison.Ordinal))
            {
                if (string.IsNullOrEmpty(password))
                {
                    throw new MessageSecurityException("Invalid private key: it is encrypted and no key password is set (SecurityKeyPassword)");
                }

                rsa.ImportFromEncryptedPem(pem, password);
            }
            else if (pem.Contains("Proc-Type: 4,ENCRYPTED", StringComparison.Ordinal))
            {
                throw new MessageSecurityException("Invalid private key: legacy OpenSSL-encrypted PEM (Proc-Type: 4,ENCRYPTED) is not supported; convert it with 'openssl pkcs8 -topk8'");
            }
            else
            {
                rsa.ImportFromPem(pem);
            }

            return new RsaPrivate(rsa.ExportParameters(true));
        }
        catch (CryptographicException ex)
        {
            throw new MessageSecurityException($"Invalid private key: {ex.Message}", ex);
        }
        catch (ArgumentException ex)
        {
            throw new MessageSecurityException($"Invalid private key: {ex.Message}", ex);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _key?.Native?.Dispose();
        _store.Dispose();
    }
}
