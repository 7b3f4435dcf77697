using System.Buffers;
using System.Text.Json;

namespace Celeriac.Protocol;

/// <summary>
/// A per-thread JSON writer and buffer, reused on the hot path so that encoding a result or a message
/// allocates only the final array. Use it in synchronous code only: take, write, copy out, done.
/// </summary>
internal static class JsonBuffers
{
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    private static readonly JsonWriterOptions s_options = new() { Encoder = CeleryJson.Options.Encoder, SkipValidation = true };

    /// <summary>Writes with <paramref name="write"/> and returns the bytes written.</summary>
    public static byte[] Write<TState>(TState state, Action<Utf8JsonWriter, TState> write)
    {
        ArrayBufferWriter<byte> buffer = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        Utf8JsonWriter writer = t_writer ??= new Utf8JsonWriter(buffer, s_options);
        buffer.ResetWrittenCount();
        writer.Reset(buffer);
        try
        {
            write(writer, state);
            writer.Flush();
            return buffer.WrittenSpan.ToArray();
        }
        finally
        {
            writer.Reset(buffer);
            if (buffer.Capacity > 1 << 20)
            {
                // A huge result once must not pin a huge buffer per thread forever.
                t_buffer = null;
                t_writer = null;
            }
        }
    }
}
