using System.Runtime.InteropServices;
using Nibble.Formats;

namespace Nibble.Tests.Formats;

public class SafetensorsTests
{
    [Theory]
    [InlineData("nano")]
    [InlineData("small")]
    [InlineData("moe")]
    public void Every_tensor_of_the_shared_models_loads_and_matches_its_declared_size(string model)
    {
        string dir = model == "nano" ? TestPaths.BundledNano : TestPaths.RequireSharedModel(model);
        using var checkpoint = SafetensorsCheckpoint.Open(dir);
        var config = ModelConfig.Load(dir);
        int count = 0;
        foreach (var t in checkpoint.Tensors)
        {
            var bytes = checkpoint.GetBytes(t.Name);
            Assert.Equal(t.ElementCount * t.DType.ByteSize(), bytes.Length);
            count++;
        }
        Assert.True(count > 4 * config.NumLayers, $"{model}: only {count} tensors");
        Assert.Equal([config.VocabSize, config.HiddenSize], checkpoint.GetInfo("model.embed_tokens.weight").Shape.Select(d => (int)d));
    }

    [Fact]
    public void Rewriting_the_bundled_model_reproduces_it_byte_for_byte()
    {
        using var tmp = TestPaths.CreateTempDir();
        string original = Path.Combine(TestPaths.BundledNano, "model.safetensors");
        using (var file = SafetensorsFile.Open(original))
        {
            var tensors = file.Tensors.Values.OrderBy(t => t.Offset)
                .Select(t => new TensorData(t.Name, t.DType, t.Shape, file.GetMemory(t.Name))).ToList();
            SafetensorsWriter.Write(tmp.File("copy.safetensors"), tensors, file.Metadata);
        }
        Assert.Equal(File.ReadAllBytes(original), File.ReadAllBytes(tmp.File("copy.safetensors")));
    }

    [Fact]
    public void Every_dtype_round_trips_with_metadata()
    {
        using var tmp = TestPaths.CreateTempDir();
        var rng = new Random(7);
        var tensors = Enum.GetValues<SafetensorsDType>().Select(dt =>
        {
            long[] shape = [3, rng.Next(1, 5)];
            var data = new byte[shape[0] * shape[1] * dt.ByteSize()];
            rng.NextBytes(data);
            return new TensorData($"t.{dt}", dt, shape, data);
        }).ToList();
        string path = tmp.File("all.safetensors");
        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode" });

        using var file = SafetensorsFile.Open(path);
        Assert.Equal("ünïcode", file.Metadata["note"]);
        Assert.Equal(0, (8 + BitConverter.ToInt64(File.ReadAllBytes(path), 0)) % 8);
        foreach (var t in tensors)
        {
            Assert.Equal(t.DType, file.GetInfo(t.Name).DType);
            Assert.Equal(t.Shape, file.GetInfo(t.Name).Shape);
        }
        var f32 = tensors.Single(t => t.DType == SafetensorsDType.F32);
        Assert.Equal(f32.ByteLength, file.GetSpan<float>(f32.Name).Length * 4);
    }

    [Fact]
    public void A_sharded_checkpoint_is_written_with_an_index_and_reads_back_whole()
    {
        using var tmp = TestPaths.CreateTempDir();
        var tensors = Enumerable.Range(0, 10).Select(i =>
            TensorData.From($"layer.{i}.weight", SafetensorsDType.F32, [16, 16], Enumerable.Range(0, 256).Select(v => (float)(v * i)).ToArray())).ToList();
        var files = SafetensorsWriter.WriteCheckpoint(tmp.Path, tensors, maxShardBytes: 3 * 1024);
        Assert.Contains(SafetensorsCheckpoint.IndexFileName, files);
        Assert.Equal(4, files.Count(f => f.EndsWith(".safetensors")));

        using var checkpoint = SafetensorsCheckpoint.Open(tmp.Path);
        Assert.Equal(10, checkpoint.TensorNames.Count());
        Assert.Equal(9f * 255, checkpoint.GetSpan<float>("layer.9.weight")[255]);
        Assert.Empty(Directory.GetFiles(tmp.Path, "*.tmp"));
    }

    [Fact]
    public void A_missing_shard_is_named()
    {
        using var tmp = TestPaths.CreateTempDir();
        var tensors = Enumerable.Range(0, 4).Select(i => TensorData.From($"w{i}", SafetensorsDType.F32, [256], new float[256])).ToList();
        SafetensorsWriter.WriteCheckpoint(tmp.Path, tensors, maxShardBytes: 1024);
        File.Delete(tmp.File("model-00003-of-00004.safetensors"));
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsCheckpoint.Open(tmp.Path));
        Assert.Contains("model-00003-of-00004.safetensors", e.Message);
        Assert.Contains("missing", e.Message);
    }

    public static TheoryData<string, string> CorruptHeaders => new()
    {
        { """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}""", "malformed JSON" },
        { """{"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}""", "unknown dtype 'F33'" },
        { """{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", "= 12 bytes but its data_offsets span 8" },
        { """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", "overlap" },
        { """{"a":{"dtype":"F32","shape":[64],"data_offsets":[0,256]}}""", "truncated" },
        { """{"a":{"dtype":"F32","shape":[2]}}""", "needs dtype, shape and two data_offsets" },
    };

    [Theory]
    [MemberData(nameof(CorruptHeaders))]
    public void A_corrupt_header_gives_one_clear_message_naming_the_file(string header, string expected)
    {
        using var tmp = TestPaths.CreateTempDir();
        string path = tmp.File("bad.safetensors");
        var headerBytes = System.Text.Encoding.UTF8.GetBytes(header);
        using (var s = File.Create(path))
        {
            s.Write(BitConverter.GetBytes((long)headerBytes.Length));
            s.Write(headerBytes);
            s.Write(new byte[16]);
        }
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(path));
        Assert.Contains(expected, e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void A_header_length_beyond_the_file_is_reported_as_truncation()
    {
        using var tmp = TestPaths.CreateTempDir();
        string path = tmp.File("short.safetensors");
        File.WriteAllBytes(path, [.. BitConverter.GetBytes(1000L), .. "{}"u8.ToArray()]);
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(path));
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void A_failed_write_leaves_no_file_behind()
    {
        using var tmp = TestPaths.CreateTempDir();
        var broken = new TensorData("x", SafetensorsDType.U8, [4], 4, s => throw new IOException("disk full"));
        Assert.Throws<IOException>(() => SafetensorsWriter.Write(tmp.File("out.safetensors"), [broken]));
        Assert.Empty(Directory.GetFileSystemEntries(tmp.Path));
    }
}
