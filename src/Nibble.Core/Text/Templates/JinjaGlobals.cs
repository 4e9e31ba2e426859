using System.Globalization;
using System.Text;

namespace Nibble.Text.Templates;

/// <summary>
/// Global functions a chat template can call: jinja2's <c>range</c>, <c>namespace</c>, <c>dict</c>, and transformers'
/// <c>raise_exception</c> (TemplateError) and <c>strftime_now</c>.
/// </summary>
internal static class JinjaGlobals
{
    public static Dictionary<string, object?> Create(Func<DateTime> now) => new()
    {
        ["range"] = new JinjaCallable("range", (args, _) => Range(args)),
        ["namespace"] = new JinjaCallable("namespace", (args, kwargs) =>
        {
            var ns = new JinjaNamespace();
            foreach (var a in args)
            {
                if (a is not JinjaDict d) throw new ChatTemplateException("TypeError", "namespace() positional argument must be a dict");
                foreach (var (k, v) in d) ns.Attributes[Py.Str(k)] = v;
            }
            foreach (var (k, v) in kwargs) ns.Attributes[k] = v;
            return ns;
        }),
        ["dict"] = new JinjaCallable("dict", (args, kwargs) =>
        {
            var d = new JinjaDict();
            foreach (var a in args)
            {
                if (a is JinjaDict src) foreach (var (k, v) in src) d[k] = v;
                else foreach (var pair in Py.ToList(a)) { var kv = Py.ToList(pair); d[kv[0]!] = kv[1]; }
            }
            foreach (var (k, v) in kwargs) d[k] = v;
            return d;
        }),
        ["raise_exception"] = new JinjaCallable("raise_exception", (args, _) =>
            throw new ChatTemplateException("TemplateError", args.Count > 0 ? Py.Str(args[0]) : "")),
        ["strftime_now"] = new JinjaCallable("strftime_now", (args, _) => Strftime(now(), args.Count > 0 ? Py.Str(args[0]) : "")),
        ["lipsum"] = Unsupported("lipsum"),
        ["cycler"] = Unsupported("cycler"),
        ["joiner"] = Unsupported("joiner"),
    };

    static JinjaCallable Unsupported(string name) =>
        new(name, (_, _) => throw new ChatTemplateException("Unsupported", $"the global function '{name}'"));

    static List<object?> Range(List<object?> args)
    {
        long start = 0, stop, step = 1;
        if (args.Count == 1) stop = Py.ToLong(args[0]);
        else if (args.Count >= 2) { start = Py.ToLong(args[0]); stop = Py.ToLong(args[1]); if (args.Count > 2) step = Py.ToLong(args[2]); }
        else throw new ChatTemplateException("TypeError", "range expected at least 1 argument, got 0");
        if (step == 0) throw new ChatTemplateException("ValueError", "range() arg 3 must not be zero");
        var list = new List<object?>();
        if (step > 0) for (long i = start; i < stop; i += step) list.Add(i);
        else for (long i = start; i > stop; i += step) list.Add(i);
        if (list.Count > 100_000) throw new ChatTemplateException("OverflowError", "range too big");
        return list;
    }

    /// <summary>Python's strftime with the C locale for the common directives.</summary>
    public static string Strftime(DateTime t, string format)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length) { sb.Append(format[i]); continue; }
            char c = format[++i];
            sb.Append(c switch
            {
                'Y' => t.Year.ToString("0000", ci),
                'y' => (t.Year % 100).ToString("00", ci),
                'm' => t.Month.ToString("00", ci),
                'd' => t.Day.ToString("00", ci),
                '-' when i + 1 < format.Length && format[i + 1] == 'd' => (++i > 0 ? t.Day.ToString(ci) : ""),
                'H' => t.Hour.ToString("00", ci),
                'I' => ((t.Hour + 11) % 12 + 1).ToString("00", ci),
                'M' => t.Minute.ToString("00", ci),
                'S' => t.Second.ToString("00", ci),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'B' => t.ToString("MMMM", ci),
                'b' or 'h' => t.ToString("MMM", ci),
                'A' => t.ToString("dddd", ci),
                'a' => t.ToString("ddd", ci),
                'j' => t.DayOfYear.ToString("000", ci),
                'f' => (t.Ticks % TimeSpan.TicksPerSecond / 10).ToString("000000", ci),
                'Z' => "",
                'z' => "",
                '%' => "%",
                _ => "%" + c,
            });
        }
        return sb.ToString();
    }
}
