using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Celeriac.Protocol;

/// <summary>
/// RSASSA-PSS with the longest salt through OpenSSL's EVP API on Linux, where .NET's own RSA already lives: OpenSSL
/// takes the salt length .NET's API does not expose, and signs about twenty times faster than big-integer arithmetic.
/// <see cref="RsaPss"/> falls back to its managed signing where this is not available.
/// </summary>
internal static partial class OpenSslPss
{
    private const string Library = "libcrypto.so.3";
    private const int RsaPkcs1PssPadding = 6;
    private const int RsaPssSaltLengthMax = -3;
    private static volatile bool s_unavailable;

    /// <summary>The key as OpenSSL holds it, or <see langword="null"/> where OpenSSL is not .NET's provider.</summary>
    public static SafeEvpPKeyHandle? Handle(RSAParameters parameters)
    {
        if (s_unavailable || !OperatingSystem.IsLinux())
        {
            return null;
        }

        using var rsa = new RSAOpenSsl(parameters);
        return rsa.DuplicateKeyHandle();
    }

    /// <summary>Signs a digest with the longest salt; <see langword="null"/> when OpenSSL cannot (the caller signs itself).</summary>
    public static byte[]? TrySign(SafeEvpPKeyHandle key, byte[] digest, HashAlgorithmName hash, int signatureLength)
    {
        if (s_unavailable)
        {
            return null;
        }

        bool added = false;
        IntPtr ctx = IntPtr.Zero;
        try
        {
            key.DangerousAddRef(ref added);
            IntPtr md = EVP_get_digestbyname(hash.Name!.ToUpperInvariant() switch { "SHA1" => "sha1", "SHA256" => "sha256", "SHA384" => "sha384", "SHA512" => "sha512", var other => other });
            ctx = EVP_PKEY_CTX_new(key.DangerousGetHandle(), IntPtr.Zero);
            if (md == IntPtr.Zero || ctx == IntPtr.Zero
                || EVP_PKEY_sign_init(ctx) <= 0
                || EVP_PKEY_CTX_set_rsa_padding(ctx, RsaPkcs1PssPadding) <= 0
                || EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0
                || EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RsaPssSaltLengthMax) <= 0)
            {
                return null;
            }

            byte[] signature = new byte[signatureLength];
            nuint length = (nuint)signature.Length;
            if (EVP_PKEY_sign(ctx, signature, ref length, digest, (nuint)digest.Length) <= 0 || length != (nuint)signature.Length)
            {
                return null;
            }

            return signature;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            s_unavailable = true;
            return null;
        }
        finally
        {
            if (ctx != IntPtr.Zero)
            {
                EVP_PKEY_CTX_free(ctx);
            }

            if (added)
            {
                key.DangerousRelease();
            }
        }
    }

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr EVP_get_digestbyname(string name);

    [LibraryImport(Library)]
    private static partial IntPtr EVP_PKEY_CTX_new(IntPtr key, IntPtr engine);

    [LibraryImport(Library)]
    private static partial void EVP_PKEY_CTX_free(IntPtr ctx);

    [LibraryImport(Library)]
    private static partial int EVP_PKEY_sign_init(IntPtr ctx);

    [LibraryImport(Library)]
    private static partial int EVP_PKEY_CTX_set_rsa_padding(IntPtr ctx, int padding);

    [LibraryImport(Library)]
    private static partial int EVP_PKEY_CTX_set_signature_md(IntPtr ctx, IntPtr md);

    [LibraryImport(Library)]
    private static partial int EVP_PKEY_CTX_set_rsa_pss_saltlen(IntPtr ctx, int saltLength);

    [LibraryImport(Library)]
    private static partial int EVP_PKEY_sign(IntPtr ctx, [Out] byte[] signature, ref nuint signatureLength, byte[] digest, nuint digestLength);
}
