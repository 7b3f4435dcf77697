using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Celeriac.Dashboard.Http;

/// <summary>A request argument that is missing or malformed: a 400 with its message.</summary>
internal sealed class BadRequestException(string message) : Exception(message);

/// <summary>Flower's <c>get_argument</c>: a query argument, else a form field; typed with a 400 for a bad value.</summary>
internal static class HttpArgs
{
    public static async Task<string?> GetAsync(HttpContext ctx, string name)
    {
        if (ctx.Request.Query.TryGetValue(name, out var q) && q.Count > 0)
        {
            return q[^1];
        }

        if (ctx.Request.HasFormContentType)
        {
            IFormCollection form = await ctx.Request.ReadFormAsync(ctx.RequestAborted).ConfigureAwait(false);
            if (form.TryGetValue(name, out var f) && f.Count > 0)
            {
                return f[^1];
            }
        }

        return null;
    }

    public static async Task<string> RequiredAsync(HttpContext ctx, string name) =>
        await GetAsync(ctx, name).ConfigureAwait(false) is { Length: > 0 } value ? value : throw new BadRequestException($"Missing argument {name}");

    public static async Task<bool> BoolAsync(HttpContext ctx, string name) =>
        (await GetAsync(ctx, name).ConfigureAwait(false))?.Trim().ToLowerInvariant() switch
        {
            null or "" or "0" or "false" or "no" or "off" => false,
            "1" or "true" or "yes" or "on" => true,
            string other => throw new BadRequestException($"{name} must be true or false, not '{other}'"),
        };

    public static async Task<int?> IntAsync(HttpContext ctx, string name) =>
        await GetAsync(ctx, name).ConfigureAwait(false) is { Length: > 0 } text
            ? int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : throw new BadRequestException($"{name} must be an integer, not '{text}'")
            : null;

    public static async Task<double?> DoubleAsync(HttpContext ctx, string name) =>
        await GetAsync(ctx, name).ConfigureAwait(false) is { Length: > 0 } text
            ? double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) ? v : throw new BadRequestException($"{name} must be a number, not '{text}'")
            : null;

    /// <summary>Flower's <c>received_start</c>/<c>received_end</c> (<c>%Y-%m-%d %H:%M</c>, UTC), or unix seconds.</summary>
    public static async Task<double?> TimeAsync(HttpContext ctx, string name)
    {
        if (await GetAsync(ctx, name).ConfigureAwait(false) is not { Length: > 0 } text)
        {
            return null;
        }

        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds))
        {
            return seconds;
        }

        return DateTime.TryParseExact(text, ["yyyy-MM-dd HH:mm", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-ddTHH:mm:ss"], CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out DateTime at)
            ? (at - DateTime.UnixEpoch).TotalSeconds
            : throw new BadRequestException($"{name} must be 'YYYY-MM-DD HH:MM' or unix seconds, not '{text}'");
    }

    public static IResult Json(JsonNode node, int status = 200) =>
        Microsoft.AspNetCore.Http.Results.Content(node.ToJsonString(FlowerJson.Options), "application/json; charset=utf-8", System.Text.Encoding.UTF8, status);

    public static IResult Error(int status, string message) => Json(new JsonObject { ["error"] = message }, status);
}
