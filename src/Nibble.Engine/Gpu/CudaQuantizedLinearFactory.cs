using Nibble.Backend;
using Nibble.Cuda.Backend;
using Nibble.Formats;
using Nibble.Models;
using Nibble.Quantization;

namespace Nibble.Engine.Gpu;

/// <summary>
/// The GPU twin of <see cref="QuantizedLinearFactory"/>: every module with <c>weight_packed / weight_scale</c> becomes a
/// <see cref="CudaW4A8Linear"/> or <see cref="CudaW4A16Linear"/> (weights preprocessed on the GPU straight from the
/// checkpoint tensors); everything else (lm_head, routers) loads through the backend's dense bf16 path.
/// The GPU weight prep implements <see cref="Nibble.Numerics.ScaleRecoveryMode.Recovered"/> scales only.
/// </summary>
public sealed class CudaQuantizedLinearFactory(CudaBackend backend, SafetensorsCheckpoint checkpoint, QuantizationScheme scheme) : ILinearFactory
{
    readonly DenseLinearFactory _dense = new(backend, checkpoint);

    public ILinear Create(LinearSpec spec)
    {
        string packedName = spec.Name + "." + CompressedTensorsCheckpoint.WeightPacked, scaleName = spec.Name + "." + CompressedTensorsCheckpoint.WeightScale;
        if (!checkpoint.Contains(packedName)) return _dense.Create(spec);
        int n = spec.OutFeatures, k = spec.InFeatures;
        var packed = checkpoint.GetInfo(packedName);
        if (!checkpoint.Contains(scaleName))
            throw new NibbleException($"'{scaleName}' is missing from '{checkpoint.Directory}'; the checkpoint is not pack-quantized.");
        var scale = checkpoint.GetInfo(scaleName);
        if (packed.DType != SafetensorsDType.I32 || packed.Shape.Length != 2 || packed.Shape[0] != n || packed.Shape[1] * 8 != k)
            throw new NibbleException($"'{packedName}' is {packed.DType} {packed.ShapeText} but config.json expects [{n}, {k}] (int32 [{n}, {k / 8}]); the checkpoint does not match its config.");
        if (scale.DType != SafetensorsDType.BF16 || scale.Shape.Length != 2 || scale.Shape[0] != n || scale.Shape[1] <= 0 || k % scale.Shape[1] != 0)
            throw new NibbleException($"'{scaleName}' is {scale.DType} {scale.ShapeText}; expected bf16 [{n}, K/group] with K = {k}.");
        int groupSize = checked((int)(k / scale.Shape[1]));
        float[]? bias = null;
        if (spec.HasBias)
        {
            string biasName = spec.Name + ".bias";
            if (!checkpoint.Contains(biasName))
                throw new NibbleException($"Tensor '{biasName}' is missing from '{checkpoint.Directory}'; this architecture has a bias there.");
            bias = CpuBias(biasName);
        }
        var w = checkpoint.GetSpan<int>(packedName);
        var s = checkpoint.GetSpan<ushort>(scaleName);
        return scheme == QuantizationScheme.W4A8
            ? new CudaW4A8Linear(backend, w, s, n, k, groupSize, bias)
            : new CudaW4A16Linear(backend, w, s, n, k, groupSize, bias);
    }

    /// <summary>The bias as F32 on the host, decoded by the CPU backend (the CUDA backend caches its weights, so no device round trip).</summary>
    float[] CpuBias(string name)
    {
        var t = Nibble.Cpu.CpuBackend.Instance.Weight(checkpoint, name);
        var host = new float[t.ElementCount];
        t.CopyTo(host);
        return host;
    }
}
