using Nibble.Backend;

namespace Nibble.Models;

/// <summary>
/// What a decoder layer needs besides its input: the tokens' positions, the KV cache they attend
/// over (slots = positions), and the optional activation observer. One context serves all layers of a forward call.
/// </summary>
public sealed class ForwardContext
{
    public ForwardContext(int[] positions, KvCache cache, IActivationObserver? observer = null)
    {
        Positions = positions;
        Cache = cache;
        Observer = observer;
        Identity = Enumerable.Range(0, positions.Length).ToArray();
    }

    public int[] Positions { get; }
    public KvCache Cache { get; }
    public IActivationObserver? Observer { get; }
    public int Tokens => Positions.Length;

    /// <summary>Row → token map for dense layers (0..T-1).</summary>
    internal int[] Identity { get; }

    /// <summary>Consecutive positions [start, start + count).</summary>
    public static int[] Range(int start, int count) => Enumerable.Range(start, count).ToArray();

    internal void Linear(string name, ILinear linear, Tensor input, Tensor output, ReadOnlySpan<int> rows = default)
    {
        Observer?.Observe(name, input, rows.IsEmpty ? Identity : rows);
        linear.Forward(input, output);
    }
}
