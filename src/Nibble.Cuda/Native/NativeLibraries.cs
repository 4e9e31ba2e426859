using System.Reflection;
using System.Runtime.InteropServices;

namespace Nibble.Cuda.Native;

/// <summary>
/// Resolves the logical library names used by the [LibraryImport] declarations to the sonames that exist on this
/// machine. NVRTC and cuBLASLt carry the CUDA major version in their soname (libnvrtc.so.13 on CUDA 13, .so.12 on
/// CUDA 12), so a fixed name would break on the other toolkit; the driver is always libcuda.so.1.
/// </summary>
static class NativeLibraries
{
    public const string Driver = "nibble_cuda";
    public const string Nvrtc = "nibble_nvrtc";
    public const string CublasLt = "nibble_cublaslt";

    static readonly string[] DriverNames = ["libcuda.so.1", "libcuda.so"];
    static readonly string[] NvrtcNames = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"];
    static readonly string[] CublasLtNames = ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"];
    static readonly Dictionary<string, IntPtr> Loaded = new();
    static int registered;

    public static void EnsureResolver()
    {
        if (Interlocked.Exchange(ref registered, 1) == 0)
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
    }

    static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        string[]? candidates = name switch { Driver => DriverNames, Nvrtc => NvrtcNames, CublasLt => CublasLtNames, _ => null };
        if (candidates is null) return IntPtr.Zero;
        lock (Loaded)
        {
            if (Loaded.TryGetValue(name, out var cached)) return cached;
            var handle = TryLoadAny(candidates, out _);
            if (handle != IntPtr.Zero) Loaded[name] = handle;
            return handle;
        }
    }

    /// <summary>Tries the sonames in order, then the same names under CUDA_HOME/CUDA_PATH/usr/local/cuda lib64.</summary>
    public static IntPtr TryLoadAny(string[] names, out string? loadedName)
    {
        foreach (var n in names)
            if (NativeLibrary.TryLoad(n, out var h)) { loadedName = n; return h; }
        foreach (var home in CudaHomes())
            foreach (var n in names)
            {
                var p = Path.Combine(home, "lib64", n);
                if (File.Exists(p) && NativeLibrary.TryLoad(p, out var h)) { loadedName = p; return h; }
            }
        loadedName = null;
        return IntPtr.Zero;
    }

    public static IEnumerable<string> CudaHomes()
    {
        foreach (var v in new[] { "CUDA_HOME", "CUDA_PATH" })
            if (Environment.GetEnvironmentVariable(v) is { Length: > 0 } p) yield return p;
        yield return "/usr/local/cuda";
    }

    public static bool DriverPresent() => TryLoadAny(DriverNames, out _) != IntPtr.Zero;
    public static string? NvrtcPath() { TryLoadAny(NvrtcNames, out var n); return n; }
    public static string? CublasLtPath() { TryLoadAny(CublasLtNames, out var n); return n; }
}
