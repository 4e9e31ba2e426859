#!/usr/bin/env python3
# Usage: python3 bench/nvrtc_check.py src/Nibble.Cuda/Kernels Attention.cu ... (needs libnvrtc.so.11.2: apt-get install libnvrtc11.2 from non-free)
# Local compile check of Nibble's kernels with Debian's NVRTC 11.8 (PTX only, no GPU): catches syntax/template errors.
import ctypes, sys, re, os
lib = ctypes.CDLL("libnvrtc.so.11.2")
kdir = sys.argv[1]

def splice(text, seen):
    # Like KernelCache.SpliceIncludes: every #include "X.cuh" is replaced by the header's text, once per header.
    def one(m):
        h = m.group(1)
        if h in seen: return ""
        seen.add(h)
        return splice(open(os.path.join(kdir, h), encoding="utf-8").read(), seen)
    return re.sub(r'^\s*#include "([^"]+\.cuh)"\s*$', one, text, flags=re.M)

for name in sys.argv[2:]:
    src = splice(open(os.path.join(kdir, name), encoding="utf-8").read(), set())
    prog = ctypes.c_void_p()
    r = lib.nvrtcCreateProgram(ctypes.byref(prog), src.encode(), name.encode(), 0, None, None)
    opts = [b"--gpu-architecture=compute_90", b"--std=c++17", b"-default-device"]
    opts += [("-D" + d).encode() for d in os.environ.get("NVRTC_DEFINES", "").split()]  # e.g. NVRTC_DEFINES="W4A8_WS_GROUP=2"
    arr = (ctypes.c_char_p * len(opts))(*opts)
    r = lib.nvrtcCompileProgram(prog, len(opts), arr)
    n = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
    log = ctypes.create_string_buffer(n.value)
    lib.nvrtcGetProgramLog(prog, log)
    print(f"{name}: {'OK' if r == 0 else 'FAILED'}")
    if log.value.strip(): print(log.value.decode()[:3000])
