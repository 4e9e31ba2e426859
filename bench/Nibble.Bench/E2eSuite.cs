using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nibble.Cuda;
using Nibble.Cuda.Backend;
using Nibble.Engine.Gpu;
using Nibble.Formats;
using Nibble.Models;
using Nibble.Quantization;

namespace Nibble.Bench;

/// <summary>
/// `e2e` suite (GPU): time to first token (prefill of --prompt tokens, last-token logits on the host) and time per
/// output token (one-token decode steps with the KV cache, logits on the host, greedy argmax) for the same synthetic
/// Llama-shaped model in bf16, W4A16 and W4A8 on the CUDA backend, batch 1 (the engine decodes one sequence at a
/// time). The model is generated at run time (random bf16 weights, too large to carry) and quantized there with RTN.
/// Dense linears (bf16 model, and lm_head everywhere) run in plain bf16-activation mode (DenseMatMulPrecision.Bf16).
/// Each variant is timed with eager launches and with CUDA-graph replay of the decode step (--no-graphs skips the latter).
/// Usage: e2e [--out dir] [--hidden 4096] [--intermediate 14336] [--layers 8] [--heads 32] [--kv-heads 8]
///            [--vocab 32000] [--prompt 512] [--decode 64] [--reps 3] [--budget-s 170] [--work dir]
/// </summary>
public static class E2eSuite
{
    sealed record Result(string Variant, double TtftMs, double TpotMs, double LoadS, double WeightGiB, string Note);

    public static int Run(string[] args)
    {
        var sw = Stopwatch.StartNew();
        string outDir = Arg(args, "--out") ?? "bench/results";
        int hidden = Int(args, "--hidden", 4096), inter = Int(args, "--intermediate", 14336), layers = Int(args, "--layers", 8);
        int heads = Int(args, "--heads", 32), kvHeads = Int(args, "--kv-heads", 8), vocab = Int(args, "--vocab", 32000);
        int prompt = Int(args, "--prompt", 512), decode = Int(args, "--decode", 64), reps = Int(args, "--reps", 3);
        double budget = Int(args, "--budget-s", 170);
        bool noGraphs = args.Contains("--no-graphs");
        string work = Arg(args, "--work") ?? Path.Combine(Path.GetTempPath(), "nibble-e2e-" + Guid.NewGuid().ToString("N"));
        string date = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ");
        string command = "dotnet Nibble.Bench.dll e2e " + string.Join(' ', args);


        string bf16Dir = Path.Combine(work, "bf16"), quantDir = Path.Combine(work, "w4a8");
        var results = new List<Result>();
        try
        {
            var t = Stopwatch.StartNew();
            WriteModel(bf16Dir, hidden, inter, layers, heads, kvHeads, vocab, Math.Max(4096, prompt + decode + 8));
            double genS = t.Elapsed.TotalSeconds;
            Console.WriteLine($"generated bf16 model in {genS:F1} s");
            t.Restart();
            CompressedTensorsCheckpoint.Write(bf16Dir, quantDir, new CompressedTensorsWriteOptions { Scheme = QuantizationScheme.W4A8 }, RtnQuantizer.Instance);
            double quantS = t.Elapsed.TotalSeconds;
            Console.WriteLine($"RTN-quantized in {quantS:F1} s");

            // The GPU is opened after the CPU-side preparation, so that part also runs (and is checked) on machines without one.
            using var ctx = CudaContext.Open();
            using var kernels = new KernelCache(ctx);
            using var stream = CudaStream.Create(ctx);
            string card = ctx.Name;
            Console.WriteLine($"# e2e on {card} ({ctx.Arch}), hidden {hidden}, intermediate {inter}, {layers} layers, heads {heads}/{kvHeads}, vocab {vocab}");
            var rng = new Random(7);
            var promptIds = Enumerable.Range(0, prompt).Select(_ => rng.Next(vocab)).ToArray();
            foreach (var (variant, dir, scheme) in new (string, string, QuantizationScheme?)[]
                     { ("bf16", bf16Dir, null), ("W4A16", quantDir, QuantizationScheme.W4A16), ("W4A8", quantDir, QuantizationScheme.W4A8) })
            {
                if (sw.Elapsed.TotalSeconds > budget)
                {
                    results.Add(new Result(variant, double.NaN, double.NaN, 0, 0, $"skipped: --budget-s {budget} spent"));
                    continue;
                }
                using var backend = new CudaBackend(ctx, kernels, stream) { MatMulPrecision = DenseMatMulPrecision.Bf16 };
                t.Restart();
                using var lm = scheme is null ? CausalLM.Load(dir, backend) : QuantizedModelLoader.Load(dir, backend, scheme);
                backend.Synchronize();
                double loadS = t.Elapsed.TotalSeconds;
                Run(lm, promptIds, 4, graphs: false); // warm-up: NVRTC compiles, GEMM plans, pool
                var linears = Linears(lm).ToList();
                double weightGiB = linears.Sum(LinearBytes) / (double)(1L << 30);
                // Eager steps, then the same steps replayed from a CUDA graph (CudaDecodeGraph), interleaved per rep.
                var ttft = new List<double>();
                var tpot = new List<double>();
                var tpotGraph = new List<double>();
                string? graphNote = null;
                for (int r = 0; r < reps && (r == 0 || sw.Elapsed.TotalSeconds < budget); r++)
                {
                    var (pre, dec) = Run(lm, promptIds, decode, graphs: false);
                    ttft.Add(pre); tpot.Add(dec);
                    if (!noGraphs)
                    {
                        var (_, decGraph) = Run(lm, promptIds, decode, graphs: true, note: n => graphNote = n);
                        tpotGraph.Add(decGraph);
                    }
                }
                var res = new Result(variant, Median(ttft), Median(tpot), loadS, weightGiB, $"{ttft.Count} rep(s), eager launches");
                results.Add(res);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{variant}: TTFT {res.TtftMs:F2} ms, TPOT {res.TpotMs:F3} ms ({1000 / res.TpotMs:F1} tok/s), load {loadS:F1} s"));
                if (tpotGraph.Count > 0)
                {
                    var g = new Result(variant + " + CUDA graph", Median(ttft), Median(tpotGraph), loadS, weightGiB, $"{tpotGraph.Count} rep(s), {graphNote}");
                    results.Add(g);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{g.Variant}: TPOT {g.TpotMs:F3} ms ({1000 / g.TpotMs:F1} tok/s) ({graphNote})"));
                }
                foreach (var l in linears) (l as IDisposable)?.Dispose(); // quantized layers own device buffers outside the backend's pool
            }
            Report(outDir, card, date, command, hidden, inter, layers, heads, kvHeads, vocab, prompt, decode, genS, quantS, results);
            return 0;
        }
        finally
        {
            if (Arg(args, "--work") is null) try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>
    /// Prefill (last-token logits copied to the host) then <paramref name="decode"/> greedy steps; returns (TTFT ms, mean
    /// ms per decode step). With <paramref name="graphs"/> the steps go through <see cref="CudaDecodeGraph"/> (first step
    /// eager, second captured, the rest replayed): the mean then includes the capture, as a real generation pays it.
    /// </summary>
    static (double TtftMs, double TpotMs) Run(CausalLM lm, int[] promptIds, int decode, bool graphs, Action<string>? note = null)
    {
        using var cache = lm.CreateCache(promptIds.Length + decode + 1);
        var logits = new float[lm.VocabSize];
        var t = Stopwatch.StartNew();
        using (var l = lm.Forward(promptIds, cache, lastTokenOnly: true)) l.CopyTo(logits);
        double ttft = t.Elapsed.TotalMilliseconds;
        int next = ArgMax(logits);
        using var graph = graphs ? new CudaDecodeGraph(lm, cache) : null;
        t.Restart();
        for (int i = 0; i < decode; i++)
        {
            if (graph is not null) graph.Step(next).CopyTo(logits);
            else using (var l = lm.Forward([next], cache, lastTokenOnly: true)) l.CopyTo(logits);
            next = ArgMax(logits);
        }
        double tpot = decode == 0 ? 0 : t.Elapsed.TotalMilliseconds / decode;
        if (graph is not null) note?.Invoke(graph.Captured ? $"graph replay ({graph.ReservedBlocks} blocks held)" : $"not captured: {graph.FailureReason}");
        return (ttft, tpot);
    }

    /// <summary>Every linear of a dense-MLP model (attention projections, MLP, lm_head).</summary>
    static IEnumerable<ILinear> Linears(CausalLM lm)
    {
        foreach (var layer in lm.Layers)
        {
            var a = layer.Attention;
            yield return a.QProj; yield return a.KProj; yield return a.VProj; yield return a.OProj;
            if (layer.Mlp is GatedMlp m) { yield return m.GateProj; yield return m.UpProj; yield return m.DownProj; }
        }
        yield return lm.LmHead;
    }

    /// <summary>Bytes a linear's weights occupy on the device (what a decode step streams).</summary>
    static long LinearBytes(ILinear l) => l switch
    {
        CudaW4A8Linear q => q.Operands.WeightBytes,
        CudaW4A16Linear q => q.Operands.WeightBytes,
        _ => 2L * l.InFeatures * l.OutFeatures,
    };

    static int ArgMax(float[] v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    /// <summary>A Llama config.json and random bf16 weights (uniform ±1.7/√fan_in, norms 1), streamed to model.safetensors.</summary>
    static void WriteModel(string dir, int h, int inter, int layers, int heads, int kvHeads, int vocab, int maxPositions)
    {
        int d = h / heads;
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"), ["model_type"] = "llama", ["hidden_size"] = h, ["intermediate_size"] = inter,
            ["num_hidden_layers"] = layers, ["num_attention_heads"] = heads, ["num_key_value_heads"] = kvHeads, ["head_dim"] = d,
            ["vocab_size"] = vocab, ["max_position_embeddings"] = maxPositions, ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 500000.0,
            ["hidden_act"] = "silu", ["tie_word_embeddings"] = false, ["torch_dtype"] = "bfloat16", ["eos_token_id"] = 2, ["bos_token_id"] = 1,
        };
        var tensors = new List<TensorData>();
        int seed = 0;
        void Add(string name, params int[] shape)
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            bool norm = name.EndsWith("norm.weight", StringComparison.Ordinal);
            float scale = norm ? 0 : 1.7f / MathF.Sqrt(shape[^1]);
            int s = ++seed;
            tensors.Add(new TensorData(name, SafetensorsDType.BF16, shape.Select(x => (long)x).ToArray(), n * 2, stream => WriteRandom(stream, n, scale, s)));
        }
        Add("model.embed_tokens.weight", vocab, h);
        for (int l = 0; l < layers; l++)
        {
            string p = $"model.layers.{l}";
            Add(p + ".input_layernorm.weight", h);
            Add(p + ".post_attention_layernorm.weight", h);
            Add(p + ".self_attn.q_proj.weight", heads * d, h);
            Add(p + ".self_attn.k_proj.weight", kvHeads * d, h);
            Add(p + ".self_attn.v_proj.weight", kvHeads * d, h);
            Add(p + ".self_attn.o_proj.weight", h, heads * d);
            Add(p + ".mlp.gate_proj.weight", inter, h);
            Add(p + ".mlp.up_proj.weight", inter, h);
            Add(p + ".mlp.down_proj.weight", h, inter);
        }
        Add("model.norm.weight", h);
        Add("lm_head.weight", vocab, h);
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        SafetensorsWriter.Write(Path.Combine(dir, SafetensorsCheckpoint.SingleFileName), tensors);
    }

    /// <summary>n bf16 values (1.0 when scale = 0, else uniform in ±scale) from a per-chunk SplitMix64, chunks filled in parallel.</summary>
    static void WriteRandom(Stream stream, long n, float scale, int seed)
    {
        const int chunk = 1 << 20;
        int chunks = (int)((n + chunk - 1) / chunk);
        var buffers = new ushort[Math.Min(chunks, 64)][];
        for (int b0 = 0; b0 < chunks; b0 += buffers.Length)
        {
            int count = Math.Min(buffers.Length, chunks - b0);
            Parallel.For(0, count, i =>
            {
                long start = (long)(b0 + i) * chunk;
                int len = (int)Math.Min(chunk, n - start);
                var buf = buffers[i] ??= new ushort[chunk];
                ulong state = (ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)(b0 + i) * 0xBF58476D1CE4E5B9UL;
                for (int j = 0; j < len; j++)
                {
                    state += 0x9E3779B97F4A7C15UL;
                    ulong z = state;
                    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
                    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
                    z ^= z >> 31;
                    float v = scale == 0 ? 1f : scale * ((z >> 40) * (2f / (1 << 24)) - 1f);
                    buf[j] = (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16);
                }
            });
            for (int i = 0; i < count; i++)
            {
                long start = (long)(b0 + i) * chunk;
                int len = (int)Math.Min(chunk, n - start);
                stream.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(buffers[i].AsSpan(0, len)));
            }
        }
    }

    static void Report(string outDir, string card, string date, string command, int h, int inter, int layers, int heads, int kvHeads, int vocab,
        int prompt, int decode, double genS, double quantS, List<Result> results)
    {
        var baseline = results.FirstOrDefault(r => r.Variant == "bf16");
        var json = new JsonObject
        {
            ["suite"] = "e2e", ["card"] = card, ["date"] = date, ["command"] = command, ["batch"] = 1,
            ["model"] = new JsonObject { ["hidden"] = h, ["intermediate"] = inter, ["layers"] = layers, ["heads"] = heads, ["kv_heads"] = kvHeads, ["vocab"] = vocab },
            ["prompt_tokens"] = prompt, ["decode_tokens"] = decode, ["generate_s"] = genS, ["quantize_s"] = quantS,
            ["results"] = new JsonArray(results.Select(r => (JsonNode)new JsonObject
            {
                ["variant"] = r.Variant, ["ttft_ms"] = Num(r.TtftMs), ["tpot_ms"] = Num(r.TpotMs), ["load_s"] = r.LoadS,
                ["linear_weight_gib"] = r.WeightGiB, ["note"] = r.Note,
            }).ToArray()),
        };
        var md = new StringBuilder();
        md.AppendLine($"# End-to-end TTFT / TPOT on {card}, {date}");
        md.AppendLine();
        md.AppendLine($"Command: `{command}`. Synthetic Llama (hidden {h}, intermediate {inter}, {layers} layers, heads {heads}/{kvHeads}, vocab {vocab}, untied lm_head), random bf16 weights, RTN group 128. " +
                      $"CUDA backend, batch 1 (the engine runs one sequence at a time). TTFT = prefill of {prompt} tokens with last-token logits on the host; " +
                      $"TPOT = mean of {decode} greedy one-token decode steps; median over reps after a warm-up. Dense linears (bf16 model; lm_head in all) in bf16-activation mode.");
        md.AppendLine();
        md.AppendLine("| variant | TTFT ms | TPOT ms | decode tok/s | TTFT vs bf16 | TPOT vs bf16 | linear weights GiB | load s | note |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Variant} | {r.TtftMs:F2} | {r.TpotMs:F3} | {1000 / r.TpotMs:F1} | {Ratio(baseline?.TtftMs, r.TtftMs)} | {Ratio(baseline?.TpotMs, r.TpotMs)} | {r.WeightGiB:F2} | {r.LoadS:F1} | {r.Note} |"));
        md.AppendLine();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"Model generation {genS:F1} s, RTN quantization {quantS:F1} s (CPU, not timed above)."));
        Console.WriteLine(md.ToString());
        Directory.CreateDirectory(outDir);
        AtomicFile.WriteAllText(Path.Combine(outDir, "e2e.md"), md.ToString());
        AtomicFile.WriteAllText(Path.Combine(outDir, "e2e.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    static JsonNode? Num(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;

    static string Ratio(double? baseline, double v) =>
        baseline is { } b && double.IsFinite(b) && double.IsFinite(v) && v > 0 ? (b / v).ToString("F2", CultureInfo.InvariantCulture) + "x" : "";

    static double Median(List<double> v) => v.Count == 0 ? double.NaN : v.Order().ElementAt(v.Count / 2);

    static int Int(string[] args, string name, int fallback) => int.TryParse(Arg(args, name), out int v) ? v : fallback;

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
