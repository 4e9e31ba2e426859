using Nibble.Backend;
using Nibble.Cuda.Backend;
using Nibble.Formats;
using Nibble.Models;
using Nibble.Numerics;
using Nibble.Quantization;

namespace Nibble.Engine.Gpu;

/// <summary>
/// Loads any model directory on any backend: bf16 as is; a pack-quantized (compressed-tensors) checkpoint into
/// W4A8 / W4A16 layers — the CPU reference layers (<see cref="QuantizedModel"/>) on the CPU backend, the GPU kernels
/// (<see cref="CudaQuantizedLinearFactory"/>) on the CUDA backend. The one loader the CLI commands use.
/// </summary>
public static class QuantizedModelLoader
{
    /// <param name="scheme">Override the checkpoint's scheme (W4A16 and W4A8 checkpoints hold the same weights); null = as configured.</param>
    public static CausalLM Load(string directory, IBackend backend, QuantizationScheme? scheme = null, ScaleRecoveryMode scales = ScaleRecoveryMode.Recovered)
    {
        if (backend is not CudaBackend cuda) return QuantizedModel.Load(directory, backend, scheme, scales);
        var config = ModelConfig.Load(directory);
        if (config.QuantizationConfig is null)
        {
            if (scheme is not null) throw new NibbleException($"'{directory}' is not quantized (no quantization_config); quantize it with nibble quantize first.");
            return CausalLM.Load(directory, backend);
        }
        if (scales != ScaleRecoveryMode.Recovered)
            throw new NibbleException($"The GPU W4A8 kernels use recovered FP8 group scales only (asked for {scales}); use --device cpu for other scale modes.");
        var effective = scheme ?? CompressedTensorsCheckpoint.ReadQuantization(directory).Scheme;
        return CausalLM.Load(directory, backend, new ModelLoadOptions
        {
            LinearFactory = (_, checkpoint, _) => new CudaQuantizedLinearFactory(cuda, checkpoint, effective),
        });
    }
}
