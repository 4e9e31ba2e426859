using System.Text;

namespace Nibble.Text.Templates;

/// <summary>
/// Attribute and item access with jinja2's rules (<c>a.b</c>: Python attribute first, then item; <c>a['b']</c>: item
/// first), the str/dict/list methods templates call, and the immutable sandbox's refusal of mutating ones.
/// </summary>
internal static class PyMethods
{
    static readonly HashSet<string> UnsafeListMethods = ["append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"];
    static readonly HashSet<string> UnsafeDictMethods = ["pop", "popitem", "setdefault", "update", "clear"];
    static readonly HashSet<string> DictMethods = ["get", "items", "keys", "values", "copy", "fromkeys"];
    static readonly HashSet<string> StrMethods =
    [
        "upper", "lower", "title", "capitalize", "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith",
        "endswith", "replace", "find", "rfind", "index", "rindex", "count", "join", "isdigit", "isalpha", "isalnum", "isspace",
        "isupper", "islower", "isnumeric", "isdecimal", "zfill", "format", "swapcase", "center", "ljust", "rjust", "partition",
        "rpartition", "casefold", "removeprefix", "removesuffix", "encode", "expandtabs", "istitle", "isidentifier", "isprintable",
    ];

    public static object? GetAttr(object? obj, string name)
    {
        switch (obj)
        {
            case JinjaUndefined u: throw u.Fail();
            case JinjaDict d:
                if (UnsafeDictMethods.Contains(name)) return Unsafe(name, "dict");
                if (DictMethods.Contains(name)) return Bound(name, args => DictMethod(d, name, args));
                return d.TryGetValue(name, out var v) ? v : new JinjaUndefined($"'dict object' has no attribute '{name}'");
            case string s:
                if (StrMethods.Contains(name)) return new JinjaCallable("str." + name, (args, kwargs) => StrMethod(s, name, args, kwargs));
                return new JinjaUndefined($"'str object' has no attribute '{name}'");
            case List<object?> l:
                if (UnsafeListMethods.Contains(name)) return Unsafe(name, "list");
                if (name is "index" or "count") return Bound(name, args => ListMethod(l, name, args));
                return new JinjaUndefined($"'list object' has no attribute '{name}'");
            case JinjaNamespace ns:
                return ns.Attributes.TryGetValue(name, out var nv) ? nv : new JinjaUndefined($"'Namespace object' has no attribute '{name}'");
            case JinjaLoop loop: return loop.Get(name);
            case null: return new JinjaUndefined($"'None' has no attribute '{name}'");
            default: return new JinjaUndefined($"'{Py.TypeName(obj)} object' has no attribute '{name}'");
        }
    }

    static JinjaUndefined Unsafe(string name, string type) =>
        new($"access to attribute '{name}' of '{type}' object is unsafe.", "SecurityError");

    static JinjaCallable Bound(string name, Func<List<object?>, object?> f) => new(name, (args, _) => f(args));

    public static object? GetItem(object? obj, object? key)
    {
        switch (obj)
        {
            case JinjaUndefined u: throw u.Fail();
            case JinjaDict d:
                if (key is not null && key is not JinjaUndefined && d.TryGetValue(key, out var v)) return v;
                return key is string ks ? GetAttr(d, ks) is JinjaCallable c ? c : new JinjaUndefined($"'dict object' has no attribute '{ks}'")
                    : new JinjaUndefined($"'dict object' has no attribute {Py.Repr(key)}");
            case List<object?> l: return IndexSeq(l, key, "list");
            case JinjaTuple t: return IndexSeq(t.Items, key, "tuple");
            case string s:
                if (key is long or bool)
                {
                    var chars = Py.StringChars(s);
                    long i = Py.ToLong(key);
                    if (i < 0) i += chars.Count;
                    return i >= 0 && i < chars.Count ? chars[(int)i] : new JinjaUndefined("string index out of range");
                }
                return key is string name ? GetAttr(s, name) : new JinjaUndefined("str indices must be integers");
            case JinjaNamespace or JinjaLoop: return key is string n ? GetAttr(obj, n) : new JinjaUndefined("no such item");
            case null: return new JinjaUndefined($"'None' has no attribute {Py.Repr(key)}");
            default: return new JinjaUndefined($"'{Py.TypeName(obj)} object' has no attribute {Py.Repr(key)}");
        }
    }

    static object? IndexSeq(IReadOnlyList<object?> items, object? key, string type)
    {
        if (key is long or bool)
        {
            long i = Py.ToLong(key);
            if (i < 0) i += items.Count;
            return i >= 0 && i < items.Count ? items[(int)i] : new JinjaUndefined($"{type} object has no element {Py.ToLong(key)}");
        }
        if (key is string name) return GetAttr(items is List<object?> l ? l : null, name);
        return new JinjaUndefined($"{type} indices must be integers");
    }

    public static object? Slice(object? obj, object? start, object? stop, object? step)
    {
        long st = step is null ? 1 : Py.ToLong(step);
        if (st == 0) throw new ChatTemplateException("ValueError", "slice step cannot be zero");
        IReadOnlyList<object?> items = obj switch
        {
            List<object?> l => l,
            JinjaTuple t => t.Items,
            string s => Py.StringChars(s),
            JinjaUndefined u => throw u.Fail(),
            _ => throw new ChatTemplateException("TypeError", $"'{Py.TypeName(obj)}' object is not subscriptable"),
        };
        int n = items.Count;
        long Norm(object? v, long dflt, bool isStart)
        {
            if (v is null) return dflt;
            long x = Py.ToLong(v);
            if (x < 0) x += n;
            if (st > 0) return Math.Clamp(x, 0, n);
            return Math.Clamp(x, -1, n - 1);
        }
        long a = Norm(start, st > 0 ? 0 : n - 1, true), b = Norm(stop, st > 0 ? n : -1, false);
        var result = new List<object?>();
        if (st > 0) for (long i = a; i < b; i += st) result.Add(items[(int)i]);
        else for (long i = a; i > b; i += st) result.Add(items[(int)i]);
        return obj switch
        {
            string => string.Concat(result.Cast<string>()),
            JinjaTuple => new JinjaTuple(result.ToArray()),
            _ => result,
        };
    }

    static object? DictMethod(JinjaDict d, string name, List<object?> args) => name switch
    {
        "get" => args.Count >= 1 && args[0] is not null && args[0] is not JinjaUndefined && d.TryGetValue(args[0]!, out var v) ? v : args.Count >= 2 ? args[1] : null,
        "items" => d.Select(kv => (object?)new JinjaTuple([kv.Key, kv.Value])).ToList(),
        "keys" => d.Keys.Cast<object?>().ToList(),
        "values" => d.Values.ToList(),
        "copy" => Copy(d),
        _ => throw new ChatTemplateException("Unsupported", $"dict.{name}()"),
    };

    static JinjaDict Copy(JinjaDict d)
    {
        var c = new JinjaDict();
        foreach (var (k, v) in d) c[k] = v;
        return c;
    }

    static object? ListMethod(List<object?> l, string name, List<object?> args)
    {
        if (args.Count < 1) throw new ChatTemplateException("TypeError", $"{name}() takes at least 1 argument (0 given)");
        if (name == "count") return (long)l.Count(x => Py.Eq(x, args[0]));
        int i = l.FindIndex(x => Py.Eq(x, args[0]));
        return i >= 0 ? (long)i : throw new ChatTemplateException("ValueError", $"{Py.Repr(args[0])} is not in list");
    }

    static string Arg(List<object?> args, int i, string method)
    {
        if (i >= args.Count) throw new ChatTemplateException("TypeError", $"str.{method}() missing an argument");
        return args[i] is string s ? s : throw new ChatTemplateException("TypeError", $"str.{method}() argument must be str, not {Py.TypeName(args[i])}");
    }

    static string? OptChars(List<object?> args, string method) =>
        args.Count == 0 || args[0] is null ? null : args[0] is string s ? s : throw new ChatTemplateException("TypeError", $"{method} arg must be None or str");

    public static bool IsPySpace(char c) => char.IsWhiteSpace(c) || c is '\u001c' or '\u001d' or '\u001e' or '\u001f';

    public static string Strip(string s, string? chars, bool left, bool right)
    {
        int a = 0, b = s.Length;
        Func<char, bool> drop = chars is null ? IsPySpace : c => chars.Contains(c);
        if (left) while (a < b && drop(s[a])) a++;
        if (right) while (b > a && drop(s[b - 1])) b--;
        return s[a..b];
    }

    static object? StrMethod(string s, string name, List<object?> args, Dictionary<string, object?> kwargs)
    {
        switch (name)
        {
            case "upper": return s.ToUpperInvariant();
            case "lower": return s.ToLowerInvariant();
            case "casefold": return s.ToLowerInvariant();
            case "swapcase": return string.Concat(s.Select(c => char.IsUpper(c) ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c)));
            case "title": return Title(s);
            case "capitalize": return s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();
            case "strip": return Strip(s, OptChars(args, name), true, true);
            case "lstrip": return Strip(s, OptChars(args, name), true, false);
            case "rstrip": return Strip(s, OptChars(args, name), false, true);
            case "split":
            case "rsplit":
            {
                object? sep = args.Count > 0 ? args[0] : kwargs.GetValueOrDefault("sep");
                long max = args.Count > 1 ? Py.ToLong(args[1]) : kwargs.TryGetValue("maxsplit", out var m) ? Py.ToLong(m) : -1;
                return Split(s, sep as string, max, name == "rsplit").Cast<object?>().ToList();
            }
            case "splitlines": return SplitLines(s).Cast<object?>().ToList();
            case "startswith":
            case "endswith":
            {
                var prefixes = args.Count > 0 && args[0] is JinjaTuple t ? t.Items.Select(x => x as string ?? "").ToList() : [Arg(args, 0, name)];
                string sub = s;
                if (args.Count > 1) sub = (string)Slice(s, args[1], args.Count > 2 ? args[2] : null, null)!;
                return prefixes.Any(p => name == "startswith" ? sub.StartsWith(p, StringComparison.Ordinal) : sub.EndsWith(p, StringComparison.Ordinal));
            }
            case "replace":
            {
                string old = Arg(args, 0, name), repl = Arg(args, 1, name);
                long count = args.Count > 2 ? Py.ToLong(args[2]) : -1;
                return Replace(s, old, repl, count);
            }
            case "find": return (long)s.IndexOf(Arg(args, 0, name), StringComparison.Ordinal);
            case "rfind": return (long)s.LastIndexOf(Arg(args, 0, name), StringComparison.Ordinal);
            case "index":
            case "rindex":
            {
                int i = name == "index" ? s.IndexOf(Arg(args, 0, name), StringComparison.Ordinal) : s.LastIndexOf(Arg(args, 0, name), StringComparison.Ordinal);
                return i >= 0 ? (long)i : throw new ChatTemplateException("ValueError", "substring not found");
            }
            case "count":
            {
                string sub = Arg(args, 0, name);
                if (sub.Length == 0) return (long)(s.Length + 1);
                long n = 0;
                for (int i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal)) n++;
                return n;
            }
            case "join":
            {
                var parts = Py.ToList(args.Count > 0 ? args[0] : null).Select(x => x is string str ? str
                    : throw new ChatTemplateException("TypeError", $"sequence item: expected str instance, {Py.TypeName(x)} found"));
                return string.Join(s, parts);
            }
            case "isdigit" or "isnumeric" or "isdecimal": return s.Length > 0 && s.All(char.IsDigit);
            case "isalpha": return s.Length > 0 && s.All(char.IsLetter);
            case "isalnum": return s.Length > 0 && s.All(char.IsLetterOrDigit);
            case "isspace": return s.Length > 0 && s.All(IsPySpace);
            case "isupper": return s.Any(char.IsLetter) && !s.Any(char.IsLower);
            case "islower": return s.Any(char.IsLetter) && !s.Any(char.IsUpper);
            case "zfill":
            {
                int width = (int)Py.ToLong(args.Count > 0 ? args[0] : 0L);
                if (s.Length >= width) return s;
                int signLen = s.Length > 0 && s[0] is '+' or '-' ? 1 : 0;
                return s[..signLen] + new string('0', width - s.Length) + s[signLen..];
            }
            case "removeprefix": { string p = Arg(args, 0, name); return s.StartsWith(p, StringComparison.Ordinal) ? s[p.Length..] : s; }
            case "removesuffix": { string p = Arg(args, 0, name); return p.Length > 0 && s.EndsWith(p, StringComparison.Ordinal) ? s[..^p.Length] : s; }
            case "format": return StrFormat(s, args, kwargs);
            default: throw new ChatTemplateException("Unsupported", $"str.{name}()");
        }
    }

    /// <summary>str.format with plain fields ({}, {0}, {name}, {{ }}); format specs and conversions are not supported.</summary>
    static string StrFormat(string s, List<object?> args, Dictionary<string, object?> kwargs)
    {
        var sb = new StringBuilder();
        int auto = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '{' && i + 1 < s.Length && s[i + 1] == '{') { sb.Append('{'); i++; continue; }
            if (c == '}' && i + 1 < s.Length && s[i + 1] == '}') { sb.Append('}'); i++; continue; }
            if (c == '}') throw new ChatTemplateException("ValueError", "Single '}' encountered in format string");
            if (c != '{') { sb.Append(c); continue; }
            int close = s.IndexOf('}', i);
            if (close < 0) throw new ChatTemplateException("ValueError", "Single '{' encountered in format string");
            string field = s[(i + 1)..close];
            if (field.Contains(':') || field.Contains('!') || field.Contains('.') || field.Contains('['))
                throw new ChatTemplateException("Unsupported", "str.format() with format specs, conversions or field paths");
            object? value;
            if (field.Length == 0) value = auto < args.Count ? args[auto++] : throw new ChatTemplateException("IndexError", "Replacement index out of range for positional args tuple");
            else if (int.TryParse(field, out int idx)) value = idx < args.Count ? args[idx] : throw new ChatTemplateException("IndexError", $"Replacement index {idx} out of range for positional args tuple");
            else value = kwargs.TryGetValue(field, out var kv) ? kv : throw new ChatTemplateException("KeyError", Py.Repr(field));
            sb.Append(Py.Str(value));
            i = close;
        }
        return sb.ToString();
    }

    public static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool prevCased = false;
        foreach (char c in s)
        {
            if (char.IsLetter(c)) { sb.Append(prevCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c)); prevCased = true; }
            else { sb.Append(c); prevCased = false; }
        }
        return sb.ToString();
    }

    public static string Replace(string s, string old, string repl, long count)
    {
        if (count < 0) return old.Length == 0 ? InsertEverywhere(s, repl, -1) : s.Replace(old, repl, StringComparison.Ordinal);
        if (old.Length == 0) return InsertEverywhere(s, repl, count);
        var sb = new StringBuilder();
        int pos = 0;
        for (long n = 0; n < count; n++)
        {
            int i = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (i < 0) break;
            sb.Append(s, pos, i - pos).Append(repl);
            pos = i + old.Length;
        }
        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    static string InsertEverywhere(string s, string repl, long count)
    {
        var sb = new StringBuilder();
        long n = 0;
        for (int i = 0; i <= s.Length; i++)
        {
            if (count < 0 || n < count) { sb.Append(repl); n++; }
            if (i < s.Length) sb.Append(s[i]);
        }
        return sb.ToString();
    }

    public static List<string> Split(string s, string? sep, long max, bool fromRight)
    {
        var parts = new List<string>();
        if (sep is null)
        {
            // Runs of whitespace separate; leading/trailing whitespace gives no empty parts.
            var words = new List<(int, int)>();
            int i = 0;
            while (i < s.Length)
            {
                while (i < s.Length && IsPySpace(s[i])) i++;
                if (i >= s.Length) break;
                int st = i;
                while (i < s.Length && !IsPySpace(s[i])) i++;
                words.Add((st, i));
            }
            if (max < 0 || words.Count <= max + 1) return words.Select(w => s[w.Item1..w.Item2]).ToList();
            if (!fromRight)
            {
                for (int k = 0; k < max; k++) parts.Add(s[words[k].Item1..words[k].Item2]);
                parts.Add(Strip(s[words[(int)max].Item1..], null, false, true));
                return parts;
            }
            int keep = words.Count - (int)max;
            parts.Add(Strip(s[..words[keep - 1].Item2], null, true, false));
            for (int k = keep; k < words.Count; k++) parts.Add(s[words[k].Item1..words[k].Item2]);
            return parts;
        }
        if (sep.Length == 0) throw new ChatTemplateException("ValueError", "empty separator");
        var all = s.Split(sep, StringSplitOptions.None).ToList();
        if (max < 0 || all.Count <= max + 1) return all;
        if (!fromRight)
        {
            parts.AddRange(all.Take((int)max));
            parts.Add(string.Join(sep, all.Skip((int)max)));
            return parts;
        }
        int head = all.Count - (int)max;
        parts.Add(string.Join(sep, all.Take(head)));
        parts.AddRange(all.Skip(head));
        return parts;
    }

    /// <summary>Python's str.splitlines (no keepends): \n, \r, \r\n, \v, \f, \x1c-\x1e, \x85, \u2028, \u2029.</summary>
    public static List<string> SplitLines(string s)
    {
        var lines = new List<string>();
        int start = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c is '\n' or '\r' or '\v' or '\f' or '\u001c' or '\u001d' or '\u001e' or '\u0085' or '\u2028' or '\u2029')
            {
                lines.Add(s[start..i]);
                if (c == '\r' && i + 1 < s.Length && s[i + 1] == '\n') i++;
                start = i + 1;
            }
        }
        if (start < s.Length) lines.Add(s[start..]);
        return lines;
    }
}
