# Same-run yardstick for the W4A16 decode path: PyTorch's int4 weight-only GEMM (torch.ops.aten._weight_int4pack_mm:
# bf16 activations, int4 weights with bf16 scale+zero per group of 128) at small M. Timed like `Nibble.Bench gemm`:
# CUDA events, median, weights rotated over enough copies to exceed 2x L2 ("cold"), plus one buffer reused ("warm",
# as the gpu-workflow.md table seems to have been). Not a product dependency: run it on the GPU machine beside the
# bench. Usage: python3 bench/torch_int4_decode.py OUT_JSON N:K[,N:K...] M[,M...]
import json
import statistics
import sys

import torch


def pack(n, k, dev):
    codes = torch.randint(0, 16, (n, k), dtype=torch.int32, device=dev)
    u8 = ((codes[:, ::2] << 4) | codes[:, 1::2]).to(torch.uint8)  # [N, K/2], two codes per byte
    return torch.ops.aten._convert_weight_to_int4pack(u8, 8)


def time_us(fn, iters):
    for _ in range(3):
        fn(0)
    ts = []
    for i in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn(i + 3)
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) * 1000.0)
    return statistics.median(ts)


def main():
    out, shapes, ms = sys.argv[1], sys.argv[2], sys.argv[3]
    shapes = [tuple(int(v) for v in s.split(":")) for s in shapes.split(",")]
    ms = [int(v) for v in ms.split(",")]
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    l2 = props.L2_cache_size
    rows = []
    print(f"# torch {torch.__version__}, {props.name}, L2 {l2 >> 20} MB: _weight_int4pack_mm, group 128")
    for n, k in shapes:
        weight_bytes = n * k // 2 + n * (k // 128) * 4
        copies = max(1, min(16, (2 * l2 + weight_bytes - 1) // weight_bytes + 1))
        ws = [pack(n, k, dev) for _ in range(copies)]
        sz = [torch.rand(k // 128, n, 2, dtype=torch.bfloat16, device=dev) * 0.02 for _ in range(copies)]
        for m in ms:
            x = torch.randn(m, k, dtype=torch.bfloat16, device=dev)
            cold = time_us(lambda i: torch.ops.aten._weight_int4pack_mm(x, ws[i % copies], 128, sz[i % copies]), 50)
            warm = time_us(lambda i: torch.ops.aten._weight_int4pack_mm(x, ws[0], 128, sz[0]), 50)
            rows.append({"M": m, "N": n, "K": k, "cold_us": cold, "warm_us": warm, "weight_GBps_cold": weight_bytes / (cold * 1e3)})
            print(f"M={m:3d} N={n:6d} K={k:6d}  torch int4 cold {cold:8.1f} us ({weight_bytes / (cold * 1e3):5.0f} GB/s)  warm {warm:8.1f} us")
        del ws, sz
        torch.cuda.empty_cache()
    with open(out, "w") as f:
        json.dump({"suite": "torch_int4_decode", "card": props.name, "torch": torch.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
