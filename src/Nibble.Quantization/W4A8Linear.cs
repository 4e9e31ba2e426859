using Nibble.Backend;
using Nibble.Models;
using Nibble.Numerics;

namespace Nibble.Quantization;

/// <summary>
/// The W4A8 linear layer on the CPU backend, computing exactly the numerics contract (architecture guide,
/// principle 2; w4a8-spec.md §3, §6): per-token FP8 activations x8 = e4m3(x / s_tok) with
/// s_tok = max(absmax/448, 1/(448·512)); FP8 weights e4m3(q · σ) with σ the FP8 group scale after ÷8
/// (or the naive cast); y = bf16(c'[n] · s_tok[m] · Σ_k x8·w8), + bias before the one bf16 rounding (as Nibble.Numerics.W4A8Reference). Products of two E4M3 values are
/// exact in float and the sum is a float accumulation, as in the GPU kernel (up to summation order).
/// The FP8 weights are held as bf16 bit patterns (every E4M3 value is exact in bf16) so the backend's bf16 GEMM runs them.
/// </summary>
public sealed class W4A8Linear : ILinear
{
    readonly IBackend _backend;
    readonly Tensor _w8;
    readonly float[] _channelScale;
    readonly float[]? _bias;

    public W4A8Linear(IBackend backend, QuantizedLinearWeights weight, ScaleRecoveryMode scales, float[]? bias = null)
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

    public QuantizedLinearWeights Weight { get; }
    public ScaleRecoveryMode Scales { get; }
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
                // As W4A8Reference: FP32 epilogue (acc · s_tok) · c', bias, then one bf16 rounding.
                float v = _channelScale[j] * (s * row[j]);
                row[j] = BFloat16.Round(_bias is null ? v : v + _bias[j]);
            }
        }
    }

    /// <summary>Per-token FP8 quantization of one activation row (<see cref="TokenScale"/>); returns s_tok and writes x8 as exact E4M3 values.</summary>
    public static float QuantizeToken(ReadOnlySpan<float> x, Span<float> x8)
    {
        Span<byte> codes = x.Length <= 8192 ? stackalloc byte[x.Length] : new byte[x.Length];
        float s = TokenScale.QuantizeRow(x, codes);
        Fp8E4M3.Decode(codes, x8);
        return s;
    }

    static HostTensor Host(Tensor t) => t as HostTensor ?? throw new ArgumentException("W4A8Linear runs on the CPU backend; its tensors must be host tensors.");
}
