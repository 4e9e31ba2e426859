using System.Text;

namespace Nibble.Text.Templates;

/// <summary>Python's binary operators and comparisons on template values, with Python's TypeError messages.</summary>
internal static class PyOps
{
    public static object? Binary(string op, object? a, object? b)
    {
        if (op == "~") return Py.Str(a) + Py.Str(b);
        if (a is JinjaUndefined ua) throw ua.Fail();
        if (b is JinjaUndefined ub) throw ub.Fail();
        switch (op)
        {
            case "+":
                if (a is string sa) return b is string sb ? sa + sb : throw new ChatTemplateException("TypeError", $"can only concatenate str (not \"{Py.TypeName(b)}\") to str");
                if (a is List<object?> la) return b is List<object?> lb ? la.Concat(lb).ToList() : throw new ChatTemplateException("TypeError", $"can only concatenate list (not \"{Py.TypeName(b)}\") to list");
                if (a is JinjaTuple ta) return b is JinjaTuple tb ? new JinjaTuple(ta.Items.Concat(tb.Items).ToArray()) : throw new ChatTemplateException("TypeError", $"can only concatenate tuple (not \"{Py.TypeName(b)}\") to tuple");
                return Arith(op, a, b);
            case "*":
                if (a is string s1 && b is long or bool) return Repeat(s1, Py.ToLong(b));
                if (b is string s2 && a is long or bool) return Repeat(s2, Py.ToLong(a));
                if (a is List<object?> l1 && b is long or bool) return Enumerable.Repeat(l1, (int)Math.Max(0, Py.ToLong(b))).SelectMany(x => x).ToList();
                return Arith(op, a, b);
            case "%":
                if (a is string fmt) return PyFormat.Percent(fmt, b);
                return Arith(op, a, b);
            default:
                return Arith(op, a, b);
        }
    }

    static string Repeat(string s, long n)
    {
        var sb = new StringBuilder();
        for (long i = 0; i < n; i++) sb.Append(s);
        return sb.ToString();
    }

    static object Arith(string op, object? a, object? b)
    {
        if (!Py.IsNumber(a) || !Py.IsNumber(b))
            throw new ChatTemplateException("TypeError", $"unsupported operand type(s) for {op}: '{Py.TypeName(a)}' and '{Py.TypeName(b)}'");
        bool ints = a is long or bool && b is long or bool;
        if (ints)
        {
            long x = Py.ToLong(a), y = Py.ToLong(b);
            switch (op)
            {
                case "+": return x + y;
                case "-": return x - y;
                case "*": return x * y;
                case "/": if (y == 0) throw ZeroDiv(); return (double)x / y;
                case "//": if (y == 0) throw ZeroDiv(); return FloorDiv(x, y);
                case "%": if (y == 0) throw ZeroDiv(); return x - FloorDiv(x, y) * y;
                case "**": return y >= 0 ? (object)(long)Math.Pow(x, y) : Math.Pow(x, y);
            }
        }
        double p = Py.ToDouble(a), q = Py.ToDouble(b);
        switch (op)
        {
            case "+": return p + q;
            case "-": return p - q;
            case "*": return p * q;
            case "/": if (q == 0) throw ZeroDiv(); return p / q;
            case "//": if (q == 0) throw ZeroDiv(); return Math.Floor(p / q);
            case "%": if (q == 0) throw ZeroDiv(); { double r = p % q; return r != 0 && (r < 0) != (q < 0) ? r + q : r; }
            case "**": return Math.Pow(p, q);
        }
        throw new ChatTemplateException("Unsupported", $"operator '{op}'");
    }

    static long FloorDiv(long x, long y)
    {
        long q = x / y;
        return (x % y != 0 && (x < 0) != (y < 0)) ? q - 1 : q;
    }

    static ChatTemplateException ZeroDiv() => new("ZeroDivisionError", "division by zero");

    public static bool Compare(string op, object? a, object? b) => op switch
    {
        "==" => Py.Eq(a, b),
        "!=" => !Py.Eq(a, b),
        "<" => Py.Compare(a, b, op) < 0,
        "<=" => Py.Compare(a, b, op) <= 0,
        ">" => Py.Compare(a, b, op) > 0,
        ">=" => Py.Compare(a, b, op) >= 0,
        "in" => Contains(b, a),
        "notin" => !Contains(b, a),
        _ => throw new ChatTemplateException("Unsupported", $"comparison '{op}'"),
    };

    public static bool Contains(object? container, object? item) => container switch
    {
        string s => item is string sub ? s.Contains(sub, StringComparison.Ordinal)
            : item is JinjaUndefined u ? throw u.Fail()
            : throw new ChatTemplateException("TypeError", $"'in <string>' requires string as left operand, not {Py.TypeName(item)}"),
        List<object?> l => l.Any(x => Py.Eq(x, item)),
        JinjaTuple t => t.Items.Any(x => Py.Eq(x, item)),
        JinjaDict d => item is not null && item is not JinjaUndefined && d.ContainsKey(item),
        JinjaUndefined => false,
        null => throw new ChatTemplateException("TypeError", "argument of type 'NoneType' is not iterable"),
        _ => throw new ChatTemplateException("TypeError", $"argument of type '{Py.TypeName(container)}' is not iterable"),
    };
}
