using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Celeriac.Protocol;

namespace Celeriac.Cli.Commands.Call;

/// <summary><c>celeriac call</c>: sends the task and prints its id, alone, on stdout.</summary>
internal static class CallCommand
{
    public static async Task<int> RunAsync(CliContext context, CallCommandDefinition definition, ParseResult parse, CancellationToken ct)
    {
        string name = parse.GetValue(definition.NameArgument)!;
        IReadOnlyList<object?>? args = parse.GetValue(definition.ArgsOption) is { } argsText
            ? ParseJson(argsText, "--args", JsonValueKind.Array, "a JSON array, e.g. '[2, 3]'") as List<object?>
            : null;
        IReadOnlyDictionary<string, object?>? kwargs = parse.GetValue(definition.KwargsOption) is { } kwargsText
            ? ParseJson(kwargsText, "--kwargs", JsonValueKind.Object, "a JSON object, e.g. '{\"x\": 2}'") as Dictionary<string, object?>
            : null;

        DateTimeOffset? eta = parse.GetValue(definition.EtaOption) is { } etaText ? ParseTime(etaText, "--eta") : null;
        TimeSpan? expiresIn = null;
        DateTimeOffset? expires = null;
        if (parse.GetValue(definition.ExpiresOption) is { } expiresText)
        {
            if (double.TryParse(expiresText, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds))
            {
                expiresIn = double.IsFinite(seconds) && seconds >= 0
                    ? TimeSpan.FromSeconds(seconds)
                    : throw new CliUsageException($"--expires must be a number of seconds, 0 or more, or an ISO 8601 time (got '{expiresText}').");
            }
            else
            {
                expires = ParseTime(expiresText, "--expires");
            }
        }

        var options = new ApplyOptions
        {
            Countdown = parse.GetValue(definition.CountdownOption) is { } countdown ? TimeSpan.FromSeconds(countdown) : null,
            Eta = eta,
            ExpiresIn = expiresIn,
            Expires = expires,
            Queue = parse.GetValue(definition.QueueOption),
            Priority = parse.GetValue(definition.PriorityOption),
        };

        CliSession session = context.Open(parse);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeSession = session.ConfigureAwait(false);
        AsyncResult result = await session.App.SendTaskAsync(name, args, kwargs, options, ct).ConfigureAwait(false);
        await context.Out.WriteLineAsync(result.Id.AsMemory(), ct).ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    /// <summary>Parses a whole JSON document of the given kind into plain values (big integers and floats keep their types).</summary>
    internal static object? ParseJson(string text, string option, JsonValueKind kind, string expected)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(text);
        JsonValueKind actual;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = JsonValues.MaxDepth });
            actual = doc.RootElement.ValueKind;
        }
        catch (JsonException ex)
        {
            throw new CliUsageException($"{option} is not valid JSON: {ex.Message}", ex);
        }

        if (actual != kind)
        {
            throw new CliUsageException($"{option} must be {expected}, not a JSON {actual.ToString().ToLowerInvariant()}.");
        }

        return JsonValues.Parse(utf8);
    }

    private static DateTimeOffset ParseTime(string text, string option) =>
        DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset time)
            ? time
            : throw new CliUsageException($"{option} must be an ISO 8601 time such as 2026-11-24T05:14:28Z (got '{text}').");
}
