using System.Runtime.InteropServices;

namespace Nibble.Bench.CpuGemm;

/// <summary>OpenBLAS' cblas_sgemm, loaded at run time (Debian's libopenblas; the benchmark baseline only).</summary>
internal sealed unsafe class OpenBlas
{
    const int RowMajor = 101, NoTrans = 111, Trans = 112;

    readonly delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> _sgemm;
    readonly delegate* unmanaged<sbyte*> _config;
    readonly delegate* unmanaged<int> _threads;

    public string Library { get; }

    OpenBlas(nint handle, string library)
    {
        Library = library;
        _sgemm = (delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)NativeLibrary.GetExport(handle, "cblas_sgemm");
        _config = NativeLibrary.TryGetExport(handle, "openblas_get_config", out var c) ? (delegate* unmanaged<sbyte*>)c : null;
        _threads = NativeLibrary.TryGetExport(handle, "openblas_get_num_threads", out var t) ? (delegate* unmanaged<int>)t : null;
    }

    public static OpenBlas? TryLoad()
    {
        foreach (var name in new[] { "libopenblas.so.0", "libopenblas.so", "/usr/lib/x86_64-linux-gnu/libopenblas.so.0" })
            if (NativeLibrary.TryLoad(name, out var handle) && NativeLibrary.TryGetExport(handle, "cblas_sgemm", out _))
                return new OpenBlas(handle, name);
        return null;
    }

    public string Config => _config == null ? "?" : new string(_config());
    public int Threads => _threads == null ? -1 : _threads();

    /// <summary>C[M,N] = A[M,K] · W[N,K]ᵀ, the same product as Nibble's linear layers.</summary>
    public void MatMulTransB(float* a, float* w, float* c, int m, int n, int k) =>
        _sgemm(RowMajor, NoTrans, Trans, m, n, k, 1f, a, k, w, k, 0f, c, n);
}
