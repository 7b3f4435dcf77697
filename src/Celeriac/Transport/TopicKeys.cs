namespace Celeriac.Transport;

/// <summary>AMQP's topic exchange rules, for the transports that emulate topic exchanges (Redis, PostgreSQL).</summary>
public static class TopicKeys
{
    /// <summary>AMQP topic matching (<c>*</c> one word, <c>#</c> any number); a key without wildcards matches itself only.</summary>
    public static bool Matches(string pattern, string key)
    {
        if (pattern.AsSpan().IndexOfAny('*', '#') < 0)
        {
            return pattern == key;
        }

        return Match(pattern.Split('.'), 0, key.Length == 0 ? [] : key.Split('.'), 0);

        static bool Match(string[] p, int i, string[] k, int j)
        {
            if (i == p.Length)
            {
                return j == k.Length;
            }

            if (p[i] == "#")
            {
                for (int skip = j; skip <= k.Length; skip++)
                {
                    if (Match(p, i + 1, k, skip))
                    {
                        return true;
                    }
                }

                return false;
            }

            return j < k.Length && (p[i] == "*" || p[i] == k[j]) && Match(p, i + 1, k, j + 1);
        }
    }
}
