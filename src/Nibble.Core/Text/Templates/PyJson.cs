using System.Globalization;
using System.Text;

namespace Nibble.Text.Templates;

/// <summary>
/// Python's <c>json.dumps</c> as transformers' <c>tojson</c> filter calls it
/// (<c>ensure_ascii=False, indent=None, separators=None, sort_keys=False</c> by default, all overridable):
/// default separators ", " and ": " (or "," with indent), float repr, non-ASCII kept unless ensure_ascii.
/// </summary>
internal static class PyJson
{
    public sealed record Options(bool EnsureAscii = false, string? Indent = null, string ItemSeparator = ", ", string KeySeparator = ": ", bool SortKeys = false);

    public static string Dumps(object? value, Options o)
    {
        var sb = new StringBuilder();
        Write(sb, value, o, 0);
        return sb.ToString();
    }

    static void Write(StringBuilder sb, object? v, Options o, int depth)
    {
        switch (v)
        {
            case null: sb.Append("null"); return;
            case bool b: sb.Append(b ? "true" : "false"); return;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); return;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : Py.FloatRepr(d));
                return;
            case string s: WriteString(sb, s, o.EnsureAscii); return;
            case List<object?> list: WriteArray(sb, list, o, depth); return;
            case JinjaTuple t: WriteArray(sb, t.Items, o, depth); return;
            case JinjaDict dict:
            {
                if (dict.Count == 0) { sb.Append("{}"); return; }
                var items = dict.Select(kv => (Key: KeyString(kv.Key), kv.Value)).ToList();
                if (o.SortKeys) items = items.OrderBy(x => x.Key, StringComparer.Ordinal).ToList();
                sb.Append('{');
                for (int i = 0; i < items.Count; i++)
                {
                    if (i > 0) sb.Append(o.ItemSeparator);
                    NewLine(sb, o, depth + 1);
                    WriteString(sb, items[i].Key, o.EnsureAscii);
                    sb.Append(o.KeySeparator);
                    Write(sb, items[i].Value, o, depth + 1);
                }
                NewLine(sb, o, depth);
                sb.Append('}');
                return;
            }
            case JinjaUndefined:
                throw new ChatTemplateException("TypeError", "Object of type Undefined is not JSON serializable");
            default:
                throw new ChatTemplateException("TypeError", $"Object of type {Py.TypeName(v)} is not JSON serializable");
        }
    }

    static string KeyString(object k) => k switch
    {
        string s => s,
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => Py.FloatRepr(d),
        _ => throw new ChatTemplateException("TypeError", $"keys must be str, int, float, bool or None, not {Py.TypeName(k)}"),
    };

    static void WriteArray(StringBuilder sb, IReadOnlyList<object?> items, Options o, int depth)
    {
        if (items.Count == 0) { sb.Append("[]"); return; }
        sb.Append('[');
        for (int i = 0; i < items.Count; i++)
        {
            if (i > 0) sb.Append(o.ItemSeparator);
            NewLine(sb, o, depth + 1);
            Write(sb, items[i], o, depth + 1);
        }
        NewLine(sb, o, depth);
        sb.Append(']');
    }

    static void NewLine(StringBuilder sb, Options o, int depth)
    {
        if (o.Indent is null) return;
        sb.Append('\n');
        for (int i = 0; i < depth; i++) sb.Append(o.Indent);
    }

    public static void WriteString(StringBuilder sb, string s, bool ensureAscii)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ensureAscii && c > 0x7e)) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
