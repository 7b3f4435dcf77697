namespace Celeriac;

/// <summary>
/// Message signing, Celery's <c>auth</c> serializer (<c>app.setup_security()</c>, Celery 5.2.6): when set, every task
/// message the app sends is signed with <see cref="Key"/> and <see cref="Certificate"/>, and a worker runs only task
/// messages signed by a certificate in <see cref="CertStore"/>. Results are not signed (as in Celery, whose
/// <c>result_serializer</c> stays <c>json</c>) and nothing is encrypted.
/// </summary>
public sealed class SecurityOptions
{
    /// <summary>Path of the PEM RSA private key (<c>CELERIAC_SECURITY_KEY</c>; Celery's <c>security_key</c>). <value>null: signing off</value></summary>
    public string? Key { get; set; }

    /// <summary>
    /// Password of an encrypted PKCS#8 key (<c>CELERIAC_SECURITY_KEY_PASSWORD</c>; Celery 5.3's <c>security_key_password</c>,
    /// which 5.2.6 lacks). <value>null</value>
    /// </summary>
    public string? KeyPassword { get; set; }

    /// <summary>Path of the PEM X.509 certificate of the key (<c>CELERIAC_SECURITY_CERTIFICATE</c>; <c>security_certificate</c>). <value>null</value></summary>
    public string? Certificate { get; set; }

    /// <summary>
    /// The trusted certificates (<c>CELERIAC_SECURITY_CERT_STORE</c>; <c>security_cert_store</c>): a folder, or a glob
    /// such as <c>/etc/celeriac/certs/*.pem</c>. A message is trusted when its signer's certificate is here. <value>null</value>
    /// </summary>
    public string? CertStore { get; set; }

    /// <summary>The digest (<c>CELERIAC_SECURITY_DIGEST</c>; <c>security_digest</c>): sha256, sha1, sha384 or sha512. <value>sha256</value></summary>
    public string Digest { get; set; } = "sha256";

    /// <summary>Whether any of key, certificate and store is set (then all three must be).</summary>
    public bool IsEnabled => Key is { Length: > 0 } || Certificate is { Length: > 0 } || CertStore is { Length: > 0 };
}
