using Celeriac.Protocol;
using Celeriac.Transport;

namespace Celeriac;

/// <summary>Message signing: Celery's <c>auth</c> serializer on the app's task messages.</summary>
public sealed partial class CeleriacApp
{
    private readonly Lock _signerGate = new();
    private MessageSigner? _signer;
    private volatile bool _signerLoaded;

    /// <summary>
    /// Turns message signing on, as Celery's <c>app.setup_security()</c>: the arguments given replace
    /// <see cref="CeleriacOptions.Security"/>'s, then the key, certificate and trusted store are read now, so that a bad
    /// file is an error here rather than at the first send. Call it before the first send or worker start.
    /// </summary>
    /// <exception cref="CeleriacConfigurationException">A setting is missing, or a file cannot be read or is not what it should be.</exception>
    public void SetupSecurity(string? key = null, string? certificate = null, string? certStore = null, string? digest = null, string? keyPassword = null)
    {
        SecurityOptions o = Options.Security;
        o.Key = key ?? o.Key;
        o.Certificate = certificate ?? o.Certificate;
        o.CertStore = certStore ?? o.CertStore;
        o.Digest = digest ?? o.Digest;
        o.KeyPassword = keyPassword ?? o.KeyPassword;
        lock (_signerGate)
        {
            _signer = LoadSigner(o);
            _signerLoaded = true;
        }

        if (_signer is null)
        {
            throw new CeleriacConfigurationException(MissingSettings);
        }
    }

    /// <summary>Whether this app signs the task messages it sends and its worker runs only signed ones.</summary>
    public bool SigningEnabled => Signer is not null;

    /// <summary>The signer when signing is on (read from the options on first use), else <see langword="null"/>.</summary>
    internal MessageSigner? Signer
    {
        get
        {
            if (_signerLoaded)
            {
                return _signer;
            }

            lock (_signerGate)
            {
                if (!_signerLoaded)
                {
                    _signer = LoadSigner(Options.Security);
                    _signerLoaded = true;
                }

                return _signer;
            }
        }
    }

    /// <summary>The message as it goes out: signed when signing is on, else as it is (no cost but a field read).</summary>
    internal TransportMessage SignIfOn(TransportMessage message) => Signer is { } signer ? signer.Sign(message) : message;

    /// <summary>
    /// Opens a remote-control message (a request or a reply) as Celery's mailbox accepts it: Celery sends them with its
    /// task serializer and accepts its accept_content, so with <c>setup_security()</c> they are signed (<c>auth</c>).
    /// With signing on, only a message whose signature verifies is opened; without, only an unsigned one.
    /// </summary>
    internal bool TryOpenControl(TransportMessage message, out TransportMessage? opened, out string? refusal)
    {
        if (Signer is { } signer)
        {
            return signer.TryVerify(message, out opened, out refusal);
        }

        if (MessageSigner.IsSigned(message))
        {
            opened = null;
            refusal = "it is signed, and message signing is not set up here (Security:Key, Security:Certificate, Security:CertStore)";
            return false;
        }

        opened = message;
        refusal = null;
        return true;
    }

    private const string MissingSettings =
        "Message signing needs all three of the security key (Security:Key, CELERIAC_SECURITY_KEY), the certificate " +
        "(Security:Certificate, CELERIAC_SECURITY_CERTIFICATE) and the trusted certificate store (Security:CertStore, " +
        "CELERIAC_SECURITY_CERT_STORE), as Celery's security_key, security_certificate and security_cert_store.";

    private MessageSigner? LoadSigner(SecurityOptions o)
    {
        if (!o.IsEnabled)
        {
            return null;
        }

        if (o.Key is not { Length: > 0 } || o.Certificate is not { Length: > 0 } || o.CertStore is not { Length: > 0 })
        {
            throw new CeleriacConfigurationException(MissingSettings);
        }

        try
        {
            string keyPem = File.ReadAllText(o.Key);
            string certPem = File.ReadAllText(o.Certificate);
            CertificateStore store = CertificateStore.Load(o.CertStore, Time);
            try
            {
                return new MessageSigner(keyPem, o.KeyPassword, certPem, store, o.Digest, Time);
            }
            catch
            {
                store.Dispose();
                throw;
            }
        }
        catch (Exception ex) when (ex is MessageSecurityException or IOException or UnauthorizedAccessException)
        {
            throw new CeleriacConfigurationException($"Message signing cannot start: {ex.Message}", ex);
        }
    }
}
