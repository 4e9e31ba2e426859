using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Nibble.Text.Templates;

/// <summary>
/// jinja2's built-in filters that chat templates use, with jinja2 3.1's argument conventions, plus transformers'
/// <c>tojson</c> (json.dumps with ensure_ascii=False). Filters jinja2 has but Nibble does not raise "Unsupported".
/// </summary>
internal static class JinjaFilters
{
    public static object? Apply(JinjaInterpreter interp, string name, object? value, List<object?> args, Dictionary<string, object?> kwargs)
    {
        object? Arg(int i, string key, object? dflt) => i < args.Count ? args[i] : kwargs.TryGetValue(key, out var v) ? v : dflt;

        switch (name)
        {
            case "tojson":
            {
                // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
                bool ensureAscii = Py.Truthy(Arg(0, "ensure_ascii", false));
                object? indent = Arg(1, "indent", null);
                object? separators = Arg(2, "separators", null);
                bool sortKeys = Py.Truthy(Arg(3, "sort_keys", false));
                string? indentText = indent switch
                {
                    null => null,
                    string s => s,
                    long or bool => new string(' ', (int)Math.Max(0, Py.ToLong(indent))),
                    _ => throw new ChatTemplateException("TypeError", "tojson indent must be an int or a string"),
                };
                string itemSep = indentText is null ? ", " : ",", keySep = ": ";
                if (separators is JinjaTuple or List<object?>)
                {
                    var seps = Py.ToList(separators);
                    if (seps.Count != 2) throw new ChatTemplateException("ValueError", "separators must be a (item, key) pair");
                    itemSep = Py.Str(seps[0]); keySep = Py.Str(seps[1]);
                }
                return PyJson.Dumps(value, new PyJson.Options(ensureAscii, indentText, itemSep, keySep, sortKeys));
            }
            case "length" or "count": return Length(value);
            case "string": return Py.Str(value);
            case "trim": return PyMethods.Strip(Py.Str(value), Arg(0, "chars", null) as string, true, true);
            case "upper": return Py.Str(value).ToUpperInvariant();
            case "lower": return Py.Str(value).ToLowerInvariant();
            case "title": return PyMethods.Title(Py.Str(value));
            case "capitalize": { string s = Py.Str(value); return s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant(); }
            case "default" or "d":
            {
                object? dflt = Arg(0, "default_value", "");
                bool boolean = Py.Truthy(Arg(1, "boolean", false));
                return value is JinjaUndefined || (boolean && !Py.Truthy(value)) ? dflt : value;
            }
            case "join":
            {
                string sep = Py.Str(Arg(0, "d", ""));
                object? attribute = Arg(1, "attribute", null);
                var items = Py.ToList(value);
                if (attribute is not null) items = items.Select(x => Attr(x, attribute)).ToList();
                return string.Join(sep, items.Select(Py.Str));
            }
            case "first":
            {
                var items = Py.ToList(value);
                return items.Count > 0 ? items[0] : new JinjaUndefined("No first item, sequence was empty.");
            }
            case "last":
            {
                var items = Py.ToList(value);
                return items.Count > 0 ? items[^1] : new JinjaUndefined("No last item, sequence was empty.");
            }
            case "list": return Py.ToList(value);
            case "items":
                return value switch
                {
                    JinjaUndefined => new List<object?>(),
                    JinjaDict d => d.Select(kv => (object?)new JinjaTuple([kv.Key, kv.Value])).ToList(),
                    _ => throw new ChatTemplateException("TypeError", "Can only get item pairs from a mapping."),
                };
            case "dictsort":
            {
                if (value is not JinjaDict d) throw new ChatTemplateException("TypeError", "dictsort expects a mapping");
                bool caseSensitive = Py.Truthy(Arg(0, "case_sensitive", false));
                string by = Py.Str(Arg(1, "by", "key"));
                bool reverse = Py.Truthy(Arg(2, "reverse", false));
                var pairs = d.Select(kv => new JinjaTuple([kv.Key, kv.Value])).ToList();
                var sorted = SortBy(pairs, p => SortKey(by == "value" ? p.Items[1] : p.Items[0], caseSensitive), reverse);
                return sorted.Cast<object?>().ToList();
            }
            case "replace":
            {
                string s = Py.Str(value);
                long count = Arg(2, "count", null) is { } c ? Py.ToLong(c) : -1;
                return PyMethods.Replace(s, Py.Str(Arg(0, "old", "")), Py.Str(Arg(1, "new", "")), count);
            }
            case "indent": return Indent(Py.Str(value), Arg(0, "width", 4L), Py.Truthy(Arg(1, "first", false)), Py.Truthy(Arg(2, "blank", false)));
            case "map": return Map(interp, value, args, kwargs);
            case "select" or "reject": return Select(interp, value, args, name == "select", null);
            case "selectattr" or "rejectattr":
            {
                if (args.Count == 0) throw new ChatTemplateException("TypeError", $"{name} needs an attribute name");
                return Select(interp, value, args.Skip(1).ToList(), name == "selectattr", args[0]);
            }
            case "safe" or "forceescape": return value is string ? value : Py.Str(value);
            case "e" or "escape":
                return Py.Str(value).Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&#34;").Replace("'", "&#39;");
            case "int": return ToInt(value, Arg(0, "default", 0L), Py.ToLong(Arg(1, "base", 10L)));
            case "float": return ToFloat(value, Arg(0, "default", 0.0));
            case "abs":
                return value switch
                {
                    long l => (object)Math.Abs(l), double d => Math.Abs(d), bool b => b ? 1L : 0L,
                    _ => throw new ChatTemplateException("TypeError", $"bad operand type for abs(): '{Py.TypeName(value)}'"),
                };
            case "round":
            {
                long precision = Py.ToLong(Arg(0, "precision", 0L));
                string method = Py.Str(Arg(1, "method", "common"));
                double x = Py.ToDouble(value), f = Math.Pow(10, precision);
                return method switch
                {
                    "common" => Math.Round(x * f, MidpointRounding.ToEven) / f,
                    "ceil" => Math.Ceiling(x * f) / f,
                    "floor" => Math.Floor(x * f) / f,
                    _ => throw new ChatTemplateException("FilterArgumentError", "method must be common, ceil or floor"),
                };
            }
            case "reverse":
                return value is string rs ? string.Concat(Py.StringChars(rs).AsEnumerable().Reverse().Cast<string>()) : Py.ToList(value).AsEnumerable().Reverse().ToList();
            case "sort":
            {
                bool reverse = Py.Truthy(Arg(0, "reverse", false));
                bool caseSensitive = Py.Truthy(Arg(1, "case_sensitive", false));
                object? attribute = Arg(2, "attribute", null);
                return SortBy(Py.ToList(value), x => SortKey(attribute is null ? x : Attr(x, attribute), caseSensitive), reverse);
            }
            case "unique":
            {
                bool caseSensitive = Py.Truthy(Arg(0, "case_sensitive", false));
                object? attribute = Arg(1, "attribute", null);
                var seen = new List<object?>();
                var result = new List<object?>();
                foreach (var x in Py.ToList(value))
                {
                    var key = SortKey(attribute is null ? x : Attr(x, attribute), caseSensitive);
                    if (seen.Any(s => Py.Eq(s, key))) continue;
                    seen.Add(key); result.Add(x);
                }
                return result;
            }
            case "sum":
            {
                object? attribute = Arg(0, "attribute", null);
                object? total = Arg(1, "start", 0L);
                foreach (var x in Py.ToList(value)) total = PyOps.Binary("+", total, attribute is null ? x : Attr(x, attribute));
                return total;
            }
            case "min" or "max":
            {
                bool caseSensitive = Py.Truthy(Arg(0, "case_sensitive", false));
                object? attribute = Arg(1, "attribute", null);
                var items = Py.ToList(value);
                if (items.Count == 0) return new JinjaUndefined($"No aggregated item, sequence was empty.");
                var sorted = SortBy(items, x => SortKey(attribute is null ? x : Attr(x, attribute), caseSensitive), false);
                return name == "min" ? sorted[0] : sorted[^1];
            }
            case "wordcount": return (long)Regex.Matches(Py.Str(value), @"\w+").Count;
            case "format":
            {
                if (kwargs.Count > 0) throw new ChatTemplateException("Unsupported", "the format filter with keyword arguments");
                return PyFormat.Percent(Py.Str(value), new JinjaTuple(args.ToArray()));
            }
            case "center":
            {
                string s = Py.Str(value);
                long width = Py.ToLong(Arg(0, "width", 80L));
                long margin = width - s.Length;
                if (margin <= 0) return s;
                long left = margin / 2 + (margin & width & 1); // CPython's str.center rounding
                return new string(' ', (int)left) + s + new string(' ', (int)(margin - left));
            }
            case "attr": return PyMethods.GetAttr(value, Py.Str(Arg(0, "name", "")));
            default:
                if (JinjaParser.JinjaFilters.Contains(name))
                    throw new ChatTemplateException("Unsupported", $"the '{name}' filter");
                throw new ChatTemplateException("TemplateRuntimeError", $"No filter named '{name}' found.");
        }
    }

    public static long Length(object? value) => value switch
    {
        string s => Py.StringChars(s).Count,
        List<object?> l => l.Count,
        JinjaTuple t => t.Items.Length,
        JinjaDict d => d.Count,
        JinjaUndefined => 0,
        JinjaNamespace => throw new ChatTemplateException("TypeError", "object of type 'Namespace' has no len()"),
        _ => throw new ChatTemplateException("TypeError", $"object of type '{Py.TypeName(value)}' has no len()"),
    };

    /// <summary>jinja's attribute lookup for filters' attribute= arguments ("a.b" and "0" paths allowed).</summary>
    static object? Attr(object? obj, object? attribute)
    {
        if (attribute is long or bool) return PyMethods.GetItem(obj, attribute);
        foreach (var part in Py.Str(attribute).Split('.'))
            obj = long.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out long idx)
                ? PyMethods.GetItem(obj, idx) : PyMethods.GetItem(obj, part);
        return obj;
    }

    static object? SortKey(object? v, bool caseSensitive) => !caseSensitive && v is string s ? s.ToLowerInvariant() : v;

    static List<T> SortBy<T>(List<T> items, Func<T, object?> key, bool reverse)
    {
        // Stable sort like Python's sorted().
        var indexed = items.Select((x, i) => (x, i, k: key(x))).ToList();
        indexed.Sort((a, b) =>
        {
            int c = Py.Compare(a.k, b.k, "<");
            if (reverse) c = -c;
            return c != 0 ? c : a.i.CompareTo(b.i);
        });
        return indexed.Select(t => t.x).ToList();
    }

    static string Indent(string s, object? width, bool first, bool blank)
    {
        string indention = width is string w ? w : new string(' ', (int)Math.Max(0, Py.ToLong(width)));
        s += "\n"; // jinja2 appends a newline so splitlines keeps a trailing empty line
        var lines = PyMethods.SplitLines(s);
        string rv;
        if (blank) rv = string.Join("\n" + indention, lines);
        else
        {
            rv = lines[0];
            if (lines.Count > 1) rv += "\n" + string.Join("\n", lines.Skip(1).Select(l => l.Length > 0 ? indention + l : l));
        }
        return first ? indention + rv : rv;
    }

    static object? Map(JinjaInterpreter interp, object? value, List<object?> args, Dictionary<string, object?> kwargs)
    {
        var items = Py.ToList(value);
        if (args.Count == 0 && kwargs.TryGetValue("attribute", out var attribute))
        {
            kwargs.TryGetValue("default", out var dflt);
            bool hasDefault = kwargs.ContainsKey("default");
            return items.Select(x =>
            {
                var r = Attr(x, attribute);
                return r is JinjaUndefined && hasDefault ? dflt : r;
            }).ToList();
        }
        if (args.Count == 0) throw new ChatTemplateException("FilterArgumentError", "map requires a filter argument");
        string filter = Py.Str(args[0]);
        var rest = args.Skip(1).ToList();
        return items.Select(x => interp.CallFilter(filter, x, rest, kwargs)).ToList();
    }

    static object? Select(JinjaInterpreter interp, object? value, List<object?> args, bool keep, object? attribute)
    {
        var items = Py.ToList(value);
        var result = new List<object?>();
        foreach (var x in items)
        {
            var probe = attribute is null ? x : Attr(x, attribute);
            bool ok = args.Count == 0 ? Py.Truthy(probe) : JinjaTests.Apply(interp, Py.Str(args[0]), probe, args.Skip(1).ToList());
            if (ok == keep) result.Add(x);
        }
        return result;
    }

    static object? ToInt(object? v, object? dflt, long numberBase)
    {
        switch (v)
        {
            case long l: return l;
            case bool b: return b ? 1L : 0L;
            case double d: return double.IsFinite(d) ? (long)Math.Truncate(d) : dflt;
            case string s:
            {
                string t = s.Trim().Replace("_", "");
                try { return numberBase == 10 ? long.Parse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) : Convert.ToInt64(t, (int)numberBase); }
                catch (Exception ex) when (ex is FormatException or OverflowException or ArgumentException)
                {
                    return double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double f) ? (long)Math.Truncate(f) : dflt;
                }
            }
            default: return dflt;
        }
    }

    static object? ToFloat(object? v, object? dflt) => v switch
    {
        long l => (double)l,
        double d => d,
        bool b => b ? 1.0 : 0.0,
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double f) => f,
        _ => dflt,
    };
}
