using Nibble.Backend;
using Nibble.Models;

namespace Nibble.Quantization;

/// <summary>
/// The W4A8 linear layer on the CPU backend, computing exactly the numerics contract (architecture guide,
/// principle 2; w4a8-spec.md §3, §6): per-token FP8 activations x8 = e4m3(x / s_tok) with
/// s_tok = max(absmax/448, 1/(448·512)); FP8 weights e4m3(q · σ) with σ the FP8 group scale after ÷8
/// (or the naive cast); y = bf16(c'[n] · s_tok[m] · Σ_k x8·w8), then + bias. Products of two E4M3 values are
/// exact in float and the sum is a float accumulation, as in the GPU kernel (up to summation order).
/// The FP8 weights are held as bf16 bit patterns (every E4M3 value is exact in bf16) so the backend's bf16 GEMM runs them.
/// </summary>
public sealed class W4A8Linear : ILinear
{
    readonly IBackend _backend;
    readonly Tensor _w8;
    readonly float[] _channelScale;
    readonly float[]? _bias;

    public W4A8Linear(IBackend backend, Int4GroupWeight weight, ScaleMode scales, float[]? bias = null)
    {
        if (bias is not null && bias.Length != weight.N) throw new ArgumentException($"Bias of {bias.Length} for {weight.N} outputs.", nameof(bias));
        _backend = backend;
        Weight = weight;
        Scales = scales;
        Operands = W4A8Weight.From(weight, scales);
        var bits = new ushort[Operands.W8.Length];
        for (int i = 0; i < bits.Length; i++) bits[i] = (ushort)(BitConverter.SingleToInt32Bits(Operands.W8[i]) >>> 16);
        _w8 = HostTensor.WrapBf16(bits, weight.N, weight.K);
        _channelScale = Operands.ChannelScale;
        _bias = bias;
    }

    public Int4GroupWeight Weight { get; }
    public ScaleMode Scales { get; }
    public W4A8Weight Operands { get; }
    public float[]? Bias => _bias;
    public int InFeatures => Weight.K;
    public int OutFeatures => Weight.N;

    public void Forward(Tensor input, Tensor output)
    {
        int t = input.Rows, k = InFeatures, n = OutFeatures;
        var x = Host(input).Floats;
        var x8 = new float[(long)t * k];
        var tokenScale = new float[t];
        for (int r = 0; r < t; r++) tokenScale[r] = QuantizeToken(x.Slice(r * k, k), x8.AsSpan(r * k, k));
        _backend.MatMul(HostTensor.Wrap(x8, t, k), _w8, null, output);
        var y = Host(output).Floats;
        for (int r = 0; r < t; r++)
        {
            var row = y.Slice(r * n, n);
            float s = tokenScale[r];
            for (int j = 0; j < n; j++)
            {
                float v = PendingNumerics.Bf16(_channelScale[j] * (s * row[j]));
                row[j] = _bias is null ? v : v + _bias[j];
            }
        }
    }

    /// <summary>Per-token FP8 quantization of one activation row; returns s_tok and writes x8 = e4m3(x / s_tok).</summary>
    public static float QuantizeToken(ReadOnlySpan<float> x, Span<float> x8)
    {
        float absmax = 0;
        foreach (float v in x) absmax = MathF.Max(absmax, MathF.Abs(v));
        float s = MathF.Max(absmax / 448f, 1f / (448f * 512f));
        for (int i = 0; i < x.Length; i++) x8[i] = PendingNumerics.E4m3(x[i] / s);
        return s;
    }

    static HostTensor Host(Tensor t) => t as HostTensor ?? throw new ArgumentException("W4A8Linear runs on the CPU backend; its tensors must be host tensors.");
}
