using System.Diagnostics;
using System.Globalization;
using System.Text;
using CpuBackend = Nibble.Cpu.CpuBackend;
using Nibble.Cuda;
using Nibble.Cuda.Backend;
using Nibble.Cuda.Kernels;
using Nibble.Engine;
using Nibble.Models;
using Nibble.Text.Tokenization;

namespace Nibble.Bench;

/// <summary>
/// `ops` suite (GPU): the CUDA backend's memory-bound ops against the measured device-to-device copy bandwidth
/// (bytes read + written), decode attention against the KV-cache bytes it must read, prefill attention in TFLOP/s,
/// and end-to-end greedy decode of the bundled nano model on CUDA vs CPU. Median of CUDA-event-timed runs after
/// warm-up; every buffer larger than 2x L2. Usage: ops [--out dir] [--iters n] [--model dir] [--only all|decode]
/// </summary>
public static class GpuOpsSuite
{
    sealed record Row(string Op, string Shape, double Us, double Bytes, double Flops, string Note);

    public static int Run(string[] args)
    {
        string outDir = Arg(args, "--out") ?? "bench/results";
        int iters = int.Parse(Arg(args, "--iters") ?? "20");
        // --only decode: the copy ceiling and the decode-attention rows only (about 30 s on the H100).
        string only = Arg(args, "--only") ?? "all";
        if (only is not ("all" or "decode")) throw new NibbleException($"--only {only} names no part of the ops suite; use all or decode.");
        bool all = only == "all";
        using var ctx = CudaContext.Open();
        using var kernels = new KernelCache(ctx);
        using var stream = CudaStream.Create(ctx);
        string card = ctx.Name, date = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ");
        Console.WriteLine($"# {card} ({ctx.Arch}, {ctx.MultiprocessorCount} SMs), driver {ctx.DriverVersionText}, NVRTC {KernelCache.NvrtcVersion()}");
        var rows = new List<Row>();
        var rng = new Random(1);
        var host = new float[32 << 20];
        for (int i = 0; i < host.Length; i++) host[i] = (float)(rng.NextDouble() * 2 - 1);

        DeviceBuffer<float> Rand(long n)
        {
            var b = new DeviceBuffer<float>(ctx, n);
            for (long off = 0; off < n; off += host.Length) b.CopyFrom(host.AsSpan(0, (int)Math.Min(host.Length, n - off)), stream, off);
            return b;
        }

        // Copy ceiling: 512 MiB device-to-device, bytes read + written.
        double copyGBs;
        {
            long n = 128L << 20;
            using var a = Rand(n);
            using var b = new DeviceBuffer<float>(ctx, n);
            double us = Time(ctx, stream, iters, _ => b.CopyFromDevice(a, stream));
            copyGBs = 2.0 * n * 4 / (us * 1e3);
            rows.Add(new Row("d2d copy", "512 MiB", us, 2.0 * n * 4, 0, "ceiling"));
        }

        if (all)
        {
            int r = 4096, d = 8192; long n = (long)r * d;
            using var x = Rand(n); using var delta = Rand(n); using var y = new DeviceBuffer<float>(ctx, n); using var w = Rand(d);
            double us = Time(ctx, stream, iters, _ => RmsNormKernel.Run(kernels, stream, x.Pointer, 0, w.Pointer, false, 1e-5f, y.Pointer, r, d));
            rows.Add(new Row("rms_norm", $"{r}x{d}", us, 2.0 * n * 4, 0, ""));
            // The fused add rewrites x each run; values grow by delta per call, fine for timing.
            us = Time(ctx, stream, iters, _ => RmsNormKernel.Run(kernels, stream, x.Pointer, delta.Pointer, w.Pointer, false, 1e-5f, y.Pointer, r, d));
            rows.Add(new Row("add_rms_norm", $"{r}x{d}", us, 4.0 * n * 4, 0, "x+=delta; y=norm(x)"));
        }
        if (all)
        {
            int t = 4096, heads = 32, hd = 128; long n = (long)t * heads * hd;
            using var x = Rand(n); using var inv = Rand(hd / 2);
            double us = Time(ctx, stream, iters, _ => RopeKernel.Run(kernels, stream, x.Pointer, t, heads * hd, hd, 0, 0, inv.Pointer));
            rows.Add(new Row("rope", $"{t} tok x {heads}x{hd}", us, 2.0 * n * 4, 0, "in place"));
        }
        if (all)
        {
            long n = 32L << 20;
            using var g = Rand(n); using var u = Rand(n); using var o = new DeviceBuffer<float>(ctx, n);
            double us = Time(ctx, stream, iters, _ => ElementwiseKernel.SiluMul(kernels, stream, g.Pointer, u.Pointer, o.Pointer, n));
            rows.Add(new Row("silu_mul", "32M", us, 3.0 * n * 4, 0, ""));
            us = Time(ctx, stream, iters, _ => ElementwiseKernel.Add(kernels, stream, o.Pointer, g.Pointer, n));
            rows.Add(new Row("add", "32M", us, 3.0 * n * 4, 0, ""));
            using var s = new DeviceBuffer<ushort>(ctx, 2 * n);
            us = Time(ctx, stream, iters, _ => DenseMatMulKernel.Split(kernels, stream, g.Pointer, s.Pointer, n, split: true));
            rows.Add(new Row("split_bf16", "32M", us, 2.0 * n * 4, 0, "f32 -> bf16 hi+lo"));
        }
        if (all)
        {
            int m = 4096, k = 8192; long n = (long)m * k;
            using var xb = new DeviceBuffer<ushort>(ctx, n); using var x8 = new DeviceBuffer<byte>(ctx, n); using var ts = new DeviceBuffer<float>(ctx, m);
            RandomFill.Bf16(kernels, stream, xb, 3, 1f);
            double us = Time(ctx, stream, iters, _ => ActivationQuantFp8.Run(kernels, stream, xb, x8, ts, m, k));
            rows.Add(new Row("act_quant_fp8", $"{m}x{k}", us, 3.0 * n, 0, "bf16 -> e4m3 + token scale"));
            using var xf = Rand(n);
            us = Time(ctx, stream, iters, _ => QuantLinearIoKernel.ActivationQuantFp8F32(kernels, stream, xf.Pointer, x8, ts, m, k, gemmOrder: true));
            rows.Add(new Row("act_quant_fp8_f32", $"{m}x{k}", us, 5.0 * n, 0, "f32 -> e4m3 (GEMM order) + token scale; what the backend's W4A8 linears run"));
            int k2 = 14336; long n2 = (long)m * k2;
            using var xf2 = Rand(n2); using var x82 = new DeviceBuffer<byte>(ctx, n2);
            us = Time(ctx, stream, iters, _ => QuantLinearIoKernel.ActivationQuantFp8F32(kernels, stream, xf2.Pointer, x82, ts, m, k2, gemmOrder: true));
            rows.Add(new Row("act_quant_fp8_f32", $"{m}x{k2}", us, 5.0 * n2, 0, "down_proj width"));
        }

        // Decode attention: one token over a cache of L positions, f32 cache. v3a: split-KV kernel (one CTA per kv head
        // and chunk serving the whole query group, 16-byte loads) + decode_combine; v3b: its uniform-step variant; fused:
        // v3a whose last CTA per kv head merges the splits (one launch), with its own (fewer, fatter) split choice, also
        // timed at v3a's split count and, on short caches, at forced counts; v2 (warp per key group) for comparison.
        // "eager" rows time each launch between its own events (host launch cost included when the GPU outruns the host);
        // "queued" rows replay 10 launches captured into one CUDA graph behind a 512 MiB memset (the host is done queuing
        // before the first one starts), as a decode-step graph runs them: GPU time per launch, no host cost.
        using var busyBlock = new DeviceBuffer<byte>(ctx, 512L << 20);
        void Busy() => busyBlock.FillBytes(0, stream);
        using var tickets = new DeviceBuffer<uint>(ctx, 1024);
        tickets.FillBytes(0, stream);
        foreach (var (heads, kv, hd) in new[] { (32, 8, 128), (64, 8, 128) })
            foreach (int len in new[] { 1024, 4096, 16384, 32768 })
            {
                if (heads == 64 && len != 32768 && len != 4096) continue;
                long cacheN = (long)kv * len * hd;
                // Caches smaller than 2x L2 (50 MB) are rotated over copies so every run reads from HBM, as a decode
                // step does (the other layers' weights and caches pass through L2 in between).
                int copies = (int)Math.Max(1, (128L << 20) / (2 * cacheN * 4));
                var kvCopies = Enumerable.Range(0, copies).Select(_ => (K: Rand(cacheN), V: Rand(cacheN))).ToList();
                using var q = Rand(heads * hd); using var o = new DeviceBuffer<float>(ctx, heads * hd);
                int splits = AttentionKernel.ChooseDecodeSplits(heads, kv, hd, len, ctx.MultiprocessorCount);
                int fusedSplits = AttentionKernel.ChooseDecodeSplits(heads, kv, hd, len, ctx.MultiprocessorCount, DecodeAttentionVariant.Fused);
                int old = AttentionKernel.ChooseSplits(1, heads, len, ctx.MultiprocessorCount);
                using var pa = new DeviceBuffer<float>(ctx, (long)heads * Math.Max(64, Math.Max(splits, old)) * hd);
                using var pm = new DeviceBuffer<float>(ctx, (long)heads * Math.Max(64, Math.Max(splits, old)) * 2);
                string shape = $"L={len} h={heads}/{kv} d={hd}";
                double bytes = 2.0 * cacheN * 4, flops = 4.0 * heads * len * hd;
                string cacheNote = $"{copies} cache cop{(copies == 1 ? "y" : "ies")}";
                Action<int> Launch(DecodeAttentionVariant variant, int s) => i => AttentionKernel.Decode(kernels, stream, q.Pointer, kvCopies[i % copies].K.Pointer,
                    kvCopies[i % copies].V.Pointer, o.Pointer, heads, kv, hd, len, 0, len - 1, 0, s, pa.Pointer, pm.Pointer, variant, tickets.Pointer);
                void Both(string label, DecodeAttentionVariant variant, int s, string note)
                {
                    rows.Add(new Row($"decode attention {label}", shape, Time(ctx, stream, iters, Launch(variant, s)), bytes, flops, $"eager; {note}"));
                    rows.Add(new Row($"decode attention {label}", shape, GpuTimer.QueuedMedianMicroseconds(ctx, stream, iters, Launch(variant, s), Busy), bytes, flops, $"queued; {note}"));
                }
                Both("v3a", DecodeAttentionVariant.V3a, splits, $"split-KV + combine, {splits} splits x {kv} kv heads, {cacheNote}");
                Both("fused", DecodeAttentionVariant.Fused, fusedSplits, $"one launch, {fusedSplits} splits x {kv} kv heads (fused choice), {cacheNote}");
                if (fusedSplits != splits)
                    Both("fused", DecodeAttentionVariant.Fused, splits, $"one launch, {splits} splits (v3a's choice)");
                if (len <= 4096)
                    foreach (int forced in new[] { 4, 8, 16, 32 })
                        if (forced != splits && forced != fusedSplits)
                            rows.Add(new Row("decode attention fused", shape, GpuTimer.QueuedMedianMicroseconds(ctx, stream, iters, Launch(DecodeAttentionVariant.Fused, forced), Busy),
                                bytes, flops, $"queued; {forced} splits (forced)"));
                rows.Add(new Row("decode attention v3b", shape, Time(ctx, stream, iters, Launch(DecodeAttentionVariant.V3b, splits)), bytes, flops, "eager; uniform steps + reduce-scatter scores"));
                if (heads == 32)
                {
                    double us = Time(ctx, stream, iters, i => AttentionKernel.Run(kernels, stream, q.Pointer, kvCopies[i % copies].K.Pointer, kvCopies[i % copies].V.Pointer, o.Pointer, 1, heads, kv, hd,
                        len, 0, len - 1, 0, len, old, pa.Pointer, pm.Pointer));
                    rows.Add(new Row("decode attention v2", shape, us, bytes, flops, $"eager; {old} split(s)"));
                }
                foreach (var (k, v) in kvCopies) { k.Dispose(); v.Dispose(); }
            }
        var e2e = new List<string>();
        // Prefill attention: T tokens causal over themselves (CUDA cores, float32; no tensor cores yet).
        foreach (int t in all ? new[] { 512, 2048 } : [])
        {
            int heads = 32, kv = 8, hd = 128;
            using var keys = Rand((long)kv * t * hd); using var values = Rand((long)kv * t * hd);
            using var q = Rand((long)t * heads * hd); using var o = new DeviceBuffer<float>(ctx, (long)t * heads * hd);
            double us = Time(ctx, stream, Math.Max(3, iters / 4), _ => AttentionKernel.Run(kernels, stream, q.Pointer, keys.Pointer, values.Pointer, o.Pointer, t, heads, kv, hd,
                t, 0, 0, 0, t, 1, 0, 0));
            rows.Add(new Row("prefill attention", $"T={t} h=32/8 d=128", us, 0, 4.0 * heads * hd * t * (t + 1) / 2.0, "causal, f32 CUDA cores"));
        }

        // End to end: greedy decode of the bundled nano model, CUDA vs CPU.
        string? model = Arg(args, "--model") ?? FindNano();
        if (all && model is not null)
        {
            var tokenizer = HfTokenizer.Load(model);
            var ids = tokenizer.Encode("The Python interpreter");
            var options = new SamplingOptions { MaxTokens = 128, StopTokenIds = [] };
            using var gpu = new CudaBackend(ctx, kernels, stream);
            foreach (var (name, backend) in new (string, Nibble.Backend.IBackend)[] { ("cuda", gpu), ("cpu", CpuBackend.Instance) })
            {
                using var lm = CausalLM.Load(model, backend);
                var gen = new Generator(lm, tokenizer);
                gen.Generate(ids, options with { MaxTokens = 8 }); // warm-up: kernel loads, plans
                var r = gen.Generate(ids, options);
                e2e.Add(string.Create(CultureInfo.InvariantCulture, $"- nano greedy decode on {name}: {r.DecodeTokensPerSecond:F1} tokens/s ({r.TokenIds.Length} tokens, prefill {r.PrefillTime.TotalMilliseconds:F1} ms of {r.PromptTokens} tokens)"));
                Console.WriteLine(e2e[^1]);
            }
        }

        var md = new StringBuilder();
        md.AppendLine($"# CUDA backend ops on {card}, {date}");
        md.AppendLine();
        md.AppendLine($"Command: `dotnet Nibble.Bench.dll ops {string.Join(' ', args)}`. Median of {iters} CUDA-event-timed runs after 3 warm-ups. Bandwidth counts bytes read + written once; `% copy` is against the measured device-to-device copy ({copyGBs:F0} GB/s).");
        md.AppendLine();
        md.AppendLine("| op | shape | µs | GB/s | % copy | TFLOP/s | note |");
        md.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var r in rows)
        {
            double gbs = r.Bytes / (r.Us * 1e3);
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Op} | {r.Shape} | {r.Us:F1} | {(r.Bytes > 0 ? gbs.ToString("F0", CultureInfo.InvariantCulture) : "")} | {(r.Bytes > 0 ? (100 * gbs / copyGBs).ToString("F0", CultureInfo.InvariantCulture) : "")} | {(r.Flops > 0 ? (r.Flops / (r.Us * 1e6)).ToString("F2", CultureInfo.InvariantCulture) : "")} | {r.Note} |"));
        }
        md.AppendLine();
        foreach (var l in e2e) md.AppendLine(l);
        Console.WriteLine(md.ToString());
        Directory.CreateDirectory(outDir);
        Nibble.Formats.AtomicFile.WriteAllText(Path.Combine(outDir, "ops.md"), md.ToString());
        return 0;
    }

    static string? FindNano()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "models", "nano", "config.json"))) return Path.Combine(dir.FullName, "models", "nano");
        return null;
    }

    static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    static double Time(CudaContext ctx, CudaStream stream, int iters, Action<int> launch) =>
        GpuTimer.MedianMicroseconds(ctx, stream, iters, launch);
}
