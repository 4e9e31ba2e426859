using System.Runtime.InteropServices;

namespace Nibble.Cuda.Native;

/// <summary>cuBLASLt entry points and the enum values Nibble needs (cublasLt.h / library_types.h, CUDA 12.9+/13).</summary>
static partial class CublasLtApi
{
    const string Lib = NativeLibraries.CublasLt;

    [LibraryImport(Lib)] public static partial int cublasLtCreate(out IntPtr handle);
    [LibraryImport(Lib)] public static partial int cublasLtDestroy(IntPtr handle);
    [LibraryImport(Lib)] public static partial nuint cublasLtGetVersion();
    [LibraryImport(Lib)] public static partial IntPtr cublasLtGetStatusName(int status);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulDescCreate(out IntPtr desc, int computeType, int scaleType);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulDescDestroy(IntPtr desc);
    [LibraryImport(Lib)] public static unsafe partial int cublasLtMatmulDescSetAttribute(IntPtr desc, int attr, void* buf, nuint size);
    [LibraryImport(Lib)] public static partial int cublasLtMatrixLayoutCreate(out IntPtr layout, int type, ulong rows, ulong cols, long ld);
    [LibraryImport(Lib)] public static partial int cublasLtMatrixLayoutDestroy(IntPtr layout);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulPreferenceCreate(out IntPtr pref);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulPreferenceDestroy(IntPtr pref);
    [LibraryImport(Lib)] public static unsafe partial int cublasLtMatmulPreferenceSetAttribute(IntPtr pref, int attr, void* buf, nuint size);
    [LibraryImport(Lib)] public static unsafe partial int cublasLtMatmulAlgoGetHeuristic(IntPtr handle, IntPtr op, IntPtr a, IntPtr b, IntPtr c, IntPtr d,
        IntPtr pref, int requested, HeuristicResult* results, out int returned);
    [LibraryImport(Lib)] public static unsafe partial int cublasLtMatmul(IntPtr handle, IntPtr op, void* alpha, ulong a, IntPtr aDesc, ulong b, IntPtr bDesc,
        void* beta, ulong c, IntPtr cDesc, ulong d, IntPtr dDesc, void* algo, ulong workspace, nuint workspaceBytes, IntPtr stream);

    /// <summary>cublasLtMatmulHeuristicResult_t: 64-byte algo, size_t workspace, status, waves, 4 reserved ints.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct HeuristicResult
    {
        public fixed ulong Algo[8];
        public nuint WorkspaceSize;
        public int State;
        public float WavesCount;
        public fixed int Reserved[4];
    }

    public const int R32F = 0, R16BF = 14, R8FE4M3 = 28;     // cudaDataType_t
    public const int Compute32F = 68;                          // cublasComputeType_t
    public const int OpN = 0, OpT = 1;                         // cublasOperation_t
    public const int DescTransA = 3, DescTransB = 4;           // cublasLtMatmulDescAttributes_t
    public const int DescAScalePointer = 17, DescBScalePointer = 18, DescFastAccum = 25;
    public const int DescAScaleMode = 31, DescBScaleMode = 32;
    public const int ScaleScalar32F = 0, ScaleOuterVec32F = 3; // cublasLtMatmulMatrixScale_t
    public const int PrefMaxWorkspaceBytes = 1;                // cublasLtMatmulPreferenceAttributes_t
}
