using System.Runtime.InteropServices;

namespace Nibble.Cuda.Native;

/// <summary>NVRTC (runtime compilation of CUDA C++ to cubin). All return nvrtcResult (0 = success).</summary>
static partial class Nvrtc
{
    const string Lib = NativeLibraries.Nvrtc;

    [LibraryImport(Lib)] public static partial int nvrtcVersion(out int major, out int minor);
    [LibraryImport(Lib)] public static partial IntPtr nvrtcGetErrorString(int result);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static unsafe partial int nvrtcCreateProgram(out IntPtr prog, string src, string name, int numHeaders, byte** headers, byte** includeNames);
    [LibraryImport(Lib)] public static partial int nvrtcDestroyProgram(ref IntPtr prog);
    [LibraryImport(Lib)] public static unsafe partial int nvrtcCompileProgram(IntPtr prog, int numOptions, byte** options);
    [LibraryImport(Lib)] public static partial int nvrtcGetProgramLogSize(IntPtr prog, out nuint size);
    [LibraryImport(Lib)] public static unsafe partial int nvrtcGetProgramLog(IntPtr prog, byte* log);
    [LibraryImport(Lib)] public static partial int nvrtcGetCUBINSize(IntPtr prog, out nuint size);
    [LibraryImport(Lib)] public static unsafe partial int nvrtcGetCUBIN(IntPtr prog, byte* cubin);
}
