using Nibble.Backend;
using Nibble.Cpu;
using Nibble.Models;

namespace Nibble.Tests.Models;

/// <summary>The seams calibration (AWQ) relies on: observers, swappable linears, sub-blocks run on cached inputs, memory-mapped weights.</summary>
public class SeamTests
{
    static readonly int[] Tokens = [12, 400, 7, 2200, 31, 5, 999, 64, 3, 1500];

    sealed class Recorder : IActivationObserver
    {
        public readonly List<(string Name, int Rows, int[] TokenIndices)> Calls = [];
        public void Observe(string linearName, Tensor input, ReadOnlySpan<int> tokenIndices) => Calls.Add((linearName, input.Rows, tokenIndices.ToArray()));
    }

    [Fact]
    public void The_observer_sees_every_linear_input_with_its_token_rows()
    {
        using var lm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        var recorder = new Recorder();
        lm.Observer = recorder;
        using var cache = lm.CreateCache(Tokens.Length);
        lm.Forward(Tokens, cache);
        Assert.Equal(4 * 7 + 1, recorder.Calls.Count);
        Assert.Equal("model.layers.0.self_attn.q_proj", recorder.Calls[0].Name);
        Assert.Contains(recorder.Calls, c => c.Name == "model.layers.3.mlp.down_proj");
        Assert.All(recorder.Calls, c => Assert.Equal(Enumerable.Range(0, Tokens.Length), c.TokenIndices));
    }

    [Fact]
    public void Running_the_attention_and_mlp_sub_blocks_by_hand_reproduces_the_layer()
    {
        using var lm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        var b = lm.Backend;
        var layer = lm.Layers[1];
        var input = lm.Embed(Tokens).ToArray();

        var whole = b.FromHost((float[])input.Clone(), Tokens.Length, 256);
        using (var cache = lm.CreateCache(Tokens.Length)) layer.Forward(whole, lm.ContextFor(cache, Tokens.Length));

        // By hand: h += attn(norm1(h)); h += mlp(norm2(h)), with the norm weights as float arrays.
        using var cache2 = lm.CreateCache(Tokens.Length);
        var ctx = lm.ContextFor(cache2, Tokens.Length);
        var h = b.FromHost((float[])input.Clone(), Tokens.Length, 256);
        var normed = b.Zeros(Tokens.Length, 256);
        var delta = b.Zeros(Tokens.Length, 256);
        b.RmsNorm(h, b.FromHost(layer.InputNorm.Values, 256), layer.InputNorm.Eps, normed);
        layer.Attention.Forward(normed, ctx, delta);
        b.Add(h, delta);
        b.RmsNorm(h, b.FromHost(layer.PostAttentionNorm.Values, 256), layer.PostAttentionNorm.Eps, normed);
        layer.Mlp.Forward(normed, ctx, delta);
        b.Add(h, delta);
        Assert.Equal(whole.ToArray(), h.ToArray());
    }

    [Fact]
    public void Swapping_a_linear_for_a_float_copy_keeps_the_output_and_scaling_a_norm_changes_it()
    {
        using var lm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        float[] Run() { using var c = lm.CreateCache(Tokens.Length); return lm.Forward(Tokens, c).ToArray(); }
        var before = Run();
        var q = (DenseLinear)lm.Layers[0].Attention.QProj;
        lm.Layers[0].Attention.QProj = DenseLinear.FromFloat(lm.Backend, q.WeightToFloat(), q.OutFeatures, q.InFeatures);
        Assert.Equal(before, Run());

        // AWQ-style equivalence: scale input-norm channels by s and the q/k/v columns by 1/s.
        var attn = lm.Layers[0].Attention;
        var s = Enumerable.Range(0, 256).Select(i => 0.5f + (i % 7) * 0.25f).ToArray();
        for (int i = 0; i < 256; i++) lm.Layers[0].InputNorm.Values[i] *= s[i];
        var changed = Run();
        Assert.NotEqual(before, changed);
        foreach (var name in new[] { "q", "k", "v" })
        {
            var lin = (DenseLinear)(name == "q" ? attn.QProj : name == "k" ? attn.KProj : attn.VProj);
            var w = lin.WeightToFloat();
            for (int o = 0; o < lin.OutFeatures; o++) for (int i = 0; i < 256; i++) w[o * 256 + i] /= s[i];
            var replacement = DenseLinear.FromFloat(lm.Backend, w, lin.OutFeatures, lin.InFeatures);
            if (name == "q") attn.QProj = replacement; else if (name == "k") attn.KProj = replacement; else attn.VProj = replacement;
        }
        var restored = Run();
        double max = before.Zip(restored, (x, y) => Math.Abs(x - y)).Max();
        Assert.True(max < 1e-3, $"scaling folded into the next linears should cancel; max diff {max}");
    }

    [Fact]
    public void Loading_a_model_keeps_the_weights_in_the_memory_map()
    {
        string dir = TestPaths.RequireSharedModel("small");
        long before = GC.GetAllocatedBytesForCurrentThread();
        using var lm = CausalLM.Load(dir, CpuBackend.Instance);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < lm.Checkpoint.TotalBytes / 20, $"loading allocated {allocated:N0} bytes for a {lm.Checkpoint.TotalBytes:N0}-byte checkpoint");
    }

    [Fact]
    public void Inputs_longer_than_the_cache_or_the_context_give_a_clear_error()
    {
        using var lm = CausalLM.Load(TestPaths.BundledNano, CpuBackend.Instance);
        using var cache = lm.CreateCache(4);
        var e = Assert.Throws<NibbleException>(() => lm.Forward(Tokens, cache));
        Assert.Contains("KV cache", e.Message);
        Assert.Throws<NibbleException>(() => lm.CreateCache(lm.Config.MaxPositionEmbeddings + 1));
        Assert.Throws<NibbleException>(() => lm.Forward([lm.VocabSize + 5], cache));
    }

    [Fact]
    public void A_missing_weight_is_named_in_the_error()
    {
        using var tmp = TestPaths.CreateTempDir();
        var config = SyntheticModel.Config("LlamaForCausalLM");
        SyntheticModel.Write(tmp.Path, config);
        File.WriteAllText(tmp.File("config.json"), File.ReadAllText(tmp.File("config.json")).Replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"));
        var e = Assert.Throws<NibbleException>(() => CausalLM.Load(tmp.Path, CpuBackend.Instance));
        Assert.Contains("model.layers.2", e.Message);
    }
}
