using System.Globalization;
using System.Text.RegularExpressions;

namespace Celeriac.Tests.Dashboard;

/// <summary>
/// A strict parser of Prometheus's text exposition format 0.0.4 (no NuGet package parses it): HELP and TYPE before a
/// family's samples, valid metric and label names, escaped label values, numeric values, no duplicate series, and for a
/// histogram cumulative buckets ending in <c>le="+Inf"</c> equal to <c>_count</c>. Any breach throws.
/// </summary>
internal static partial class PrometheusText
{
    public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

    [GeneratedRegex(@"^[a-zA-Z_:][a-zA-Z0-9_:]*$")]
    private static partial Regex MetricName();

    [GeneratedRegex(@"^[a-zA-Z_][a-zA-Z0-9_]*$")]
    private static partial Regex LabelName();

    public static (IReadOnlyDictionary<string, string> Types, IReadOnlyList<Sample> Samples) Parse(string text)
    {
        if (text.Length > 0 && !text.EndsWith('\n'))
        {
            throw new FormatException("the exposition must end with a newline");
        }

        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        var helps = new HashSet<string>(StringComparer.Ordinal);
        var samples = new List<Sample>();
        var series = new HashSet<string>(StringComparer.Ordinal);
        int lineNo = 0;
        foreach (string line in text.TrimEnd('\n').Split('\n'))
        {
            lineNo++;
            if (line.Length == 0)
            {
                continue;
            }

            if (line.StartsWith('#'))
            {
                string[] parts = line.Split(' ', 4);
                if (parts.Length >= 3 && parts[1] == "HELP")
                {
                    Check(MetricName().IsMatch(parts[2]), lineNo, "bad metric name in HELP");
                    Check(helps.Add(parts[2]), lineNo, "second HELP for " + parts[2]);
                }
                else if (parts.Length == 4 && parts[1] == "TYPE")
                {
                    Check(MetricName().IsMatch(parts[2]), lineNo, "bad metric name in TYPE");
                    Check(parts[3] is "counter" or "gauge" or "histogram" or "summary" or "untyped", lineNo, "unknown type " + parts[3]);
                    Check(!types.ContainsKey(parts[2]), lineNo, "second TYPE for " + parts[2]);
                    Check(!samples.Any(s => Family(s.Name, types) == parts[2]), lineNo, "TYPE after samples of " + parts[2]);
                    types[parts[2]] = parts[3];
                }

                continue;
            }

            Sample sample = ParseSample(line, lineNo);
            string family = Family(sample.Name, types);
            Check(types.ContainsKey(family), lineNo, $"sample {sample.Name} has no TYPE");
            string type = types[family];
            if (type == "histogram")
            {
                Check(sample.Name != family, lineNo, "a histogram's samples are _bucket, _count or _sum");
                Check(sample.Name != family + "_bucket" || sample.Labels.ContainsKey("le"), lineNo, "a bucket without le");
            }
            else
            {
                Check(sample.Name == family, lineNo, $"{sample.Name} in a {type} family");
            }

            Check(series.Add(sample.Name + "{" + string.Join(",", sample.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value)) + "}"), lineNo, "duplicate series " + line);
            if (type == "counter")
            {
                Check(sample.Value >= 0, lineNo, "a negative counter");
            }

            samples.Add(sample);
        }

        foreach ((string family, string type) in types.Where(t => t.Value == "histogram"))
        {
            foreach (var group in samples.Where(s => s.Name == family + "_bucket").GroupBy(s => string.Join(",", s.Labels.Where(l => l.Key != "le").OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value))))
            {
                var buckets = group.Select(s => (Le: s.Labels["le"] == "+Inf" ? double.PositiveInfinity : double.Parse(s.Labels["le"], CultureInfo.InvariantCulture), s.Value)).ToList();
                Check(buckets.SequenceEqual(buckets.OrderBy(b => b.Le)), 0, "buckets out of order");
                Check(buckets.Zip(buckets.Skip(1)).All(p => p.First.Value <= p.Second.Value), 0, "buckets not cumulative");
                Check(double.IsPositiveInfinity(buckets[^1].Le), 0, "no +Inf bucket");
                Sample count = samples.Single(s => s.Name == family + "_count" && group.Key == string.Join(",", s.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value)));
                Check(count.Value == buckets[^1].Value, 0, "+Inf bucket differs from _count");
            }
        }

        return (types, samples);
    }

    private static string Family(string name, Dictionary<string, string> types)
    {
        foreach (string suffix in (string[])["_bucket", "_count", "_sum"])
        {
            if (name.EndsWith(suffix, StringComparison.Ordinal) && types.TryGetValue(name[..^suffix.Length], out string? t) && t is "histogram" or "summary")
            {
                return name[..^suffix.Length];
            }
        }

        return name;
    }

    private static Sample ParseSample(string line, int lineNo)
    {
        int i = 0;
        while (i < line.Length && line[i] is not ('{' or ' '))
        {
            i++;
        }

        string name = line[..i];
        Check(MetricName().IsMatch(name), lineNo, "bad metric name " + name);
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (line[i] != '}')
            {
                int eq = line.IndexOf('=', i);
                string label = line[i..eq];
                Check(LabelName().IsMatch(label), lineNo, "bad label name " + label);
                Check(line[eq + 1] == '"', lineNo, "label value not quoted");
                var value = new System.Text.StringBuilder();
                int j = eq + 2;
                while (line[j] != '"')
                {
                    if (line[j] == '\\')
                    {
                        j++;
                        value.Append(line[j] switch
                        {
                            'n' => '\n',
                            '\\' => '\\',
                            '"' => '"',
                            _ => throw new FormatException($"line {lineNo}: bad escape \\{line[j]}"),
                        });
                    }
                    else
                    {
                        value.Append(line[j]);
                    }

                    j++;
                }

                Check(labels.TryAdd(label, value.ToString()), lineNo, "duplicate label " + label);
                i = j + 1;
                if (line[i] == ',')
                {
                    i++;
                }
                else
                {
                    Check(line[i] == '}', lineNo, "expected , or }");
                }
            }

            i++;
        }

        Check(i < line.Length && line[i] == ' ', lineNo, "expected a space before the value");
        string[] rest = line[(i + 1)..].Split(' ');
        Check(rest.Length is 1 or 2, lineNo, "expected a value and an optional timestamp");
        double v = rest[0] switch
        {
            "+Inf" => double.PositiveInfinity,
            "-Inf" => double.NegativeInfinity,
            "NaN" => double.NaN,
            _ => double.TryParse(rest[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : throw new FormatException($"line {lineNo}: bad value {rest[0]}"),
        };
        return new Sample(name, labels, v);
    }

    private static void Check(bool condition, int line, string message)
    {
        if (!condition)
        {
            throw new FormatException($"line {line}: {message}");
        }
    }
}
