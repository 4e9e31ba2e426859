namespace Nibble.Text.Templates;

/// <summary>jinja2's tests (<c>x is defined</c>, <c>is string</c>, <c>is equalto 3</c>, ...) with Python's type rules.</summary>
internal static class JinjaTests
{
    public static bool Apply(JinjaInterpreter interp, string name, object? v, List<object?> args)
    {
        object? A(int i) => i < args.Count ? args[i] : throw new ChatTemplateException("TypeError", $"test '{name}' needs an argument");
        switch (name)
        {
            case "defined": return v is not JinjaUndefined;
            case "undefined": return v is JinjaUndefined;
            case "none": return v is null;
            case "string": return v is string;
            case "number": return v is long or double or bool;
            case "integer": return v is long;
            case "float": return v is double;
            case "boolean": return v is bool;
            case "true": return v is true;
            case "false": return v is false;
            case "mapping": return v is JinjaDict;
            case "iterable": return v is string or List<object?> or JinjaTuple or JinjaDict or JinjaUndefined;
            case "sequence": return v is string or List<object?> or JinjaTuple or JinjaDict or JinjaUndefined;
            case "callable": return v is JinjaCallable;
            case "equalto" or "eq" or "==": return Py.Eq(v, A(0));
            case "ne" or "!=": return !Py.Eq(v, A(0));
            case "lt" or "lessthan" or "<": return Py.Compare(v, A(0), "<") < 0;
            case "le" or "<=": return Py.Compare(v, A(0), "<=") <= 0;
            case "gt" or "greaterthan" or ">": return Py.Compare(v, A(0), ">") > 0;
            case "ge" or ">=": return Py.Compare(v, A(0), ">=") >= 0;
            case "in": return PyOps.Contains(A(0), v);
            case "odd": return IntOf(v, name) % 2 != 0;
            case "even": return IntOf(v, name) % 2 == 0;
            case "divisibleby": { long d = IntOf(A(0), name); return d != 0 && IntOf(v, name) % d == 0; }
            case "lower": return v is string s1 && s1.Any(char.IsLetter) && !s1.Any(char.IsUpper);
            case "upper": return v is string s2 && s2.Any(char.IsLetter) && !s2.Any(char.IsLower);
            case "sameas":
            {
                var o = A(0);
                return v is null || v is bool || o is null || o is bool ? Equals(v, o) : ReferenceEquals(v, o);
            }
            case "escaped": return false;
            case "filter": return v is string f && JinjaParser.JinjaFilters.Contains(f) && f is not ("fromjson");
            case "test": return v is string t && JinjaParser.JinjaTests.Contains(t);
            default:
                throw new ChatTemplateException("TemplateRuntimeError", $"No test named '{name}' found.");
        }
    }

    static long IntOf(object? v, string test) => v is long or bool ? Py.ToLong(v)
        : v is double d ? (long)d
        : throw new ChatTemplateException("TypeError", $"test '{test}' needs a number, not {Py.TypeName(v)}");
}
