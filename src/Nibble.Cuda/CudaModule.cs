using Nibble.Cuda.Native;

namespace Nibble.Cuda;

/// <summary>A loaded cubin and its kernels. Kernels take one blittable parameter struct (mirrored in the .cu).</summary>
public sealed class CudaModule : IDisposable
{
    readonly CudaContext context;
    IntPtr module;
    readonly Dictionary<string, CudaFunction> functions = new();

    public unsafe CudaModule(CudaContext context, byte[] cubin)
    {
        this.context = context;
        context.Bind();
        fixed (byte* p = cubin)
            CudaException.Check(Driver.cuModuleLoadData(out module, p), "cuModuleLoadData");
    }

    public CudaFunction Function(string name)
    {
        lock (functions)
        {
            if (functions.TryGetValue(name, out var f)) return f;
            context.Bind();
            CudaException.Check(Driver.cuModuleGetFunction(out var h, module, name), $"cuModuleGetFunction({name})");
            f = new CudaFunction(context, h, name);
            functions[name] = f;
            return f;
        }
    }

    public void Dispose()
    {
        if (module == IntPtr.Zero) return;
        try { context.Bind(); Driver.cuModuleUnload(module); } catch (ObjectDisposedException) { }
        module = IntPtr.Zero;
    }
}

public sealed class CudaFunction
{
    readonly CudaContext context;
    public IntPtr Handle { get; }
    public string Name { get; }
    int dynamicSharedLimit = 32 * 1024;

    internal CudaFunction(CudaContext context, IntPtr handle, string name) { this.context = context; Handle = handle; Name = name; }

    public int Registers => Attr(Driver.FuncAttrNumRegs);
    public int LocalBytes => Attr(Driver.FuncAttrLocalBytes);
    public int StaticSharedBytes => Attr(Driver.FuncAttrSharedBytes);

    /// <summary>Resident CTAs per SM for this block size and dynamic shared memory (driver occupancy calculator).</summary>
    public int MaxActiveBlocksPerSm(int blockSize, int dynamicSharedBytes)
    {
        context.Bind();
        if (dynamicSharedBytes > 48 * 1024)
            CudaException.Check(Driver.cuFuncSetAttribute(Handle, Driver.FuncAttrMaxDynamicShared, dynamicSharedBytes), $"cuFuncSetAttribute({Name})");
        CudaException.Check(Driver.cuOccupancyMaxActiveBlocksPerMultiprocessor(out var n, Handle, blockSize, (nuint)dynamicSharedBytes), $"cuOccupancyMaxActiveBlocksPerMultiprocessor({Name})");
        return n;
    }

    int Attr(int a)
    {
        CudaException.Check(Driver.cuFuncGetAttribute(out var v, a, Handle), $"cuFuncGetAttribute({Name})");
        return v;
    }

    /// <summary>Launches with one by-value parameter struct; raises the dynamic shared-memory limit when above 48 KB.</summary>
    public unsafe void Launch<TParams>(CudaStream stream, (uint X, uint Y, uint Z) grid, uint block, in TParams parameters, uint sharedBytes = 0)
        where TParams : unmanaged
    {
        context.Bind();
        // Static __shared__ variables count toward the 48 KB default too, so opt in well before it.
        if (sharedBytes > 32 * 1024 && sharedBytes > dynamicSharedLimit - 1024)
        {
            CudaException.Check(Driver.cuFuncSetAttribute(Handle, Driver.FuncAttrMaxDynamicShared, (int)sharedBytes), $"cuFuncSetAttribute({Name}, max dynamic smem {sharedBytes})");
            dynamicSharedLimit = (int)sharedBytes + 1024;
        }
        var copy = parameters;
        void* argPtr = &copy;
        void** args = &argPtr;
        CudaException.Check(Driver.cuLaunchKernel(Handle, grid.X, grid.Y, grid.Z, block, 1, 1, sharedBytes, stream.Handle, args, null),
            $"cuLaunchKernel({Name}, grid {grid.X}x{grid.Y}x{grid.Z}, block {block})");
    }
}
