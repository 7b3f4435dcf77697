using Celeriac.Control;
using Celeriac.Transport;

namespace Celeriac.Tests.Protocol;

/// <summary>Control requests as kombu's Mailbox writes them.</summary>
public sealed class MailboxTests
{
    [Theory]
    [InlineData(0L)]
    [InlineData(0.0)]
    public void TryParse_ExpiresZero_NeverGoesStale(object expires)
    {
        // kombu sends expires 0 with a plain revoke (reply=False): a worker must not drop it as sent in 1970.
        var message = new TransportMessage
        {
            Body = """{"method": "revoke", "arguments": {"task_id": "x"}, "destination": null}"""u8.ToArray(),
            Headers = new Dictionary<string, object?>(StringComparer.Ordinal) { ["clock"] = 1L, ["expires"] = expires },
        };

        Assert.True(Mailbox.TryParse(message, out ControlRequest? request));

        Assert.Equal("revoke", request!.Method);
        Assert.Null(request.Expires);
    }
}
