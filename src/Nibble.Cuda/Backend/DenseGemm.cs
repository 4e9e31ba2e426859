using Nibble.Cuda.Native;

namespace Nibble.Cuda.Backend;

/// <summary>
/// cuBLASLt for the unquantized linears of <see cref="CudaBackend"/>: D[M, N] (row-major F32) = X[M, K] · W[N, K]ᵀ with
/// W and X both BF16 (tensor cores, FP32 accumulation) or both F32 (CUBLAS_COMPUTE_32F: true FP32, no TF32), FP32
/// output. Row-major D is column-major Dᵀ = W·Xᵀ: the "TN" form, A = W transposed, B = X (as in <see cref="CublasLt"/>,
/// whose handle is private to it, hence this small twin with F32 output). Plans are cached per (type, M, N, K).
/// </summary>
internal sealed class DenseGemm : IDisposable
{
    const long WorkspaceBytes = 32L << 20;
    readonly CudaContext _context;
    IntPtr _handle;
    readonly DeviceBlock _workspace;
    readonly Dictionary<(bool Bf16, int M, int N, int K), Plan> _plans = new();

    sealed class Plan : IDisposable
    {
        public IntPtr Desc, A, B, D;
        public CublasLtApi.HeuristicResult Algo;
        public void Dispose()
        {
            if (Desc != IntPtr.Zero) CublasLtApi.cublasLtMatmulDescDestroy(Desc);
            foreach (var l in new[] { A, B, D }) if (l != IntPtr.Zero) CublasLtApi.cublasLtMatrixLayoutDestroy(l);
        }
    }

    public DenseGemm(CudaContext context, DeviceMemoryPool pool)
    {
        _context = context;
        NativeLibraries.EnsureResolver();
        context.Bind();
        try { CudaException.CheckBlas(CublasLtApi.cublasLtCreate(out _handle), "cublasLtCreate"); }
        catch (DllNotFoundException) { throw new NibbleException("cuBLASLt (libcublasLt.so.13 or .so.12) was not found; install the CUDA toolkit's cuBLAS or set CUDA_HOME."); }
        _workspace = pool.Rent(WorkspaceBytes, transient: false);
    }

    /// <summary>d = x · wᵀ over device pointers; <paramref name="bf16"/> selects BF16 operands, else F32.</summary>
    public unsafe void Run(CudaStream stream, bool bf16, ulong x, ulong w, ulong d, int m, int n, int k)
    {
        var plan = GetPlan(bf16, m, n, k);
        _context.Bind();
        float alpha = 1f, beta = 0f;
        var algo = plan.Algo;
        CudaException.CheckBlas(CublasLtApi.cublasLtMatmul(_handle, plan.Desc, &alpha, w, plan.A, x, plan.B, &beta, d, plan.D, d, plan.D,
            algo.Algo, _workspace.Pointer, (nuint)WorkspaceBytes, stream.Handle), "cublasLtMatmul");
    }

    unsafe Plan GetPlan(bool bf16, int m, int n, int k)
    {
        if (_plans.TryGetValue((bf16, m, n, k), out var cached)) return cached;
        _context.Bind();
        var plan = new Plan();
        int inType = bf16 ? CublasLtApi.R16BF : CublasLtApi.R32F;
        CudaException.CheckBlas(CublasLtApi.cublasLtMatmulDescCreate(out plan.Desc, CublasLtApi.Compute32F, CublasLtApi.R32F), "cublasLtMatmulDescCreate");
        int opT = CublasLtApi.OpT, opN = CublasLtApi.OpN;
        CudaException.CheckBlas(CublasLtApi.cublasLtMatmulDescSetAttribute(plan.Desc, CublasLtApi.DescTransA, &opT, 4), "set TRANSA");
        CudaException.CheckBlas(CublasLtApi.cublasLtMatmulDescSetAttribute(plan.Desc, CublasLtApi.DescTransB, &opN, 4), "set TRANSB");
        CudaException.CheckBlas(CublasLtApi.cublasLtMatrixLayoutCreate(out plan.A, inType, (ulong)k, (ulong)n, k), "layout A");
        CudaException.CheckBlas(CublasLtApi.cublasLtMatrixLayoutCreate(out plan.B, inType, (ulong)k, (ulong)m, k), "layout B");
        CudaException.CheckBlas(CublasLtApi.cublasLtMatrixLayoutCreate(out plan.D, CublasLtApi.R32F, (ulong)n, (ulong)m, n), "layout C/D");
        CudaException.CheckBlas(CublasLtApi.cublasLtMatmulPreferenceCreate(out var pref), "cublasLtMatmulPreferenceCreate");
        try
        {
            ulong ws = (ulong)WorkspaceBytes;
            CublasLtApi.cublasLtMatmulPreferenceSetAttribute(pref, CublasLtApi.PrefMaxWorkspaceBytes, &ws, 8);
            CublasLtApi.HeuristicResult result;
            int status = CublasLtApi.cublasLtMatmulAlgoGetHeuristic(_handle, plan.Desc, plan.A, plan.B, plan.D, plan.D, pref, 1, &result, out var count);
            if (status != 0 || count == 0)
            {
                plan.Dispose();
                throw new NibbleException($"cuBLASLt has no {(bf16 ? "BF16" : "F32")} algorithm for M={m}, N={n}, K={k}; use the CPU backend for this model.");
            }
            plan.Algo = result;
        }
        finally { CublasLtApi.cublasLtMatmulPreferenceDestroy(pref); }
        _plans[(bf16, m, n, k)] = plan;
        return plan;
    }

    public void Dispose()
    {
        foreach (var p in _plans.Values) p.Dispose();
        _plans.Clear();
        if (_handle != IntPtr.Zero) { _context.Bind(); CublasLtApi.cublasLtDestroy(_handle); _handle = IntPtr.Zero; }
        _workspace.Dispose();
    }
}
