using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Nibble.Cuda.Native;
using Nibble.Formats;

namespace Nibble.Cuda;

/// <summary>
/// Compiles the embedded Kernels/*.cu with NVRTC for the device's architecture and caches the cubin on disk
/// (default ~/.cache/nibble/kernels, or $NIBBLE_KERNEL_CACHE), keyed by SHA-256 of source + options + arch +
/// NVRTC version, so a second start loads in milliseconds. Modules are also kept per context in memory.
/// </summary>
public sealed class KernelCache : IDisposable
{
    readonly CudaContext context;
    readonly Dictionary<string, CudaModule> modules = new();
    public string Directory { get; }

    /// <summary>Timing of the last <see cref="Load"/>: whether it came from disk and how long it took.</summary>
    public record LoadInfo(string Kernel, bool FromDisk, double Milliseconds, string Key);
    public List<LoadInfo> Loads { get; } = new();

    public KernelCache(CudaContext context, string? directory = null)
    {
        this.context = context;
        Directory = directory ?? DefaultDirectory();
    }

    public static string DefaultDirectory()
    {
        if (Environment.GetEnvironmentVariable("NIBBLE_KERNEL_CACHE") is { Length: > 0 } d) return d;
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var root = xdg is { Length: > 0 } ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "nibble", "kernels");
    }

    /// <summary>The source text of an embedded kernel, e.g. "W4A8Gemm.cu".</summary>
    public static string Source(string fileName)
    {
        var asm = typeof(KernelCache).Assembly;
        using var s = asm.GetManifestResourceStream("Nibble.Cuda.Kernels." + fileName)
            ?? throw new InvalidOperationException($"embedded kernel {fileName} is missing from Nibble.Cuda");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }

    /// <summary>The module compiled from embedded <paramref name="fileName"/>; <paramref name="hopperOnly"/> selects sm_90a.</summary>
    public CudaModule Load(string fileName, bool hopperOnly = false, params string[] defines)
    {
        var key0 = fileName + "|" + string.Join(",", defines) + "|" + hopperOnly;
        lock (modules)
        {
            if (modules.TryGetValue(key0, out var m)) return m;
            var sw = Stopwatch.StartNew();
            // NVRTC gets no include paths: the shared helpers are spliced in where the kernel includes them.
            var source = SpliceIncludes(Source(fileName));
            var arch = context.Arch + (hopperOnly && context.ComputeMajor == 9 ? "a" : "");
            // No --use_fast_math: divisions and conversions must be IEEE-exact to match the CPU references byte for byte.
            var options = new List<string> { $"--gpu-architecture={arch}", "--std=c++17", "-default-device", "-lineinfo" };
            options.AddRange(defines.Select(d => "-D" + d));
            var version = NvrtcVersion();
            var key = Hash(source + "\n" + string.Join(" ", options) + "\n" + arch + "\n" + version);
            var path = Path.Combine(Directory, $"{Path.GetFileNameWithoutExtension(fileName)}-{arch}-{key[..16]}.cubin");
            byte[] cubin;
            bool fromDisk = File.Exists(path);
            if (fromDisk) cubin = File.ReadAllBytes(path);
            else
            {
                cubin = Compile(source, fileName, options);
                try
                {
                    System.IO.Directory.CreateDirectory(Directory);
                    AtomicFile.Write(path, s => s.Write(cubin));
                }
                catch (IOException) { } // a read-only cache only costs the next start a compile
                catch (UnauthorizedAccessException) { }
            }
            m = new CudaModule(context, cubin);
            modules[key0] = m;
            Loads.Add(new LoadInfo(fileName, fromDisk, sw.Elapsed.TotalMilliseconds, key[..16]));
            return m;
        }
    }

    /// <summary>
    /// Replaces each <c>#include "X.cuh"</c> line with the embedded header X.cuh (headers may include others; each
    /// is spliced once, so a header included twice is not duplicated).
    /// </summary>
    public static string SpliceIncludes(string source)
    {
        var done = new HashSet<string>();
        string Splice(string text) => System.Text.RegularExpressions.Regex.Replace(text, "^#include \"([A-Za-z0-9_]+\\.cuh)\"[^\n]*$",
            m => done.Add(m.Groups[1].Value) ? Splice(Source(m.Groups[1].Value)) : "",
            System.Text.RegularExpressions.RegexOptions.Multiline);
        return Splice(source);
    }

    public static string NvrtcVersion()
    {
        NativeLibraries.EnsureResolver();
        try
        {
            CudaException.CheckNvrtc(Nvrtc.nvrtcVersion(out var major, out var minor), "nvrtcVersion");
            return $"{major}.{minor}";
        }
        catch (DllNotFoundException)
        {
            throw new NibbleException("NVRTC (libnvrtc.so.13 or .so.12) was not found; install the CUDA toolkit's NVRTC (e.g. the cuda-nvrtc package) or set CUDA_HOME.");
        }
    }

    static unsafe byte[] Compile(string source, string name, List<string> options)
    {
        CudaException.CheckNvrtc(Nvrtc.nvrtcCreateProgram(out var prog, source, name, 0, null, null), $"nvrtcCreateProgram({name})");
        try
        {
            var opts = options.Select(o => Marshal.StringToCoTaskMemUTF8(o)).ToArray();
            int result;
            try
            {
                fixed (IntPtr* p = opts) result = Nvrtc.nvrtcCompileProgram(prog, opts.Length, (byte**)p);
            }
            finally { foreach (var o in opts) Marshal.FreeCoTaskMem(o); }
            if (result != 0)
            {
                Nvrtc.nvrtcGetProgramLogSize(prog, out var logSize);
                var log = new byte[(int)logSize + 1];
                fixed (byte* l = log) Nvrtc.nvrtcGetProgramLog(prog, l);
                var text = Encoding.UTF8.GetString(log).TrimEnd('\0');
                throw new CudaException($"NVRTC could not compile {name} ({string.Join(" ", options)}): {text}", result);
            }
            CudaException.CheckNvrtc(Nvrtc.nvrtcGetCUBINSize(prog, out var size), "nvrtcGetCUBINSize");
            var cubin = new byte[(int)size];
            fixed (byte* c = cubin) CudaException.CheckNvrtc(Nvrtc.nvrtcGetCUBIN(prog, c), "nvrtcGetCUBIN");
            return cubin;
        }
        finally { Nvrtc.nvrtcDestroyProgram(ref prog); }
    }

    static string Hash(string s) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(s))).ToLowerInvariant();

    public void Dispose()
    {
        lock (modules) { foreach (var m in modules.Values) m.Dispose(); modules.Clear(); }
    }
}
