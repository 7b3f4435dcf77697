using System.Text;
using System.Text.Json;
using Celeriac.Protocol;
using Celeriac.Tests.Database;
using Celeriac.Transport;
using Microsoft.Extensions.Time.Testing;

namespace Celeriac.Tests.Security;

/// <summary>
/// Celery's <c>auth</c> serializer: what Celeriac signs verifies, what is tampered with, unknown or expired does not, and
/// the envelope is Celery 5.2.6's byte for byte in both directions (signed and verified by Celery's own
/// <c>SecureSerializer</c> under <c>/usr/bin/python3</c>).
/// </summary>
public sealed class MessageSignerTests(MessageSignerTests.Keys keys) : IClassFixture<MessageSignerTests.Keys>
{
    public sealed class Keys : IDisposable
    {
        public SigningKeys Value { get; } = new();

        public void Dispose() => Value.Dispose();
    }

    private SigningKeys K => keys.Value;

    private static readonly byte[] s_body = Encoding.UTF8.GetBytes("""[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]""");

    private MessageSigner Signer(Identity who, TimeProvider? time = null) =>
        new(who.KeyPem, null, who.CertificatePem, CertificateStore.Load(K.Store, time), "sha256", time);

    private static TransportMessage Json(byte[] body) => new() { Body = body, Headers = new Dictionary<string, object?> { ["id"] = "abc", ["task"] = "tasks.add" } };

    [Fact]
    public void Sign_ThenVerify_GivesBackTheBodyAndItsContentType()
    {
        using MessageSigner alice = Signer(K.Alice);

        TransportMessage signed = alice.Sign(Json(s_body));

        Assert.Equal("application/data", signed.ContentType);
        Assert.Equal("utf-8", signed.ContentEncoding);
        Assert.Equal("abc", signed.Headers["id"]);
        Assert.True(alice.TryVerify(signed, out TransportMessage? verified, out string? error), error);
        Assert.Equal(s_body, verified!.Body.ToArray());
        Assert.Equal("application/json", verified.ContentType);
        Assert.Equal("utf-8", verified.ContentEncoding);
    }

    [Fact]
    public void Verify_A3072BitSigner_ReadsItsLongerSignature()
    {
        using MessageSigner bob = Signer(K.Bob);
        using MessageSigner alice = Signer(K.Alice);

        Assert.True(alice.TryVerify(bob.Sign(Json(s_body)), out TransportMessage? verified, out string? error), error);
        Assert.Equal(s_body, verified!.Body.ToArray());
    }

    [Fact]
    public void Verify_TamperedBody_IsABadSignature()
    {
        using MessageSigner alice = Signer(K.Alice);
        TransportMessage signed = alice.Sign(Json(s_body));
        byte[] raw = Convert.FromBase64String(Encoding.ASCII.GetString(signed.Body.Span));
        int at = Array.LastIndexOf(raw, (byte)'2');
        raw[at] = (byte)'9'; // [[9, 3], ...]
        TransportMessage tampered = signed with { Body = Encoding.ASCII.GetBytes(Convert.ToBase64String(raw)) };

        Assert.False(alice.TryVerify(tampered, out TransportMessage? verified, out string? error));
        Assert.Null(verified);
        Assert.StartsWith("Bad signature", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Verify_SignerNotInTheStore_IsAnUnknownCertificate()
    {
        using MessageSigner mallory = Signer(K.Mallory);
        using MessageSigner alice = Signer(K.Alice);

        Assert.False(alice.TryVerify(mallory.Sign(Json(s_body)), out _, out string? error));
        Assert.StartsWith("Unknown certificate: 'mallory ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Verify_AlicesNameOnASignatureByAnotherKey_IsABadSignature()
    {
        using MessageSigner mallory = Signer(K.Mallory);
        using MessageSigner alice = Signer(K.Alice);
        byte[] forged = Convert.FromBase64String(Encoding.ASCII.GetString(mallory.Sign(Json(s_body)).Body.Span));
        byte[] name = Encoding.UTF8.GetBytes(alice.SignerId!);
        int sep = forged.AsSpan().IndexOf("\x00\x01"u8);
        byte[] withAlice = [.. name, .. forged.AsSpan(sep)];
        var message = new TransportMessage { Body = Encoding.ASCII.GetBytes(Convert.ToBase64String(withAlice)), ContentType = "application/data" };

        Assert.False(alice.TryVerify(message, out _, out string? error));
        Assert.StartsWith("Bad signature", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Verify_UnsignedOrGarbage_IsRefusedWithAReason()
    {
        using MessageSigner alice = Signer(K.Alice);

        Assert.False(alice.TryVerify(Json(s_body), out _, out string? unsigned));
        Assert.Contains("unsigned message (content type 'application/json')", unsigned, StringComparison.Ordinal);
        Assert.False(alice.TryVerify(new TransportMessage { Body = "!!not base64"u8.ToArray(), ContentType = "application/data" }, out _, out string? garbage));
        Assert.Equal("the signed envelope is not base64", garbage);
        Assert.False(alice.TryVerify(new TransportMessage { Body = Encoding.ASCII.GetBytes(Convert.ToBase64String(Encoding.UTF8.GetBytes(alice.SignerId! + "\x00\x01short"))), ContentType = "application/data" }, out _, out string? shortOne));
        Assert.StartsWith("the signed envelope is too short", shortOne, StringComparison.Ordinal);
    }

    [Fact]
    public void Verify_AfterTheSignersCertificateExpired_IsRefused()
    {
        var time = new FakeTimeProvider(TimeProvider.System.GetUtcNow());
        using MessageSigner alice = Signer(K.Alice, time);
        TransportMessage signed = alice.Sign(Json(s_body));
        Assert.True(alice.TryVerify(signed, out _, out _));

        time.SetUtcNow(new DateTimeOffset(K.Alice.NotAfter, TimeSpan.Zero).AddSeconds(1));

        Assert.False(alice.TryVerify(signed, out _, out string? error));
        Assert.StartsWith($"Expired certificate: '{alice.SignerId}'", error, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadStore_WithAnExpiredCertificate_FailsNamingItAsCelery()
    {
        var later = new FakeTimeProvider(TimeProvider.System.GetUtcNow().AddDays(2));

        MessageSecurityException error = Assert.Throws<MessageSecurityException>(() => CertificateStore.Load(K.Store, later));

        Assert.StartsWith("Expired certificate: '", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Verify_ACertificatePutInTheStoreAfterTheStart_IsTrustedAfterTheNextRead_AtMostOneReadPer5s()
    {
        var time = new FakeTimeProvider(TimeProvider.System.GetUtcNow());
        string folder = Directory.CreateTempSubdirectory("celeriac-store-").FullName;
        try
        {
            File.Copy(K.Alice.CertificatePath, Path.Combine(folder, "alice.pem"));
            using var alice = new MessageSigner(K.Alice.KeyPem, null, K.Alice.CertificatePem, CertificateStore.Load(Path.Combine(folder, "*.pem"), time), "sha256", time);
            using MessageSigner mallory = Signer(K.Mallory);
            TransportMessage signed = mallory.Sign(Json(s_body));
            Assert.False(alice.TryVerify(signed, out _, out string? before));
            Assert.StartsWith("Unknown certificate", before, StringComparison.Ordinal);

            File.Copy(K.Mallory.CertificatePath, Path.Combine(folder, "mallory.pem"));
            Assert.False(alice.TryVerify(signed, out _, out string? tooSoon));
            Assert.StartsWith("Unknown certificate", tooSoon, StringComparison.Ordinal);
            time.Advance(MessageSigner.RefreshInterval);

            Assert.True(alice.TryVerify(signed, out TransportMessage? verified, out string? error), error);
            Assert.Equal(s_body, verified!.Body.ToArray());
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void LoadStore_AGlob_TakesOnlyTheFilesItMatches()
    {
        using CertificateStore all = CertificateStore.Load(K.Store);
        using CertificateStore one = CertificateStore.Load(Path.Combine(K.Store, "a*.pem"));

        Assert.Equal(2, all.Ids.Count);
        Assert.Single(one.Ids);
    }

    [Fact]
    public void Create_KeyOfAnotherCertificate_FailsClearly()
    {
        MessageSecurityException error = Assert.Throws<MessageSecurityException>(() =>
            new MessageSigner(K.Mallory.KeyPem, null, K.Alice.CertificatePem, new CertificateStore()));

        Assert.Contains("does not belong", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_EncryptedKey_NeedsItsPassword()
    {
        using var rsa = System.Security.Cryptography.RSA.Create();
        rsa.ImportFromPem(K.Alice.KeyPem);
        string encrypted = rsa.ExportEncryptedPkcs8PrivateKeyPem("s3cret", new System.Security.Cryptography.PbeParameters(System.Security.Cryptography.PbeEncryptionAlgorithm.Aes256Cbc, System.Security.Cryptography.HashAlgorithmName.SHA256, 10_000));

        Assert.Throws<MessageSecurityException>(() => new MessageSigner(encrypted, null, K.Alice.CertificatePem, new CertificateStore()));
        using var signer = new MessageSigner(encrypted, "s3cret", K.Alice.CertificatePem, CertificateStore.Load(K.Store));
        Assert.True(signer.TryVerify(signer.Sign(Json(s_body)), out _, out string? error), error);
    }

    private const string PythonSerializer = """
        import json, sys
        from celery.security.serialization import SecureSerializer
        from celery.security.key import PrivateKey
        from celery.security.certificate import Certificate, FSCertStore
        a = json.load(sys.stdin)
        s = SecureSerializer(PrivateKey(open(a['key']).read()), Certificate(open(a['cert']).read()), FSCertStore(a['store']), 'sha256', 'json')
        out = {'id': Certificate(open(a['cert']).read()).get_id()}
        if 'sign' in a:
            out['signed'] = s.serialize(a['sign'])
        if 'verify' in a:
            try:
                out['verified'] = s.deserialize(a['verify'])
            except Exception as e:
                out['error'] = type(e).__name__ + ': ' + str(e)
        print(json.dumps(out))
        """;

    private async Task<JsonElement> PythonAsync(Identity who, object request)
    {
        Assert.SkipUnless(Python.Available, "needs /usr/bin/python3 with python3-celery (scripts/provision.sh)");
        var args = new Dictionary<string, object> { ["key"] = who.KeyPath, ["cert"] = who.CertificatePath, ["store"] = Path.Combine(K.Store, "*.pem") };
        foreach (var p in JsonSerializer.SerializeToElement(request).EnumerateObject())
        {
            args[p.Name] = p.Value;
        }

        string output = await Python.RunAsync(PythonSerializer, JsonSerializer.Serialize(args), TestContext.Current.CancellationToken);
        return JsonDocument.Parse(output).RootElement.Clone();
    }

    [Fact]
    public async Task Golden_SignedByCelery_VerifiesHereWithTheSameSignerId()
    {
        JsonElement py = await PythonAsync(K.Alice, new { sign = new object[] { new[] { 2, 3 }, new { }, new { callbacks = (object?)null } } });
        using MessageSigner alice = Signer(K.Alice);
        var message = new TransportMessage { Body = Encoding.ASCII.GetBytes(py.GetProperty("signed").GetString()!), ContentType = "application/data" };

        Assert.Equal(py.GetProperty("id").GetString(), alice.SignerId);
        Assert.True(alice.TryVerify(message, out TransportMessage? verified, out string? error), error);
        Assert.Equal("""[[2, 3], {}, {"callbacks": null}]""", Encoding.UTF8.GetString(verified!.Body.Span));
        Assert.Equal("application/json", verified.ContentType);
    }

    [Fact]
    public async Task Golden_SignedHere_VerifiesInCelery_AndTamperedDoesNot()
    {
        using MessageSigner bob = Signer(K.Bob);
        string signed = Encoding.ASCII.GetString(bob.Sign(Json(s_body)).Body.Span);
        byte[] raw = Convert.FromBase64String(signed);
        raw[^3] ^= 0x01;
        string tampered = Convert.ToBase64String(raw);

        JsonElement good = await PythonAsync(K.Bob, new { verify = signed });
        JsonElement bad = await PythonAsync(K.Bob, new { verify = tampered });

        Assert.Equal(bob.SignerId, good.GetProperty("id").GetString());
        Assert.Equal("[[2,3],{},{\"callbacks\":null,\"errbacks\":null,\"chain\":null,\"chord\":null}]", JsonSerializer.Serialize(good.GetProperty("verified")));
        Assert.StartsWith("SecurityError", bad.GetProperty("error").GetString(), StringComparison.Ordinal);
    }
}
