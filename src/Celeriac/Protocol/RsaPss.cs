using System.Numerics;
using System.Security.Cryptography;

namespace Celeriac.Protocol;

/// <summary>
/// RSASSA-PSS (RFC 8017, 8.1) with the longest salt the key allows, as Celery's <c>auth</c> serializer signs
/// (<c>padding.PSS(mgf=MGF1(digest), salt_length=PSS.MAX_LENGTH)</c>). .NET's <see cref="RSASignaturePadding.Pss"/>
/// fixes the salt at the digest's length, which Python's verifier refuses, so the encoding is done here and only the
/// RSA operations are big-integer arithmetic. Verification accepts any salt length, as OpenSSL's "auto" does.
/// </summary>
internal static class RsaPss
{
    /// <summary>Signs <paramref name="data"/>: <c>k</c> bytes, <c>k</c> the modulus length.</summary>
    public static byte[] Sign(RsaPrivate key, ReadOnlySpan<byte> data, HashAlgorithmName hash)
    {
        int modBits = (int)key.N.GetBitLength();
        int emBits = modBits - 1;
        int emLen = (emBits + 7) / 8;
        int hLen = HashLength(hash);
        int sLen = emLen - hLen - 2;
        if (sLen < 0)
        {
            throw new CryptographicException($"an RSA key of {modBits} bits is too short for {hash.Name}");
        }

        byte[] mHash = Hash(hash, data);
        if (key.Native is { } native && OpenSslPss.TrySign(native, mHash, hash, (modBits + 7) / 8) is { } fast)
        {
            return fast;
        }

        byte[] salt = RandomNumberGenerator.GetBytes(sLen);
        byte[] h = HashOfPrime(hash, mHash, salt);

        // DB = PS (no bytes with the longest salt) || 0x01 || salt, masked with MGF1(H).
        int dbLen = emLen - hLen - 1;
        byte[] db = new byte[dbLen];
        db[dbLen - sLen - 1] = 0x01;
        salt.CopyTo(db.AsSpan(dbLen - sLen));
        Mask(hash, h, db);
        db[0] &= (byte)(0xFF >> ((8 * emLen) - emBits));

        byte[] em = new byte[emLen];
        db.CopyTo(em, 0);
        h.CopyTo(em, dbLen);
        em[emLen - 1] = 0xBC;

        BigInteger m = new(em, isUnsigned: true, isBigEndian: true);
        BigInteger s = key.Private(m);

        // A fault in the private operation must not leak the key: check the signature before it leaves.
        if (BigInteger.ModPow(s, key.E, key.N) != m)
        {
            throw new CryptographicException("the RSA signature did not verify against its own key");
        }

        return ToBytes(s, (modBits + 7) / 8);
    }

    /// <summary>Whether <paramref name="signature"/> is a PSS signature of <paramref name="data"/> by the key (n, e).</summary>
    public static bool Verify(RSAParameters publicKey, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature, HashAlgorithmName hash)
    {
        BigInteger n = new(publicKey.Modulus, isUnsigned: true, isBigEndian: true);
        BigInteger e = new(publicKey.Exponent, isUnsigned: true, isBigEndian: true);
        int modBits = (int)n.GetBitLength();
        int k = (modBits + 7) / 8;
        if (signature.Length != k)
        {
            return false;
        }

        BigInteger s = new(signature, isUnsigned: true, isBigEndian: true);
        if (s >= n)
        {
            return false;
        }

        int emBits = modBits - 1;
        int emLen = (emBits + 7) / 8;
        int hLen = HashLength(hash);
        BigInteger m = BigInteger.ModPow(s, e, n);
        if (m.GetByteCount(isUnsigned: true) > emLen || emLen < hLen + 2)
        {
            return false;
        }

        byte[] em = ToBytes(m, emLen);
        if (em[emLen - 1] != 0xBC)
        {
            return false;
        }

        int dbLen = emLen - hLen - 1;
        byte[] db = em[..dbLen];
        byte[] h = em[dbLen..(emLen - 1)];
        byte topMask = (byte)(0xFF >> ((8 * emLen) - emBits));
        if ((db[0] & ~topMask) != 0)
        {
            return false;
        }

        Mask(hash, h, db);
        db[0] &= topMask;
        int one = Array.FindIndex(db, b => b != 0);
        if (one < 0 || db[one] != 0x01)
        {
            return false;
        }

        byte[] expected = HashOfPrime(hash, Hash(hash, data), db.AsSpan(one + 1));
        return CryptographicOperations.FixedTimeEquals(expected, h);
    }

    /// <summary>H = Hash(0x00 * 8 || mHash || salt), RFC 8017's M'.</summary>
    private static byte[] HashOfPrime(HashAlgorithmName hash, ReadOnlySpan<byte> mHash, ReadOnlySpan<byte> salt)
    {
        using var h = IncrementalHash.CreateHash(hash);
        h.AppendData(stackalloc byte[8]);
        h.AppendData(mHash);
        h.AppendData(salt);
        return h.GetHashAndReset();
    }

    /// <summary>XORs <paramref name="target"/> with MGF1(<paramref name="seed"/>).</summary>
    private static void Mask(HashAlgorithmName hash, ReadOnlySpan<byte> seed, Span<byte> target)
    {
        using var h = IncrementalHash.CreateHash(hash);
        Span<byte> counter = stackalloc byte[4];
        int done = 0;
        for (uint c = 0; done < target.Length; c++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(counter, c);
            h.AppendData(seed);
            h.AppendData(counter);
            byte[] block = h.GetHashAndReset();
            for (int i = 0; i < block.Length && done < target.Length; i++, done++)
            {
                target[done] ^= block[i];
            }
        }
    }

    private static byte[] Hash(HashAlgorithmName hash, ReadOnlySpan<byte> data)
    {
        using var h = IncrementalHash.CreateHash(hash);
        h.AppendData(data);
        return h.GetHashAndReset();
    }

    private static int HashLength(HashAlgorithmName hash)
    {
        using var h = IncrementalHash.CreateHash(hash);
        return h.HashLengthInBytes;
    }

    private static byte[] ToBytes(BigInteger value, int length)
    {
        byte[] bytes = new byte[length];
        int count = value.GetByteCount(isUnsigned: true);
        value.TryWriteBytes(bytes.AsSpan(length - count), out _, isUnsigned: true, isBigEndian: true);
        return bytes;
    }
}

/// <summary>An RSA private key as numbers, for the private operation by the Chinese remainder theorem.</summary>
internal sealed class RsaPrivate
{
    private readonly BigInteger _p;
    private readonly BigInteger _q;
    private readonly BigInteger _dp;
    private readonly BigInteger _dq;
    private readonly BigInteger _qInv;

    public RsaPrivate(RSAParameters p)
    {
        if (p.D is null || p.P is null || p.Q is null || p.DP is null || p.DQ is null || p.InverseQ is null)
        {
            throw new CryptographicException("the RSA key has no private part");
        }

        N = new BigInteger(p.Modulus, isUnsigned: true, isBigEndian: true);
        E = new BigInteger(p.Exponent, isUnsigned: true, isBigEndian: true);
        _p = new BigInteger(p.P, isUnsigned: true, isBigEndian: true);
        _q = new BigInteger(p.Q, isUnsigned: true, isBigEndian: true);
        _dp = new BigInteger(p.DP, isUnsigned: true, isBigEndian: true);
        _dq = new BigInteger(p.DQ, isUnsigned: true, isBigEndian: true);
        _qInv = new BigInteger(p.InverseQ, isUnsigned: true, isBigEndian: true);
        Native = OpenSslPss.Handle(p);
    }

    /// <summary>The key as OpenSSL holds it, to sign there; <see langword="null"/> off Linux.</summary>
    public SafeEvpPKeyHandle? Native { get; }

    public BigInteger N { get; }

    public BigInteger E { get; }

    /// <summary>m^d mod n.</summary>
    public BigInteger Private(BigInteger m)
    {
        BigInteger m1 = BigInteger.ModPow(m, _dp, _p);
        BigInteger m2 = BigInteger.ModPow(m, _dq, _q);
        BigInteger h = _qInv * (m1 - m2) % _p;
        if (h.Sign < 0)
        {
            h += _p;
        }

        return m2 + (h * _q);
    }
}
