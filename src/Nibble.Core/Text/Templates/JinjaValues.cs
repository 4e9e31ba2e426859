namespace Nibble.Text.Templates;

// Template values follow Python: null is None, long/double/bool/string, List<object?> is a list, JinjaTuple a tuple,
// JinjaDict an insertion-ordered dict, plus jinja2's Undefined, namespace(), loop and callables.

/// <summary>An insertion-ordered dict (Python 3.7+ semantics) with string or number keys.</summary>
public sealed class JinjaDict : Dictionary<object, object?>
{
    // Dictionary<K,V> keeps insertion order as long as nothing is removed, and templates cannot remove (immutable sandbox).
    public JinjaDict() : base(PyKeyComparer.Instance) { }
}

/// <summary>A Python tuple (from <c>items()</c>, <c>(a, b)</c> literals); prints as <c>('a', 1)</c>.</summary>
public sealed record JinjaTuple(object?[] Items);

/// <summary>jinja2's Undefined: prints as empty, is falsy and iterates as empty; most other uses raise.</summary>
public sealed class JinjaUndefined
{
    public JinjaUndefined(string hint, string errorKind = "UndefinedError") { Hint = hint; ErrorKind = errorKind; }
    /// <summary>The message an operation on this value raises, e.g. "'foo' is undefined".</summary>
    public string Hint { get; }
    public string ErrorKind { get; }
    public ChatTemplateException Fail() => new(ErrorKind, Hint);
}

/// <summary>The object <c>namespace(...)</c> returns: the one value whose attributes a template may assign.</summary>
public sealed class JinjaNamespace
{
    public Dictionary<string, object?> Attributes { get; } = new();
}

/// <summary>A callable value: global functions, macros and bound methods.</summary>
public sealed class JinjaCallable(string name, Func<List<object?>, Dictionary<string, object?>, object?> invoke)
{
    public string Name { get; } = name;
    public object? Invoke(List<object?> args, Dictionary<string, object?> kwargs) => invoke(args, kwargs);
}

/// <summary>Dictionary keys compare like Python's: 1 == 1.0 == True.</summary>
internal sealed class PyKeyComparer : IEqualityComparer<object>
{
    public static PyKeyComparer Instance { get; } = new();
    public new bool Equals(object? x, object? y) => Py.Eq(x, y);
    public int GetHashCode(object obj) => obj switch
    {
        bool b => b ? 1 : 0,
        long l => l.GetHashCode(),
        double d when d == Math.Floor(d) && Math.Abs(d) < 9e18 => ((long)d).GetHashCode(),
        _ => obj.GetHashCode(),
    };
}
