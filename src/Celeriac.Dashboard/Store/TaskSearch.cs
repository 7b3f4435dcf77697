using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Celeriac.Dashboard.Store;

/// <summary>
/// Flower's task search (<c>flower/utils/search.py</c>): terms separated by spaces (AND), <c>OR</c>, parentheses and
/// quoted phrases; a term is free text (a substring of the id, name, state, worker, args, kwargs or result) or
/// <c>field:value</c> for <c>name</c>, <c>state</c> (exact), <c>worker</c>, <c>args</c>, <c>kwargs</c> (<c>k=v</c> is an
/// exact key/value pair) and <c>result</c>; matching ignores case; a substring has at least 3 characters.
/// </summary>
public sealed class TaskSearch
{
    private const int MaxLength = 2048;
    private const int MaxTokens = 128;
    private const int MaxDepth = 5;
    private const int MinSubstring = 3;
    private static readonly HashSet<string> s_fields = new(StringComparer.Ordinal) { "name", "state", "worker", "args", "kwargs", "result" };
    private static readonly ConcurrentDictionary<string, TaskSearch> s_cache = new(StringComparer.Ordinal);

    private readonly Node _root;

    private TaskSearch(string text, Node root)
    {
        Text = text;
        _root = root;
    }

    /// <summary>The query as given (trimmed).</summary>
    public string Text { get; }

    /// <summary>Whether it matches every task (an empty query).</summary>
    public bool MatchesAll => _root is MatchAll;

    /// <summary>Parses a query; a bad one throws <see cref="FormatException"/> with Flower's message.</summary>
    public static TaskSearch Parse(string? query)
    {
        string text = (query ?? "").Trim();
        if (s_cache.TryGetValue(text, out TaskSearch? cached))
        {
            return cached;
        }

        if (text.Length > MaxLength)
        {
            throw new FormatException($"Query exceeds {MaxLength} characters.");
        }

        var parsed = new TaskSearch(text, new Parser(Tokenize(text)).Parse());
        if (s_cache.Count > 512)
        {
            s_cache.Clear();
        }

        s_cache[text] = parsed;
        return parsed;
    }

    /// <summary>Whether a task matches.</summary>
    public bool Matches(DashboardTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        return Matches(task.Uuid, task.Name, task.State, task.Worker, task.Args, task.Kwargs, task.Result);
    }

    /// <summary>Whether a task with these fields matches (what the SQL stores call per row).</summary>
    public bool Matches(string? uuid, string? name, string? state, string? worker, string? args, string? kwargs, string? result) =>
        Eval(_root, new Doc(uuid, name, state, worker, args, kwargs, result));

    /// <summary>
    /// The value (lower case) of a <c>field:value</c> term every match must satisfy (the query itself or a term of its
    /// top-level AND), or null: what a store may narrow its candidates by before <see cref="Matches(DashboardTask)"/>.
    /// </summary>
    internal string? Required(string field)
    {
        Term? term = _root switch
        {
            Term t when t.Field == field => t,
            And a => a.Children.OfType<Term>().FirstOrDefault(t => t.Field == field),
            _ => null,
        };
        return term is null ? null : Norm(term.Value);
    }

    private static bool Eval(Node node, Doc doc) => node switch
    {
        MatchAll => true,
        And a => a.Children.All(c => Eval(c, doc)),
        Or o => o.Children.Any(c => Eval(c, doc)),
        Term t => doc.Has(t),
        _ => false,
    };

    private static string Norm(string? value) => (value ?? "").ToLowerInvariant();

    private abstract record Node;

    private sealed record MatchAll : Node;

    private sealed record Term(string? Field, string Value) : Node;

    private sealed record And(IReadOnlyList<Node> Children) : Node;

    private sealed record Or(IReadOnlyList<Node> Children) : Node;

    private sealed class Doc(string? uuid, string? name, string? state, string? worker, string? args, string? kwargs, string? result)
    {
        private HashSet<string>? _pairs;

        public bool Has(Term t)
        {
            string value = Norm(t.Value);
            switch (t.Field)
            {
                case "state":
                    return Norm(state) == value;
                case "kwargs" when value.Contains('=', StringComparison.Ordinal):
                    int eq = value.IndexOf('=', StringComparison.Ordinal);
                    return Pairs().Contains(value[..eq].Trim() + "=" + value[(eq + 1)..].Trim());
                case "name":
                    return Norm(name).Contains(value, StringComparison.Ordinal);
                case "worker":
                    return Norm(worker).Contains(value, StringComparison.Ordinal);
                case "args":
                    return Norm(args).Contains(value, StringComparison.Ordinal);
                case "kwargs":
                    return Norm(kwargs).Contains(value, StringComparison.Ordinal);
                case "result":
                    return Norm(result).Contains(value, StringComparison.Ordinal);
                default:
                    return string.Join('\0', Norm(uuid), Norm(name), Norm(state), Norm(worker), Norm(args), Norm(kwargs), Norm(result))
                        .Contains(value, StringComparison.Ordinal);
            }
        }

        private HashSet<string> Pairs()
        {
            if (_pairs is not null)
            {
                return _pairs;
            }

            _pairs = new HashSet<string>(StringComparer.Ordinal);
            if (PyLiteral.TryParse(kwargs, out object? parsed) && parsed is Dictionary<string, object?> map)
            {
                foreach ((string key, object? item) in map)
                {
                    _pairs.Add(Norm(key) + "=" + Norm(PyLiteral.Str(item)));
                }
            }

            return _pairs;
        }
    }

    private readonly record struct Token(string Kind, string Value, int Position);

    private static List<Token> Tokenize(string raw)
    {
        var tokens = new List<Token>();
        int i = 0;
        void Add(string kind, string value, int position)
        {
            tokens.Add(new Token(kind, value, position));
            if (tokens.Count > MaxTokens)
            {
                throw new FormatException($"Query exceeds {MaxTokens} tokens.");
            }
        }

        while (i < raw.Length)
        {
            if (char.IsWhiteSpace(raw[i]))
            {
                i++;
                continue;
            }

            int position = i;
            if (raw[i] is '(' or ')')
            {
                Add(raw[i] == '(' ? "LPAREN" : "RPAREN", raw[i].ToString(), position);
                i++;
                continue;
            }

            var value = new StringBuilder();
            bool quoted = false, inQuote = false;
            while (i < raw.Length)
            {
                char c = raw[i];
                if (c == '\\' && i + 1 < raw.Length && raw[i + 1] is '"' or '\\')
                {
                    value.Append(raw[i + 1]);
                    i += 2;
                    continue;
                }

                if (c == '"')
                {
                    quoted = true;
                    inQuote = !inQuote;
                    i++;
                    continue;
                }

                if (!inQuote && (char.IsWhiteSpace(c) || c is '(' or ')'))
                {
                    break;
                }

                value.Append(c);
                i++;
            }

            if (inQuote)
            {
                throw new FormatException($"Unterminated quoted phrase at position {position}.");
            }

            string text = value.ToString();
            if (text.Length == 0)
            {
                throw new FormatException($"Empty search term at position {position}.");
            }

            if (!quoted && text is "AND" or "OR")
            {
                Add(text, text, position);
            }
            else if (!quoted && text == "NOT")
            {
                throw new FormatException($"NOT is not supported at position {position}.");
            }
            else
            {
                Add("TERM", text, position);
            }
        }

        tokens.Add(new Token("EOF", "", raw.Length));
        return tokens;
    }

    private sealed class Parser(List<Token> tokens)
    {
        private int _index;

        private Token Current => tokens[_index];

        public Node Parse()
        {
            if (Current.Kind == "EOF")
            {
                return new MatchAll();
            }

            Node e = ParseOr(0);
            return Current.Kind != "EOF" ? throw Error($"Unexpected '{Current.Value}'", Current.Position) : e;
        }

        private static FormatException Error(string message, int position) =>
            new(string.Create(CultureInfo.InvariantCulture, $"{message} at position {position}."));

        private Node ParseOr(int depth)
        {
            var children = new List<Node> { ParseAnd(depth) };
            while (Current.Kind == "OR")
            {
                Token op = tokens[_index++];
                if (Current.Kind is "EOF" or "RPAREN" or "AND" or "OR")
                {
                    throw Error("OR must be followed by a search term", op.Position);
                }

                children.Add(ParseAnd(depth));
            }

            return children.Count == 1 ? children[0] : new Or(children);
        }

        private Node ParseAnd(int depth)
        {
            var children = new List<Node> { ParsePrimary(depth) };
            while (Current.Kind is not ("EOF" or "RPAREN" or "OR"))
            {
                if (Current.Kind == "AND")
                {
                    Token op = tokens[_index++];
                    if (Current.Kind is "EOF" or "RPAREN" or "AND" or "OR")
                    {
                        throw Error("AND must be followed by a search term", op.Position);
                    }
                }

                children.Add(ParsePrimary(depth));
            }

            return children.Count == 1 ? children[0] : new And(children);
        }

        private Node ParsePrimary(int depth)
        {
            Token token = Current;
            if (token.Kind == "LPAREN")
            {
                if (depth >= MaxDepth)
                {
                    throw Error($"Query nesting exceeds {MaxDepth} levels", token.Position);
                }

                _index++;
                if (Current.Kind == "RPAREN")
                {
                    throw Error("Empty group", token.Position);
                }

                Node e = ParseOr(depth + 1);
                if (Current.Kind != "RPAREN")
                {
                    throw Error("Missing closing parenthesis", token.Position);
                }

                _index++;
                return e;
            }

            if (token.Kind != "TERM")
            {
                throw Error("Expected a search term", token.Position);
            }

            _index++;
            return ParseTerm(token);
        }

        private static Term ParseTerm(Token token)
        {
            string? field = null;
            string value = token.Value;
            int colon = value.IndexOf(':', StringComparison.Ordinal);
            if (colon >= 0 && s_fields.Contains(value[..colon].ToLowerInvariant()))
            {
                field = value[..colon].ToLowerInvariant();
                value = value[(colon + 1)..];
            }

            if (field is null && value.StartsWith('-'))
            {
                throw Error("Negation with '-' is not supported", token.Position);
            }

            if (value.Length == 0)
            {
                throw Error("Search qualifier requires a value", token.Position);
            }

            bool exact = field == "state" || (field == "kwargs" && value.Contains('=', StringComparison.Ordinal));
            if (!exact && value.Trim().Length < MinSubstring)
            {
                throw Error($"Substring search terms must contain at least {MinSubstring} characters", token.Position);
            }

            return new Term(field, value);
        }
    }
}
