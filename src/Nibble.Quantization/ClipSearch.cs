using System.Numerics.Tensors;
using Nibble.Numerics;

namespace Nibble.Quantization;

/// <summary>Settings of the activation-aware weight-clipping search (<see cref="ClipSearch"/>).</summary>
public sealed record ClipSearchOptions
{
    /// <summary>Ratios tried are 1 − i / GridPoints for i = 0 .. MaxShrink·GridPoints − 1 (llm-awq's auto_clip: 20, 0.5 → 1.00, 0.95, …, 0.55).</summary>
    public int GridPoints { get; init; } = 20;
    /// <summary>Largest fraction of a group's max |w| that may be clipped away (exclusive).</summary>
    public double MaxShrink { get; init; } = 0.5;
    /// <summary>Calibration rows per layer input at most (evenly strided); the Gram matrices cost rows · K · group size.</summary>
    public int MaxTokens { get; init; } = 4096;
    /// <summary>Leave q_proj / k_proj unclipped, as llm-awq does (their error reaches the output through softmax(q·kᵀ), which a per-group output MSE does not model).</summary>
    public bool SkipQueryKey { get; init; } = true;
    /// <summary>Also search with the W4A16 objective and keep those codes as <see cref="QuantizedLinear.ClippedRtnWeight"/> (quality-report's W4A16-AWQ + clip row).</summary>
    public bool AlsoW4A16 { get; init; }

    public IReadOnlyList<float> Ratios()
    {
        if (GridPoints < 1) throw new NibbleException($"The clip search needs at least 1 grid point, got {GridPoints}; use --clip-grid 20.");
        if (!(MaxShrink > 0 && MaxShrink < 1)) throw new NibbleException($"The clip search's max shrink must be in (0, 1), got {MaxShrink}; use --clip-max-shrink 0.5.");
        if (MaxTokens < 1) throw new NibbleException($"The clip search needs at least 1 calibration token per layer, got {MaxTokens}.");
        int count = Math.Max(1, (int)Math.Ceiling(MaxShrink * GridPoints - 1e-9));
        return [.. Enumerable.Range(0, count).Select(i => (float)(1 - (double)i / GridPoints))];
    }
}

/// <summary>The numerics a clip candidate is judged with: the scheme's dequantization and how codes are chosen.</summary>
public sealed record ClipNumerics(QuantizationScheme Scheme, ScaleRecoveryMode Scales = ScaleRecoveryMode.Recovered, WeightRounding Rounding = WeightRounding.Grid)
{
    public static readonly ClipNumerics W4A16 = new(QuantizationScheme.W4A16, ScaleRecoveryMode.Recovered, WeightRounding.Rtn);
}

/// <summary>
/// Per-group second moments of one layer input over the calibration rows, enough to evaluate any candidate weight
/// exactly: with x the bf16-model input row and x̃ what the GEMM sees (x itself for W4A16, the per-token FP8
/// x8·s_tok for W4A8), the group's partial-output error over the rows is
/// Σ_t (x̃_g·ŵ − x_g·w)² = dᵀ H d + 2 dᵀ E w + wᵀ R w with d = ŵ − w, H = Σ x̃ x̃ᵀ, E = Σ x̃ eᵀ, R = Σ e eᵀ, e = x̃ − x
/// (the GPTQ-style Hessian, block-diagonal by group; no cancellation between large terms).
/// </summary>
public sealed class GroupMoments
{
    internal readonly double[] H, E, R;
    public int K { get; }
    public int GroupSize { get; }
    public int Rows { get; }
    public bool Fp8Activations { get; }

    GroupMoments(int k, int groupSize, int rows, bool fp8)
    {
        (K, GroupSize, Rows, Fp8Activations) = (k, groupSize, rows, fp8);
        long size = (long)k * groupSize;
        H = new double[size];
        E = fp8 ? new double[size] : [];
        R = fp8 ? new double[size] : [];
    }

    /// <summary>Moments of <paramref name="rows"/> rows of x [rows, k]; FP8 rows are quantized per token exactly as <see cref="W4A8Linear"/> does.</summary>
    public static GroupMoments Compute(ReadOnlySpan<float> x, int rows, int k, int groupSize, bool fp8Activations)
    {
        if (groupSize <= 0 || k % groupSize != 0) throw new ArgumentException($"K = {k} is not a multiple of the group size {groupSize}.");
        if (x.Length != (long)rows * k) throw new ArgumentException($"Expected {rows}·{k} inputs, got {x.Length}.", nameof(x));
        var m = new GroupMoments(k, groupSize, rows, fp8Activations);
        // Column-major copies per group so each moment entry is one contiguous dot product over the rows.
        var xt = new double[(long)k * rows];
        var et = fp8Activations ? new double[(long)k * rows] : [];
        var x8 = new float[k];
        for (int t = 0; t < rows; t++)
        {
            var row = x.Slice(t * k, k);
            if (fp8Activations)
            {
                float s = W4A8Linear.QuantizeToken(row, x8);
                for (int i = 0; i < k; i++)
                {
                    double q = (double)x8[i] * s;
                    xt[(long)i * rows + t] = q;
                    et[(long)i * rows + t] = q - row[i];
                }
            }
            else
                for (int i = 0; i < k; i++) xt[(long)i * rows + t] = row[i];
        }
        Parallel.For(0, k / groupSize, g =>
        {
            for (int i = 0; i < groupSize; i++)
            {
                var xi = xt.AsSpan((g * groupSize + i) * rows, rows);
                var ei = fp8Activations ? et.AsSpan((g * groupSize + i) * rows, rows) : default;
                for (int j = 0; j < groupSize; j++)
                {
                    long at = (long)g * groupSize * groupSize + i * groupSize + j;
                    var xj = xt.AsSpan((g * groupSize + j) * rows, rows);
                    if (j >= i) m.H[at] = TensorPrimitives.Dot<double>(xi, xj);
                    if (!fp8Activations) continue;
                    var ej = et.AsSpan((g * groupSize + j) * rows, rows);
                    m.E[at] = TensorPrimitives.Dot<double>(xi, ej);
                    if (j >= i) m.R[at] = TensorPrimitives.Dot<double>(ei, ej);
                }
                for (int j = 0; j < i; j++)
                {
                    long at = (long)g * groupSize * groupSize + i * groupSize + j, mirror = (long)g * groupSize * groupSize + j * groupSize + i;
                    m.H[at] = m.H[mirror];
                    if (fp8Activations) m.R[at] = m.R[mirror];
                }
            }
        });
        return m;
    }
}

/// <summary>
/// Activation-aware weight clipping (the idea of llm-awq's <c>auto_clip_layer</c>, MIT-licensed, read not copied):
/// per output row and group, shrink the max |w| that sets the int4 scale by a ratio from a small grid, and keep the
/// ratio whose quantized group gives the smallest partial-output squared error over the calibration inputs. Here the
/// error is evaluated exactly from <see cref="GroupMoments"/> and under the numerics that will run: for W4A8 the
/// per-token FP8 input, the recovered FP8 group scale σ and channel scale c' (spec §3) and grid-rounded codes; for
/// W4A16 RTN codes times the bf16 scale. The chosen scale is an ordinary compressed-tensors bf16 scale
/// S = bf16(ratio · max|w| / 7.5) (values beyond the clip saturate at −8 / 7), so the checkpoint format is unchanged.
/// Ratio 1 (plain RTN) is always a candidate and wins ties, so the searched objective never gets worse.
/// For W4A8 the candidates of a row share the channel scale c of its unclipped scales; the final weight recovers
/// σ and c' from the chosen scales exactly as the loader does (they differ only when the row's largest group is clipped).
/// </summary>
public static class ClipSearch
{
    /// <summary>Chosen bf16 scales [n, groups] (bits) for weight [n, k], and the summed objective before (ratio 1) and after.</summary>
    public sealed record Result(ushort[] ScalesBf16, double LossBefore, double LossAfter, int ClippedGroups);

    public static Result Search(ReadOnlySpan<float> weightNK, int n, int k, GroupMoments moments, ClipNumerics numerics, ClipSearchOptions options)
    {
        if (moments.K != k) throw new ArgumentException($"Moments of K = {moments.K} for a weight of K = {k}.");
        if (weightNK.Length != (long)n * k) throw new ArgumentException($"Expected {n}·{k} weights, got {weightNK.Length}.", nameof(weightNK));
        if (numerics.Scheme == QuantizationScheme.W4A8 && !moments.Fp8Activations || numerics.Scheme == QuantizationScheme.W4A16 && moments.Fp8Activations)
            throw new ArgumentException("The moments' activation numerics do not match the clip numerics.");
        var ratios = options.Ratios();
        int gs = moments.GroupSize, groups = k / gs;
        var scales = new ushort[n * groups];
        var before = new double[n];
        var after = new double[n];
        var clipped = new int[n];
        var w = weightNK.ToArray();
        Parallel.For(0, n, row =>
        {
            var wRow = new double[k];
            for (int i = 0; i < k; i++) wRow[i] = BFloat16.Round(w[(long)row * k + i]);
            var rowScales = new float[groups];
            for (int g = 0; g < groups; g++) rowScales[g] = BFloat16.ToFloat(RtnQuantizer.GroupScale(w.AsSpan(row * k + g * gs, gs)));
            float channel = numerics.Scheme == QuantizationScheme.W4A8 && numerics.Scales == ScaleRecoveryMode.Recovered ? ScaleRecovery.ChannelScale(rowScales) : 1f;
            var work = new Workspace(gs);
            for (int g = 0; g < groups; g++)
            {
                var wg = wRow.AsSpan(g * gs, gs);
                work.Prepare(wg, moments, g);
                double absMax = 0;
                foreach (double v in wg) absMax = Math.Max(absMax, Math.Abs(v));
                ushort best = RtnQuantizer.GroupScale(w.AsSpan(row * k + g * gs, gs));
                double bestLoss = GroupLoss(wg, BFloat16.ToFloat(best), channel, moments, g, numerics, work);
                before[row] += bestLoss;
                if (absMax > 0)
                    for (int r = 1; r < ratios.Count; r++)
                    {
                        float s = BFloat16.Round((float)absMax * ratios[r] / 7.5f);
                        if (s == 0) continue;
                        double l = GroupLoss(wg, s, channel, moments, g, numerics, work);
                        if (l < bestLoss) (best, bestLoss) = (BFloat16.FromFloat(s), l);
                    }
                if (best != RtnQuantizer.GroupScale(w.AsSpan(row * k + g * gs, gs))) clipped[row]++;
                scales[row * groups + g] = best;
                after[row] += bestLoss;
            }
        });
        return new Result(scales, before.Sum(), after.Sum(), clipped.Sum());
    }

    /// <summary>Σ over rows and groups of the searched objective for the given scales (channel scale fixed from <paramref name="channelScalesFrom"/>' rows, as the search does).</summary>
    public static double Objective(ReadOnlySpan<float> weightNK, int n, int k, ushort[] scalesBf16, ushort[] channelScalesFrom, GroupMoments moments, ClipNumerics numerics)
    {
        int gs = moments.GroupSize, groups = k / gs;
        var work = new Workspace(gs);
        var wRow = new double[k];
        var rowScales = new float[groups];
        double sum = 0;
        for (int row = 0; row < n; row++)
        {
            for (int i = 0; i < k; i++) wRow[i] = BFloat16.Round(weightNK[row * k + i]);
            for (int g = 0; g < groups; g++) rowScales[g] = BFloat16.ToFloat(channelScalesFrom[row * groups + g]);
            float channel = numerics.Scheme == QuantizationScheme.W4A8 && numerics.Scales == ScaleRecoveryMode.Recovered ? ScaleRecovery.ChannelScale(rowScales) : 1f;
            for (int g = 0; g < groups; g++)
            {
                work.Prepare(wRow.AsSpan(g * gs, gs), moments, g);
                sum += GroupLoss(wRow.AsSpan(g * gs, gs), BFloat16.ToFloat(scalesBf16[row * groups + g]), channel, moments, g, numerics, work);
            }
        }
        return sum;
    }

    /// <summary>The int4 codes for the chosen scales: RTN against S, then (W4A8, grid rounding) re-chosen on the recovered W4A8 grid.</summary>
    public static QuantizedLinearWeights Quantize(ReadOnlySpan<float> weightNK, int n, int k, int groupSize, ushort[] scalesBf16, ClipNumerics numerics)
    {
        int groups = k / groupSize;
        var q = new sbyte[weightNK.Length];
        for (int row = 0; row < n; row++)
            for (int g = 0; g < groups; g++)
            {
                float s = BFloat16.ToFloat(scalesBf16[row * groups + g]);
                for (int i = 0; i < groupSize; i++)
                {
                    long at = (long)row * k + g * groupSize + i;
                    q[at] = RtnQuantizer.QuantizeValue(weightNK[(int)at], s);
                }
            }
        var rtn = new QuantizedLinearWeights(q, scalesBf16, n, k, groupSize);
        return numerics.Scheme == QuantizationScheme.W4A8 && numerics.Rounding == WeightRounding.Grid
            ? W4A8GridRounding.Round(weightNK, rtn, numerics.Scales) : rtn;
    }

    sealed class Workspace(int gs)
    {
        public readonly double[] D = new double[gs];
        /// <summary>E·w of the current group (zero for W4A16).</summary>
        public readonly double[] Ew = new double[gs];
        /// <summary>wᵀ R w of the current group: the same for every candidate, kept so losses are the true error.</summary>
        public double Constant;
        public readonly double[] Grid = new double[16];

        /// <summary>Precomputes the candidate-independent terms of group <paramref name="g"/> with weights <paramref name="w"/>.</summary>
        public void Prepare(ReadOnlySpan<double> w, GroupMoments m, int g)
        {
            Constant = 0;
            Array.Clear(Ew);
            if (!m.Fp8Activations) return;
            int gs = w.Length;
            long baseAt = (long)g * gs * gs;
            for (int i = 0; i < gs; i++)
            {
                Ew[i] = TensorPrimitives.Dot<double>(m.E.AsSpan((int)(baseAt + i * gs), gs), w);
                Constant += w[i] * TensorPrimitives.Dot<double>(m.R.AsSpan((int)(baseAt + i * gs), gs), w);
            }
        }
    }

    /// <summary>Σ_t (x̃_g·ŵ − x_g·w)² of one group quantized with bf16 scale <paramref name="scale"/> under <paramref name="numerics"/>.</summary>
    static double GroupLoss(ReadOnlySpan<double> w, float scale, float channel, GroupMoments m, int g, ClipNumerics numerics, Workspace work)
    {
        int gs = w.Length;
        var d = work.D;
        if (numerics.Scheme == QuantizationScheme.W4A16)
            for (int i = 0; i < gs; i++) d[i] = RtnQuantizer.QuantizeValue((float)w[i], scale) * (double)scale - w[i];
        else
        {
            // σ and c' as ScaleRecovery computes them for this row (channel = c before ×8; naive: σ = e4m3(S), c' = 1).
            float sigma, cPrime;
            if (numerics.Scales == ScaleRecoveryMode.Naive) (sigma, cPrime) = (Fp8E4M3.Decode(Fp8E4M3.Encode(scale)), 1f);
            else
            {
                float sigma1 = Fp8E4M3.Decode(Fp8E4M3.EncodeSatFinite(Math.Clamp(scale * (1f / channel), -448f, 448f)));
                (sigma, cPrime) = (Fp8E4M3.Decode(Fp8E4M3.EncodeSatFinite(sigma1 / 8f)), 8f * channel);
            }
            W4A8GridRounding.GroupGrid(sigma, cPrime, work.Grid);
            for (int i = 0; i < gs; i++)
            {
                int q = numerics.Rounding == WeightRounding.Grid ? W4A8GridRounding.Nearest(w[i], work.Grid) : RtnQuantizer.QuantizeValue((float)w[i], scale);
                d[i] = work.Grid[q + 8] - w[i];
            }
        }
        long baseAt = (long)g * gs * gs;
        double loss = work.Constant;
        for (int i = 0; i < gs; i++)
        {
            double hd = TensorPrimitives.Dot<double>(m.H.AsSpan((int)(baseAt + i * gs), gs), d);
            loss += d[i] * (hd + 2 * work.Ew[i]);
        }
        return loss;
    }
}
