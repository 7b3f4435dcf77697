using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Celeriac.TestServers;

/// <summary>
/// Throwaway certificates in PEM files, as a team makes them for a private broker: a CA, a server certificate for
/// <c>127.0.0.1</c>/<c>localhost</c> and a client certificate both signed by it, and a second, unrelated CA (to trust the
/// wrong one). Made in process (no openssl needed) into a temp folder, deleted on dispose.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    private TestCertificates(string directory) => Directory = directory;

    /// <summary>The folder of the files.</summary>
    public string Directory { get; }

    /// <summary>The CA that signed the server and client certificates (PEM).</summary>
    public string CaFile => Path.Join(Directory, "ca.pem");

    /// <summary>A CA that signed nothing here (PEM).</summary>
    public string OtherCaFile => Path.Join(Directory, "other-ca.pem");

    /// <summary>The server certificate, for 127.0.0.1, ::1 and localhost (PEM).</summary>
    public string ServerCertFile => Path.Join(Directory, "server.pem");

    /// <summary>The server's private key (PKCS#8 PEM).</summary>
    public string ServerKeyFile => Path.Join(Directory, "server-key.pem");

    /// <summary>The client certificate (PEM).</summary>
    public string ClientCertFile => Path.Join(Directory, "client.pem");

    /// <summary>The client's private key (PKCS#8 PEM).</summary>
    public string ClientKeyFile => Path.Join(Directory, "client-key.pem");

    /// <summary>A client certificate signed by <see cref="OtherCaFile"/>'s CA, which the servers do not trust (PEM).</summary>
    public string StrangerCertFile => Path.Join(Directory, "stranger.pem");

    /// <summary>The stranger's private key (PKCS#8 PEM).</summary>
    public string StrangerKeyFile => Path.Join(Directory, "stranger-key.pem");

    /// <summary>Makes the certificates (valid from an hour ago for a day) in a new temp folder.</summary>
    public static TestCertificates Create()
    {
        string dir = Path.Combine(Path.GetTempPath(), "celeriac-tls-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(dir);
        var made = new TestCertificates(dir);
        DateTimeOffset from = TimeProvider.System.GetUtcNow().AddHours(-1);
        DateTimeOffset until = from.AddDays(1);

        using RSA caKey = RSA.Create(2048);
        using X509Certificate2 ca = MakeCa("CN=Celeriac Test CA", caKey, from, until);
        using RSA otherKey = RSA.Create(2048);
        using X509Certificate2 other = MakeCa("CN=Celeriac Unrelated CA", otherKey, from, until);
        WriteCertificate(made.CaFile, ca);
        WriteCertificate(made.OtherCaFile, other);

        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.IPv6Loopback);
        names.AddDnsName("localhost");
        MakeLeaf("CN=localhost", ca, caKey, names.Build(), serverAuth: true, from, until, made.ServerCertFile, made.ServerKeyFile);
        MakeLeaf("CN=celeriac-client", ca, caKey, null, serverAuth: false, from, until, made.ClientCertFile, made.ClientKeyFile);
        MakeLeaf("CN=stranger", other, otherKey, null, serverAuth: false, from, until, made.StrangerCertFile, made.StrangerKeyFile);
        return made;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A folder left in /tmp is harmless.
        }
    }

    private static X509Certificate2 MakeCa(string subject, RSA key, DateTimeOffset from, DateTimeOffset until)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(from, until);
    }

    private static void MakeLeaf(string subject, X509Certificate2 ca, RSA caKey, X509Extension? names, bool serverAuth, DateTimeOffset from, DateTimeOffset until, string certFile, string keyFile)
    {
        using RSA key = RSA.Create(2048);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [serverAuth ? new Oid("1.3.6.1.5.5.7.3.1") : new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        if (names is not null)
        {
            request.CertificateExtensions.Add(names);
        }

        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using X509Certificate2 leaf = request.Create(ca.SubjectName, X509SignatureGenerator.CreateForRSA(caKey, RSASignaturePadding.Pkcs1), from, until, serial);
        WriteCertificate(certFile, leaf);
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    private static void WriteCertificate(string file, X509Certificate2 certificate) => File.WriteAllText(file, certificate.ExportCertificatePem());
}
