namespace Nibble.Text.Templates;

/// <summary>The <c>loop</c> variable inside a for-loop (index, index0, first, last, length, revindex, previtem, nextitem, cycle).</summary>
public sealed class JinjaLoop
{
    readonly List<object?> _items;
    internal int Index0;
    internal object? Changed = new();

    internal JinjaLoop(List<object?> items, int depth0)
    {
        _items = items;
        Depth0 = depth0;
    }

    public int Depth0 { get; }

    internal object? Get(string name) => name switch
    {
        "index" => (long)(Index0 + 1),
        "index0" => (long)Index0,
        "revindex" => (long)(_items.Count - Index0),
        "revindex0" => (long)(_items.Count - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == _items.Count - 1,
        "length" => (long)_items.Count,
        "depth" => (long)(Depth0 + 1),
        "depth0" => (long)Depth0,
        "previtem" => Index0 > 0 ? _items[Index0 - 1] : new JinjaUndefined("there is no previous item"),
        "nextitem" => Index0 < _items.Count - 1 ? _items[Index0 + 1] : new JinjaUndefined("there is no next item"),
        "cycle" => new JinjaCallable("loop.cycle", (args, _) =>
            args.Count == 0 ? throw new ChatTemplateException("TypeError", "no items for cycling given") : args[Index0 % args.Count]),
        "changed" => new JinjaCallable("loop.changed", (args, _) =>
        {
            var value = new List<object?>(args);
            if (Changed is List<object?> prev && Py.Eq(prev, value)) return false;
            Changed = value;
            return true;
        }),
        _ => new JinjaUndefined($"'LoopContext object' has no attribute '{name}'"),
    };
}
