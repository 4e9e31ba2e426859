using Nibble.Backend;

namespace Nibble.Cpu;

/// <summary>Rotary embedding, half-split convention of the transformers Llama code (rotate_half).</summary>
public static class RopeKernel
{
    public static void Apply(Span<float> x, int headDim, ReadOnlySpan<int> positions, RopeTable rope)
    {
        int half = headDim / 2;
        int rowLength = x.Length / positions.Length;
        Span<float> cos = stackalloc float[half], sin = stackalloc float[half];
        for (int t = 0; t < positions.Length; t++)
        {
            rope.Angles(positions[t], cos, sin);
            var row = x.Slice(t * rowLength, rowLength);
            for (int h = 0; h < rowLength; h += headDim)
            {
                var head = row.Slice(h, headDim);
                for (int i = 0; i < half; i++)
                {
                    float x1 = head[i], x2 = head[i + half];
                    head[i] = x1 * cos[i] - x2 * sin[i];
                    head[i + half] = x2 * cos[i] + x1 * sin[i];
                }
            }
        }
    }
}
