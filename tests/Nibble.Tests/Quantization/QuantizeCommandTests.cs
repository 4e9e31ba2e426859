using Nibble.Cli;
using Nibble.Formats;
using Nibble.Quantization;

namespace Nibble.Tests.Quantization;

public class QuantizeCommandTests
{
    static int Run(params string[] args) => Program.BuildRootCommand().Parse(args).Invoke();

    [Fact]
    public void Quantize_writes_a_checkpoint_that_inspect_reads_and_refuses_an_existing_output()
    {
        using var tmp = TestPaths.CreateTempDir();
        string outDir = tmp.File("q");
        Assert.Equal(0, Run("quantize", TestPaths.BundledNano, "--scheme", "w4a16", "--method", "rtn", "--out", outDir, "--group-size", "128", "--json"));
        Assert.Equal(QuantizationScheme.W4A16, CompressedTensorsCheckpoint.ReadQuantization(outDir).Scheme);
        Assert.Equal(0, Run("inspect", outDir));
        Assert.Equal(1, Run("quantize", TestPaths.BundledNano, "--method", "rtn", "--out", outDir));            // exists
        Assert.Equal(1, Run("quantize", TestPaths.BundledNano, "--method", "awq", "--out", outDir));            // exists, refused before calibrating
        Assert.Equal(0, Run("quantize", TestPaths.BundledNano, "--method", "rtn", "--out", outDir, "--overwrite"));
        Assert.Equal(QuantizationScheme.W4A8, CompressedTensorsCheckpoint.ReadQuantization(outDir).Scheme);
        Assert.Equal(1, Run("quantize", TestPaths.BundledNano, "--method", "awq", "--calib", tmp.File("missing.jsonl"), "--out", tmp.File("awq")));
        Assert.False(Directory.Exists(tmp.File("awq")));
        Assert.NotEqual(0, Run("quantize", TestPaths.BundledNano, "--scheme", "w8a8", "--out", tmp.File("bad")));
        using var checkpoint = SafetensorsCheckpoint.Open(outDir);
        Assert.Equal(28, CompressedTensorsCheckpoint.QuantizedModules(checkpoint).Count);
    }
}
