using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Celeriac.Cli;

/// <summary>Options shared by several commands, and parsers for their values.</summary>
internal static class CommonOptions
{
    public static Option<string?> Broker() => new("--broker", "-b")
    {
        Description = "Broker URL (sqlite:///celeriac.db, memory://, redis://, amqp://...). Overrides CELERIAC_BROKER_URL and appsettings.json.",
        HelpName = "URL",
        Recursive = true,
    };

    public static Option<string?> ResultBackend() => new("--result-backend")
    {
        Description = "Result backend URL. Overrides CELERIAC_RESULT_BACKEND; default: the broker's store when it keeps results.",
        HelpName = "URL",
        Recursive = true,
    };

    /// <summary>Queue names: comma-separated and/or repeated (<c>-Q a,b -Q c</c>).</summary>
    public static Option<string[]> Queues(string description) => new("--queues", "-Q")
    {
        Description = description,
        HelpName = "q1,q2",
        AllowMultipleArgumentsPerToken = false,
        Arity = ArgumentArity.OneOrMore,
    };

    /// <summary>Splits repeated and comma-separated queue names, dropping empties and duplicates (first wins).</summary>
    public static List<string> SplitQueues(IEnumerable<string>? values)
    {
        var queues = new List<string>();
        foreach (string value in values ?? [])
        {
            foreach (string q in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!queues.Contains(q, StringComparer.Ordinal))
                {
                    queues.Add(q);
                }
            }
        }

        return queues;
    }

    /// <summary>A non-negative, finite number of seconds (<c>--countdown 1.5</c>).</summary>
    public static double? ParseSeconds(ArgumentResult result)
    {
        if (result.Tokens.Count == 0)
        {
            return null;
        }

        string text = result.Tokens[0].Value;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) && double.IsFinite(seconds) && seconds >= 0)
        {
            return seconds;
        }

        result.AddError($"{OptionName(result)} must be a number of seconds, 0 or more (got '{text}')");
        return null;
    }

    /// <summary>A whole number (<c>-c 4</c>), with a message that names the option.</summary>
    public static int? ParseInt(ArgumentResult result)
    {
        if (result.Tokens.Count == 0)
        {
            return null;
        }

        string text = result.Tokens[0].Value;
        if (int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value))
        {
            return value;
        }

        result.AddError($"{OptionName(result)} must be a whole number (got '{text}')");
        return null;
    }

    /// <summary>The option's name for messages (<c>--countdown</c>).</summary>
    public static string OptionName(ArgumentResult result) =>
        result.Parent is OptionResult option ? option.Option.Name : result.Argument.Name;
}
