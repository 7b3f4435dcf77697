using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Celeriac.Tests.Security;

/// <summary>
/// Keys and certificates for signing tests, made here (no openssl): a CA with a three-part name, senders it signed
/// ("alice", "bob") and a self-signed one ("mallory", as Celery's own test makes them), each as PEM files in a temporary
/// folder; <see cref="Store"/> holds the certificates of alice and bob only.
/// </summary>
public sealed class SigningKeys : IDisposable
{
    public SigningKeys()
    {
        Folder = Directory.CreateTempSubdirectory("celeriac-signing-").FullName;
        Directory.CreateDirectory(Store);
        DateTimeOffset now = TimeProvider.System.GetUtcNow();
        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("C=FR, O=Celeriac, CN=Celeriac Test CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using X509Certificate2 ca = caRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(30));
        Alice = Issue("alice", ca, now.AddDays(1), 2048, inStore: true);
        Bob = Issue("bob", ca, now.AddDays(1), 3072, inStore: true);
        Mallory = Issue("mallory", null, now.AddDays(1), 2048, inStore: false);
    }

    public string Folder { get; }

    /// <summary>The trusted store: a folder with alice's and bob's certificates.</summary>
    public string Store => Path.Combine(Folder, "store");

    public Identity Alice { get; }

    public Identity Bob { get; }

    /// <summary>Not in the store.</summary>
    public Identity Mallory { get; }

    /// <summary>A fresh identity with its own lifetime, written to <see cref="Folder"/> (and to the store when asked).</summary>
    public Identity Issue(string name, X509Certificate2? issuer, DateTimeOffset notAfter, int bits, bool inStore)
    {
        using var key = RSA.Create(bits);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        DateTimeOffset notBefore = TimeProvider.System.GetUtcNow().AddMinutes(-5);
        X509Certificate2 cert;
        if (issuer is null)
        {
            cert = request.CreateSelfSigned(notBefore, notAfter);
        }
        else
        {
            byte[] serial = RandomNumberGenerator.GetBytes(12);
            serial[0] &= 0x7F;
            using X509Certificate2 issued = request.Create(issuer, notBefore, notAfter > issuer.NotAfter ? issuer.NotAfter : notAfter, serial);
            cert = issued.CopyWithPrivateKey(key);
        }

        using (cert)
        {
            string keyPath = Path.Combine(Folder, name + ".key");
            string certPath = Path.Combine(Folder, name + ".pem");
            File.WriteAllText(keyPath, key.ExportRSAPrivateKeyPem());
            File.WriteAllText(certPath, cert.ExportCertificatePem());
            if (inStore)
            {
                File.Copy(certPath, Path.Combine(Store, name + ".pem"));
            }

            return new Identity(name, keyPath, certPath, key.ExportPkcs8PrivateKeyPem(), cert.ExportCertificatePem(), cert.NotAfter.ToUniversalTime());
        }
    }

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}

/// <summary>One sender: its key and certificate files and their PEM text.</summary>
public sealed record Identity(string Name, string KeyPath, string CertificatePath, string KeyPem, string CertificatePem, DateTime NotAfter);
