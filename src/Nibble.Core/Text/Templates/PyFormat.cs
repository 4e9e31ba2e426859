using System.Globalization;
using System.Text;

namespace Nibble.Text.Templates;

/// <summary>Python's printf-style <c>"%s" % x</c> (used by jinja's <c>format</c> filter) for %s %r %d %i %f %x %%.</summary>
internal static class PyFormat
{
    public static string Percent(string format, object? args)
    {
        var values = args is JinjaTuple t ? t.Items.ToList() : [args];
        var sb = new StringBuilder();
        int next = 0;
        for (int i = 0; i < format.Length; i++)
        {
            char c = format[i];
            if (c != '%') { sb.Append(c); continue; }
            if (++i >= format.Length) throw new ChatTemplateException("ValueError", "incomplete format");
            int specStart = i;
            while (i < format.Length && "0123456789.-+ #".Contains(format[i])) i++;
            string spec = format[specStart..i];
            char conv = format[i];
            if (conv == '%') { sb.Append('%'); continue; }
            if (next >= values.Count) throw new ChatTemplateException("TypeError", "not enough arguments for format string");
            object? v = values[next++];
            string body = conv switch
            {
                's' => Py.Str(v),
                'r' => Py.Repr(v),
                'd' or 'i' => Py.IsNumber(v) ? ((long)Math.Truncate(Py.ToDouble(v))).ToString(CultureInfo.InvariantCulture) : throw new ChatTemplateException("TypeError", $"%{conv} format: a real number is required, not {Py.TypeName(v)}"),
                'f' => Py.ToDouble(v).ToString("F" + (spec.Contains('.') ? spec[(spec.IndexOf('.') + 1)..] : "6"), CultureInfo.InvariantCulture),
                'x' => Py.ToLong(v).ToString("x", CultureInfo.InvariantCulture),
                _ => throw new ChatTemplateException("Unsupported", $"printf-style conversion '%{conv}'"),
            };
            string widthText = spec.Split('.')[0].TrimStart('-', '+', ' ', '#', '0');
            if (int.TryParse(widthText, out int width) && body.Length < width)
                body = spec.StartsWith('-') ? body.PadRight(width) : body.PadLeft(width, spec.StartsWith('0') && conv != 's' ? '0' : ' ');
            sb.Append(body);
        }
        if (next < values.Count) throw new ChatTemplateException("TypeError", "not all arguments converted during string formatting");
        return sb.ToString();
    }
}
