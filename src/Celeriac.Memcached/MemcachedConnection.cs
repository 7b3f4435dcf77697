using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace Celeriac.Memcached;

/// <summary>What a command's reply is parsed as.</summary>
internal enum ReplyKind
{
    /// <summary><c>VALUE ... END</c> or <c>END</c>.</summary>
    Value,

    /// <summary><c>STORED</c>, <c>NOT_STORED</c>, <c>DELETED</c>, <c>NOT_FOUND</c>, <c>TOUCHED</c>, <c>OK</c>, <c>EXISTS</c>.</summary>
    Status,

    /// <summary>A decimal number or <c>NOT_FOUND</c>.</summary>
    Number,
}

/// <summary>A parsed reply.</summary>
internal readonly record struct Reply(string Status, byte[]? Data = null, uint Flags = 0, ulong Number = 0);

/// <summary>
/// One memcached server over the text protocol, pipelined: commands are written as they come (a burst in one
/// flush), one reader takes the replies in order. A timed-out, broken or confused connection is dropped with every
/// command in flight failed (their replies can no longer be matched), and the next command connects again.
/// </summary>
internal sealed class MemcachedConnection : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly TimeSpan _timeout;
    private Session? _session;
    private Task<Session>? _connecting;
    private bool _disposed;

    public MemcachedConnection(MemcachedServerAddress server, TimeSpan timeout)
    {
        Server = server;
        _timeout = timeout;
    }

    /// <summary>The server.</summary>
    public MemcachedServerAddress Server { get; }

    /// <summary>
    /// Sends one command (its bytes, data block included) and returns its reply. Throws <see cref="MemcachedException"/>:
    /// transient when the server is unreachable or slower than the timeout, not transient when it refused the command.
    /// Cancelling abandons the wait, not the command: its reply is still read and dropped.
    /// </summary>
    public async Task<Reply> SendAsync(byte[] command, ReplyKind kind, CancellationToken ct)
    {
        Session session = await SessionAsync(ct).ConfigureAwait(false);
        var op = new Op(command, kind);
        session.Enqueue(op);
        try
        {
            return await op.Reply.Task.WaitAsync(_timeout, ct).ConfigureAwait(false);
        }
        catch (TimeoutException e)
        {
            session.Fail(new IOException($"no reply within {_timeout.TotalSeconds:0.###} s", e));
            throw new MemcachedException($"memcached at {Server} did not answer within {_timeout.TotalSeconds:0.###} s", transient: true, sent: op.Sent, e);
        }
    }

    /// <summary>Drops the connection as if the network failed (tests).</summary>
    internal void Break()
    {
        lock (_gate)
        {
            _session?.Fail(new IOException("connection broken on purpose"));
        }
    }

    private Task<Session> SessionAsync(CancellationToken ct)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_session is { IsAlive: true } alive)
            {
                return Task.FromResult(alive);
            }

            _session = null;
            if (_connecting is null || _connecting.IsCompleted)
            {
                _connecting = ConnectAsync();
            }

            return _connecting.WaitAsync(ct);
        }
    }

    private async Task<Session> ConnectAsync()
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var timeout = new CancellationTokenSource(_timeout);
            await socket.ConnectAsync(new DnsEndPoint(Server.Host, Server.Port), timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            socket.Dispose();
            throw new MemcachedException(
                $"memcached at {Server} is unreachable: {(e is OperationCanceledException ? $"no connection within {_timeout.TotalSeconds:0.###} s" : e.Message)}",
                transient: true,
                sent: false,
                e);
        }

        var session = new Session(socket, Server);
        lock (_gate)
        {
            if (_disposed)
            {
                session.Fail(new ObjectDisposedException(nameof(MemcachedConnection)));
            }
            else
            {
                _session = session;
            }
        }

        return session;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Session? session;
        lock (_gate)
        {
            _disposed = true;
            session = _session;
            _session = null;
        }

        if (session is not null)
        {
            await session.CloseAsync().ConfigureAwait(false);
        }
    }

    private sealed class Op(byte[] command, ReplyKind kind)
    {
        public byte[] Command { get; } = command;

        public ReplyKind Kind { get; } = kind;

        public TaskCompletionSource<Reply> Reply { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool Sent { get; set; }
    }

    private sealed class Session : IDisposable
    {
        private const int MaxLine = 8192;

        private readonly Socket _socket;
        private readonly NetworkStream _stream;
        private readonly MemcachedServerAddress _server;
        private readonly Channel<Op> _outbox = Channel.CreateUnbounded<Op>(new UnboundedChannelOptions { SingleReader = false });
        private readonly ConcurrentQueue<Op> _inflight = new();
        private readonly byte[] _buffer = new byte[64 * 1024];
        private readonly Task _writer;
        private readonly Task _reader;
        private Exception? _failure;
        private int _start;
        private int _end;

        public Session(Socket socket, MemcachedServerAddress server)
        {
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: true);
            _server = server;
            _writer = Task.Run(WriteLoopAsync);
            _reader = Task.Run(ReadLoopAsync);
        }

        public bool IsAlive => Volatile.Read(ref _failure) is null;

        public void Enqueue(Op op)
        {
            if (!_outbox.Writer.TryWrite(op))
            {
                throw Unavailable(Volatile.Read(ref _failure), sent: false);
            }
        }

        /// <summary>Drops the connection and fails every command not yet answered (idempotent).</summary>
        public void Fail(Exception reason)
        {
            if (Interlocked.CompareExchange(ref _failure, reason, null) is null)
            {
                _outbox.Writer.TryComplete();
                _socket.Dispose();
            }

            Drain();
        }

        public async Task CloseAsync()
        {
            Fail(new ObjectDisposedException(nameof(MemcachedConnection)));
            await Task.WhenAll(_writer, _reader).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            Dispose();
        }

        public void Dispose()
        {
            Fail(new ObjectDisposedException(nameof(MemcachedConnection)));
            _stream.Dispose();
        }

        private void Drain()
        {
            Exception? reason = Volatile.Read(ref _failure);
            while (_inflight.TryDequeue(out Op? op))
            {
                op.Reply.TrySetException(Unavailable(reason, sent: true));
            }

            while (_outbox.Reader.TryRead(out Op? op))
            {
                op.Reply.TrySetException(Unavailable(reason, sent: false));
            }
        }

        private MemcachedException Unavailable(Exception? reason, bool sent) =>
            new($"memcached at {_server} is unreachable: {reason?.Message ?? "connection closed"}", transient: true, sent, reason);

        private async Task WriteLoopAsync()
        {
            try
            {
                while (await _outbox.Reader.WaitToReadAsync().ConfigureAwait(false))
                {
                    while (_outbox.Reader.TryRead(out Op? op))
                    {
                        // In flight before it is written, so that its reply always finds it.
                        op.Sent = true;
                        _inflight.Enqueue(op);
                        if (!IsAlive)
                        {
                            Drain();
                            return;
                        }

                        await _stream.WriteAsync(op.Command).ConfigureAwait(false);
                    }

                    await _stream.FlushAsync().ConfigureAwait(false);
                }
            }
            catch (Exception e)
            {
                Fail(e);
            }
        }

        private async Task ReadLoopAsync()
        {
            Op? op = null;
            try
            {
                while (true)
                {
                    op = null;
                    string line = await ReadLineAsync().ConfigureAwait(false);
                    if (!_inflight.TryDequeue(out op))
                    {
                        throw new InvalidDataException($"a reply nobody asked for: '{line}'");
                    }

                    if (line.StartsWith("SERVER_ERROR", StringComparison.Ordinal))
                    {
                        // memcached has read (or swallowed) the whole command: the connection is still in step.
                        op.Reply.TrySetException(new MemcachedException($"memcached at {_server} refused the command: {line}", transient: false, sent: true));
                        continue;
                    }

                    if (line == "ERROR" || line.StartsWith("CLIENT_ERROR", StringComparison.Ordinal))
                    {
                        op.Reply.TrySetException(new MemcachedException($"memcached at {_server} rejected the command: {line}", transient: false, sent: true));
                        throw new InvalidDataException($"the server rejected a command ({line}); the connection may be out of step");
                    }

                    op.Reply.TrySetResult(op.Kind switch
                    {
                        ReplyKind.Value => await ReadValueAsync(line).ConfigureAwait(false),
                        ReplyKind.Number when line.Length > 0 && char.IsAsciiDigit(line[0]) =>
                            new Reply("NUMBER", Number: ulong.Parse(line, NumberStyles.None, CultureInfo.InvariantCulture)),
                        _ => new Reply(line),
                    });
                }
            }
            catch (Exception e)
            {
                op?.Reply.TrySetException(Unavailable(e, sent: true));
                Fail(e);
            }
        }

        private async Task<Reply> ReadValueAsync(string line)
        {
            if (line == "END")
            {
                return new Reply("END");
            }

            // VALUE <key> <flags> <bytes> [<cas>]
            string[] parts = line.Split(' ');
            if (parts.Length < 4 || parts[0] != "VALUE"
                || !uint.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out uint flags)
                || !int.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out int length))
            {
                throw new InvalidDataException($"not a VALUE line: '{line}'");
            }

            byte[] data = new byte[length];
            await ReadExactAsync(data).ConfigureAwait(false);
            string crlf = await ReadLineAsync().ConfigureAwait(false);
            string end = crlf.Length == 0 ? await ReadLineAsync().ConfigureAwait(false) : crlf;
            return crlf.Length == 0 && end == "END" ? new Reply("VALUE", data, flags) : throw new InvalidDataException($"a value of {length} bytes not followed by CRLF and END: '{end}'");
        }

        private async Task<string> ReadLineAsync()
        {
            while (true)
            {
                int newline = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
                if (newline >= 0)
                {
                    int length = newline - _start;
                    if (length == 0 || _buffer[newline - 1] != (byte)'\r')
                    {
                        throw new InvalidDataException("a reply line not ended by CRLF");
                    }

                    string line = Encoding.ASCII.GetString(_buffer, _start, length - 1);
                    _start = newline + 1;
                    return line;
                }

                if (_end - _start > MaxLine)
                {
                    throw new InvalidDataException($"a reply line longer than {MaxLine} bytes");
                }

                await FillAsync().ConfigureAwait(false);
            }
        }

        private async Task ReadExactAsync(byte[] into)
        {
            int copied = 0;
            while (copied < into.Length)
            {
                if (_start == _end)
                {
                    await FillAsync().ConfigureAwait(false);
                }

                int n = Math.Min(_end - _start, into.Length - copied);
                Buffer.BlockCopy(_buffer, _start, into, copied, n);
                _start += n;
                copied += n;
            }
        }

        private async Task FillAsync()
        {
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            int n = await _stream.ReadAsync(_buffer.AsMemory(_end)).ConfigureAwait(false);
            _end += n > 0 ? n : throw new IOException("the server closed the connection");
        }
    }
}
