using System.Runtime.InteropServices;

namespace Nibble.Cuda.Kernels;

/// <summary>
/// Load-time preprocessing of a compressed-tensors W4A16/W4AFP8 checkpoint tensor pair (weight_packed int32 [N, K/8]
/// uint4b8, weight_scale bf16 [N, K/128]) into the W4A8 GEMM operands (W4A8WeightPrep.cu). <see cref="Reference"/>
/// is the byte-identical CPU twin.
/// </summary>
public static class W4A8WeightPrep
{
    [StructLayout(LayoutKind.Sequential)]
    struct Params { public ulong WeightPacked, Scales, WeightTiled, SigmaTiled, ChannelScale; public int N, K; }

    public static void Validate(int n, int k)
    {
        if (n <= 0 || k <= 0 || n % 128 != 0 || k % 128 != 0)
            throw new NibbleException($"W4A8 needs N and K to be positive multiples of 128 but the layer is N={n}, K={k}; keep this layer in BF16.");
    }

    public static void Run(KernelCache kernels, CudaStream stream, DeviceBuffer<int> weightPackedNK8, DeviceBuffer<ushort> scalesNG,
        W4A8GemmOperands operands)
    {
        int n = operands.N, k = operands.K;
        Validate(n, k);
        if (weightPackedNK8.Length != (long)n * k / 8 || scalesNG.Length != (long)n * (k / 128))
            throw new NibbleException($"Checkpoint tensors do not match N={n}, K={k}: weight_packed must be [N, K/8] int32 and weight_scale [N, K/128] bf16.");
        var module = kernels.Load("W4A8WeightPrep.cu");
        var p = new Params
        {
            WeightPacked = weightPackedNK8.Pointer, Scales = scalesNG.Pointer, WeightTiled = operands.WeightTiled.Pointer,
            SigmaTiled = operands.SigmaTiled.Pointer, ChannelScale = operands.ChannelScale.Pointer, N = n, K = k,
        };
        module.Function("w4a8_prep_scales").Launch(stream, ((uint)(n / 8), 1, 1), 256, p);
        long lanes = (long)n * k / 32;
        module.Function("w4a8_prep_weights").Launch(stream, ((uint)((lanes + 255) / 256), 1, 1), 256, p);
    }

    /// <summary>
    /// Channel-wise checkpoints (group size = K, weight_scale [N, 1]) run on the group-128 kernels by repeating each
    /// row's scale over its K/128 groups: recovery then gives σ = e4m3(e4m3(448)/8) = 56 in every group of a non-zero
    /// row whose |S| ≥ 448/(448·512) (smaller rows hit the floor of c) and c' = 8·|S|/448: a per-channel FP8 scale.
    /// </summary>
    public static ushort[] ExpandChannelScales(ReadOnlySpan<ushort> scalesN1, int n, int k)
    {
        Validate(n, k);
        if (scalesN1.Length != n) throw new NibbleException($"Channel-wise weight_scale must be [N, 1] = [{n}, 1] but has {scalesN1.Length} values.");
        int groups = k / 128;
        var expanded = new ushort[n * groups];
        for (int r = 0; r < n; r++) expanded.AsSpan(r * groups, groups).Fill(scalesN1[r]);
        return expanded;
    }

    /// <summary>Unified sign-magnitude code of a uint4b8 nibble u = q + 8 (spec §1.2).</summary>
    public static int UnifiedCode(int u) => u < 8 ? u ^ 8 : u == 8 ? 0 : 16 - u;

    /// <summary>CPU twin of the two kernels; outputs are byte-identical to the GPU's.</summary>
    public static void Reference(ReadOnlySpan<int> weightPackedNK8, ReadOnlySpan<ushort> scalesNG, int n, int k,
        Span<byte> weightTiled, Span<byte> sigmaTiled, Span<float> channelScale)
    {
        Validate(n, k);
        int groups = k / 128, kBlocks = k / 64, words = k / 8;
        for (int row = 0; row < n; row++)
        {
            float amax = 0;
            for (int g = 0; g < groups; g++) amax = MathF.Max(amax, MathF.Abs(HostNumerics.Bf16ToFloat(scalesNG[row * groups + g])));
            float c = MathF.Max(amax / 448f, 1f / (448f * 512f));
            float inv = 1f / c;
            channelScale[row] = 8f * c;
            int nb = row >> 4, r = row & 15;
            for (int g = 0; g < groups; g++)
            {
                float v = Math.Clamp(HostNumerics.Bf16ToFloat(scalesNG[row * groups + g]) * inv, -448f, 448f);
                byte s1 = HostNumerics.EncodeE4M3(v);
                byte sg = HostNumerics.EncodeE4M3(HostNumerics.DecodeE4M3(s1) / 8f);
                sigmaTiled[(((nb * groups + g) * 8) + (r & 7)) * 2 + (r >> 3)] = sg;
            }
        }
        for (int nb = 0; nb < n / 16; nb++)
            for (int kb = 0; kb < kBlocks; kb++)
                for (int lane = 0; lane < 32; lane++)
                {
                    int gid = lane >> 2, tig = lane & 3;
                    int baseOut = ((nb * kBlocks + kb) * 32 + lane) * 16;
                    for (int w = 0; w < 4; w++)
                    {
                        int t = w >> 1, h = w & 1;
                        uint word = 0;
                        for (int half = 0; half < 2; half++)
                        {
                            int row = nb * 16 + gid + 8 * half;
                            for (int i = 0; i < 4; i++)
                            {
                                int kk = kb * 64 + tig * 16 + t * 8 + h * 4 + i;
                                int u = (weightPackedNK8[row * words + kk / 8] >> (4 * (kk % 8))) & 0xF;
                                word |= (uint)UnifiedCode(u) << (4 * (half * 4 + i));
                            }
                        }
                        BitConverter.TryWriteBytes(weightTiled.Slice(baseOut + 4 * w, 4), word);
                    }
                }
    }
}
