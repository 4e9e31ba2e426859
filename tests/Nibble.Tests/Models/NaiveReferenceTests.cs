using Nibble.Cpu;
using Nibble.Models;

namespace Nibble.Tests.Models;

public class NaiveReferenceTests
{
    [Fact]
    public void The_bundled_nano_model_matches_a_plain_double_precision_forward_pass()
    {
        int[] tokens = [5, 300, 1200, 7, 42, 8000, 17, 99];
        var expected = new NaiveReference(TestPaths.BundledNano).Logits(tokens);
        using var lm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        using var cache = lm.CreateCache(tokens.Length);
        var logits = lm.Forward(tokens, cache).ToArray();
        double max = 0;
        for (int t = 0; t < tokens.Length; t++)
            for (int v = 0; v < lm.VocabSize; v++) max = Math.Max(max, Math.Abs(logits[t * lm.VocabSize + v] - expected[t][v]));
        Console.WriteLine($"nano vs naive double: max {max:E3}");
        Assert.True(max < 1e-3, $"max diff {max}");
    }
}
