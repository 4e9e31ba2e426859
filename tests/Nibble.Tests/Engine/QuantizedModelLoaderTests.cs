using System.Text.Json;
using Nibble.Cli;
using Nibble.Cpu;
using Nibble.Engine.Gpu;
using Nibble.Models;
using Nibble.Quantization;

namespace Nibble.Tests.Engine;

/// <summary>
/// The backend-aware loader on the CPU: a quantized checkpoint gets the CPU reference layers (the same model as
/// QuantizedModel.Load, logits bit for bit), a bf16 one dense layers; `nibble generate` runs a quantized checkpoint.
/// (The CUDA side is tested in Nibble.Cuda.Tests.Quantized.)
/// </summary>
[Collection("Console")]
public class QuantizedModelLoaderTests
{
    static readonly int[] Tokens = [5, 300, 41, 1999, 7, 12];

    static string QuantizedNano(TestPaths.TempDir tmp)
    {
        string dir = Path.Combine(tmp.Path, "w4a8");
        CompressedTensorsCheckpoint.Write(TestPaths.BundledNano, dir, new CompressedTensorsWriteOptions { Scheme = QuantizationScheme.W4A8 }, RtnQuantizer.Instance);
        return dir;
    }

    static float[] Logits(CausalLM lm)
    {
        using var cache = lm.CreateCache(Tokens.Length);
        return lm.Forward(Tokens, cache).ToArray();
    }

    [Fact]
    public void On_the_cpu_a_quantized_checkpoint_loads_the_cpu_W4A8_layers_with_identical_logits()
    {
        using var tmp = TestPaths.CreateTempDir();
        string dir = QuantizedNano(tmp);
        using var viaLoader = QuantizedModelLoader.Load(dir, CpuBackend.Instance);
        using var direct = QuantizedModel.Load(dir, CpuBackend.Instance);
        Assert.IsType<W4A8Linear>(viaLoader.Layers[0].Attention.QProj);
        Assert.Equal(Logits(direct), Logits(viaLoader));
        using var w16 = QuantizedModelLoader.Load(dir, CpuBackend.Instance, QuantizationScheme.W4A16);
        Assert.IsType<W4A16Linear>(w16.Layers[0].Attention.QProj);
    }

    [Fact]
    public void A_bf16_checkpoint_loads_dense_layers_and_a_scheme_override_is_refused()
    {
        using var lm = QuantizedModelLoader.Load(TestPaths.BundledNano, CpuBackend.Instance);
        Assert.IsType<DenseLinear>(lm.Layers[0].Attention.QProj);
        Assert.Throws<NibbleException>(() => QuantizedModelLoader.Load(TestPaths.BundledNano, CpuBackend.Instance, QuantizationScheme.W4A8));
    }

    [Fact]
    public void Generate_runs_a_quantized_checkpoint()
    {
        using var tmp = TestPaths.CreateTempDir();
        string dir = QuantizedNano(tmp);
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        int code;
        try { code = Program.BuildRootCommand().Parse(["generate", dir, "-p", "The kernel", "-n", "6", "--json"]).Invoke(); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
        Assert.True(code == 0, e.ToString());
        var json = JsonDocument.Parse(o.ToString().Trim().Split('\n')[^1]).RootElement;
        Assert.InRange(json.GetProperty("completion_tokens").GetInt32(), 1, 6);
    }
}
