using System.Buffers.Binary;

namespace Celeriac.Concurrency;

/// <summary>What a frame between a prefork pool and its child carries.</summary>
internal enum PoolFrameType : byte
{
    /// <summary>Child to parent, once: the app is built and the child serves (payload: its pid as JSON).</summary>
    Ready = 1,

    /// <summary>Parent to child: run this request (payload: the bytes of <see cref="PoolJob.Serialize"/>).</summary>
    Run = 2,

    /// <summary>Child to parent: how the run ended (payload: <see cref="TaskOutcomeCodec"/>'s JSON).</summary>
    Outcome = 3,
}

/// <summary>
/// Length-prefixed frames on the stream between a prefork pool and one child: a 4-byte big-endian length (of what
/// follows), a type byte, the payload. One writer at a time on each side: the parent writes only to a child it has
/// rented, the child only from its one running task.
/// </summary>
internal static class PoolFrames
{
    /// <summary>The largest frame either side accepts (a 16 MiB body, base64 in the envelope, with headroom).</summary>
    public const int MaxLength = 64 * 1024 * 1024;

    public static async ValueTask WriteAsync(Stream stream, PoolFrameType type, ReadOnlyMemory<byte> payload, CancellationToken ct)
    {
        if (payload.Length + 1 > MaxLength)
        {
            throw new ArgumentException($"a pool frame of {payload.Length} bytes is larger than the limit of {MaxLength}", nameof(payload));
        }

        // One write per frame: no other frame can ever interleave with half of this one.
        byte[] frame = new byte[5 + payload.Length];
        BinaryPrimitives.WriteInt32BigEndian(frame, payload.Length + 1);
        frame[4] = (byte)type;
        payload.Span.CopyTo(frame.AsSpan(5));
        await stream.WriteAsync(frame, ct).ConfigureAwait(false);
        await stream.FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads the next frame; <see langword="null"/> when the other side closed the stream between frames. A frame cut
    /// short or of an impossible length is <see cref="InvalidDataException"/>.
    /// </summary>
    public static async ValueTask<(PoolFrameType Type, byte[] Payload)?> ReadAsync(Stream stream, CancellationToken ct)
    {
        byte[] header = new byte[5];
        int read = await stream.ReadAtLeastAsync(header, header.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        if (read == 0)
        {
            return null;
        }

        if (read < header.Length)
        {
            throw new InvalidDataException("the pool stream ended inside a frame header");
        }

        int length = BinaryPrimitives.ReadInt32BigEndian(header);
        if (length is < 1 or > MaxLength)
        {
            throw new InvalidDataException($"a pool frame claims {length} bytes (at most {MaxLength})");
        }

        byte[] payload = new byte[length - 1];
        if (await stream.ReadAtLeastAsync(payload, payload.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false) < payload.Length)
        {
            throw new InvalidDataException("the pool stream ended inside a frame");
        }

        return ((PoolFrameType)header[4], payload);
    }
}
