using Nibble.Cuda.Native;

namespace Nibble.Cuda;

/// <summary>
/// cuBLASLt matmuls used as baselines and for unquantized layers: Y[M,N] (row-major bf16) = X[M,K] · W[N,K]^T.
/// Row-major Y is column-major Y^T = W·X^T, i.e. the "TN" form (A = W transposed, B = X) that FP8 requires.
/// FP8 uses per-channel (A) × per-token (B) FP32 outer-vector scales (CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F,
/// CUDA 12.9+); where the library has no such algorithm it falls back to per-tensor scales and says so in
/// <see cref="Fp8ScaleMode"/>.
/// </summary>
public sealed class CublasLt : IDisposable
{
    const long WorkspaceBytes = 32L << 20;
    readonly CudaContext context;
    IntPtr handle;
    readonly DeviceBuffer<byte> workspace;
    readonly DeviceBuffer<float> ones;
    readonly Dictionary<(bool Fp8, int M, int N, int K), Plan> plans = new();

    public string Fp8ScaleMode { get; private set; } = "not run";
    public string Version { get; }

    sealed class Plan : IDisposable
    {
        public IntPtr Desc, A, B, C;
        public CublasLtApi.HeuristicResult Algo;
        public bool OuterVec;
        public void Dispose()
        {
            if (Desc != IntPtr.Zero) CublasLtApi.cublasLtMatmulDescDestroy(Desc);
            foreach (var l in new[] { A, B, C }) if (l != IntPtr.Zero) CublasLtApi.cublasLtMatrixLayoutDestroy(l);
        }
    }

    public CublasLt(CudaContext context)
    {
        this.context = context;
        NativeLibraries.EnsureResolver();
        context.Bind();
        try { CudaException.CheckBlas(CublasLtApi.cublasLtCreate(out handle), "cublasLtCreate"); }
        catch (DllNotFoundException) { throw new NibbleException("cuBLASLt (libcublasLt.so.13 or .so.12) was not found; install the CUDA toolkit's cuBLAS or set CUDA_HOME."); }
        Version = CublasLtApi.cublasLtGetVersion().ToString();
        workspace = new DeviceBuffer<byte>(context, WorkspaceBytes);
        ones = DeviceBuffer<float>.From(context, [1f, 1f]);
    }

    public void Bf16(CudaStream stream, DeviceBuffer<ushort> x, DeviceBuffer<ushort> w, DeviceBuffer<ushort> y, int m, int n, int k)
    {
        var plan = GetPlan(false, m, n, k);
        Matmul(stream, plan, w.Pointer, x.Pointer, y.Pointer);
    }

    /// <summary>Y = bf16(channelScale[n] · tokenScale[m] · Σ x8·w8). Returns false if only per-tensor scaling is available (then scales are 1).</summary>
    public bool Fp8(CudaStream stream, DeviceBuffer<byte> x8, DeviceBuffer<byte> w8, DeviceBuffer<float> tokenScale, DeviceBuffer<float> channelScale,
        DeviceBuffer<ushort> y, int m, int n, int k)
    {
        var plan = GetPlan(true, m, n, k);
        unsafe
        {
            ulong a = plan.OuterVec ? channelScale.Pointer : ones.Pointer, b = plan.OuterVec ? tokenScale.Pointer : ones.Pointer;
            CudaException.CheckBlas(CublasLtApi.cublasLtMatmulDescSetAttribute(plan.Desc, CublasLtApi.DescAScalePointer, &a, 8), "set A scale pointer");
            CudaException.CheckBlas(CublasLtApi.cublasLtMatmulDescSetAttribute(plan.Desc, CublasLtApi.DescBScalePointer, &b, 8), "set B scale pointer");
        }
        Matmul(stream, plan, w8.Pointer, x8.Pointer, y.Pointer);
        return plan.OuterVec;
    }

    unsafe void Matmul(CudaStream stream, Plan plan, ulong a, ulong b, ulong d)
    {
        context.Bind();
        float alpha = 1f, beta = 0f;
        var algo = plan.Algo;
        CudaException.CheckBlas(CublasLtApi.cublasLtMatmul(handle, plan.Desc, &alpha, a, plan.A, b, plan.B, &beta, d, plan.C, d, plan.C,
            algo.Algo, workspace.Pointer, (nuint)WorkspaceBytes, stream.Handle), "cublasLtMatmul");
    }

    Plan GetPlan(bool fp8, int m, int n, int k)
    {
        if (plans.TryGetValue((fp8, m, n, k), out var p)) return p;
        context.Bind();
        if (!fp8) p = TryPlan(false, m, n, k, outerVec: false, fastAccum: false) ?? throw new NibbleException($"cuBLASLt has no BF16 algorithm for M={m}, N={n}, K={k}.");
        else
        {
            p = TryPlan(true, m, n, k, outerVec: true, fastAccum: true) ?? TryPlan(true, m, n, k, outerVec: true, fastAccum: false)
                ?? TryPlan(true, m, n, k, outerVec: false, fastAccum: true)
                ?? throw new NibbleException($"cuBLASLt has no FP8 algorithm for M={m}, N={n}, K={k}; FP8 needs K and N multiples of 16.");
            Fp8ScaleMode = p.OuterVec ? "outer-vector (per-token x per-channel FP32)" : "per-tensor (outer-vector unsupported by this cuBLASLt)";
        }
        plans[(fp8, m, n, k)] = p;
        return p;
    }

    unsafe Plan? TryPlan(bool fp8, int m, int n, int k, bool outerVec, bool fastAccum)
    {
        var plan = new Plan();
        int inType = fp8 ? CublasLtApi.R8FE4M3 : CublasLtApi.R16BF;
        CudaException.CheckBlas(CublasLtApi.cublasLtMatmulDescCreate(out plan.Desc, CublasLtApi.Compute32F, CublasLtApi.R32F), "cublasLtMatmulDescCreate");
        int opT = CublasLtApi.OpT, opN = CublasLtApi.OpN;
        CudaException.CheckBlas(CublasLtApi.cublasLtMatmulDescSetAttribute(plan.Desc, CublasLtApi.DescTransA, &opT, 4), "set TRANSA");
        CudaException.CheckBlas(CublasLtApi.cublasLtMatmulDescSetAttribute(plan.Desc, CublasLtApi.DescTransB, &opN, 4), "set TRANSB");
        if (fp8)
        {
            int mode = outerVec ? CublasLtApi.ScaleOuterVec32F : CublasLtApi.ScaleScalar32F;
            if (outerVec)
            {
                if (CublasLtApi.cublasLtMatmulDescSetAttribute(plan.Desc, CublasLtApi.DescAScaleMode, &mode, 4) != 0
                    || CublasLtApi.cublasLtMatmulDescSetAttribute(plan.Desc, CublasLtApi.DescBScaleMode, &mode, 4) != 0)
                { plan.Dispose(); return null; }
            }
            sbyte fast = (sbyte)(fastAccum ? 1 : 0);
            CublasLtApi.cublasLtMatmulDescSetAttribute(plan.Desc, CublasLtApi.DescFastAccum, &fast, 1);
            ulong one = ones.Pointer;
            CublasLtApi.cublasLtMatmulDescSetAttribute(plan.Desc, CublasLtApi.DescAScalePointer, &one, 8);
            CublasLtApi.cublasLtMatmulDescSetAttribute(plan.Desc, CublasLtApi.DescBScalePointer, &one, 8);
        }
        CudaException.CheckBlas(CublasLtApi.cublasLtMatrixLayoutCreate(out plan.A, inType, (ulong)k, (ulong)n, k), "layout A");
        CudaException.CheckBlas(CublasLtApi.cublasLtMatrixLayoutCreate(out plan.B, inType, (ulong)k, (ulong)m, k), "layout B");
        CudaException.CheckBlas(CublasLtApi.cublasLtMatrixLayoutCreate(out plan.C, CublasLtApi.R16BF, (ulong)n, (ulong)m, n), "layout C/D");
        CudaException.CheckBlas(CublasLtApi.cublasLtMatmulPreferenceCreate(out var pref), "cublasLtMatmulPreferenceCreate");
        try
        {
            ulong ws = (ulong)WorkspaceBytes;
            CublasLtApi.cublasLtMatmulPreferenceSetAttribute(pref, CublasLtApi.PrefMaxWorkspaceBytes, &ws, 8);
            CublasLtApi.HeuristicResult result;
            int status = CublasLtApi.cublasLtMatmulAlgoGetHeuristic(handle, plan.Desc, plan.A, plan.B, plan.C, plan.C, pref, 1, &result, out var count);
            if (status != 0 || count == 0) { plan.Dispose(); return null; }
            plan.Algo = result;
            plan.OuterVec = fp8 && outerVec;
            return plan;
        }
        finally { CublasLtApi.cublasLtMatmulPreferenceDestroy(pref); }
    }

    public void Dispose()
    {
        foreach (var p in plans.Values) p.Dispose();
        plans.Clear();
        if (handle != IntPtr.Zero) { context.Bind(); CublasLtApi.cublasLtDestroy(handle); handle = IntPtr.Zero; }
        workspace.Dispose();
        ones.Dispose();
    }
}
