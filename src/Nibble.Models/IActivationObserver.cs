using Nibble.Backend;

namespace Nibble.Models;

/// <summary>
/// Sees the input of every linear layer before it runs (for AWQ / calibration statistics).
/// <paramref name="tokenIndices"/> maps each input row to its token in the current forward call
/// (the identity for dense layers; the routed tokens for an expert), so an observer can apply a
/// per-token mask such as <c>CalibrationMask</c>.
/// </summary>
public interface IActivationObserver
{
    void Observe(string linearName, Tensor input, ReadOnlySpan<int> tokenIndices);
}
