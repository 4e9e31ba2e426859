#!/usr/bin/env python3
"""PyTorch yardstick for the `baselines` bench suite (run on the GPU machine only; never a product dependency).

Times cuBLAS BF16 `x @ w.t()` and row-wise FP8 `torch._scaled_mm` (with and without fast accumulation) at the shapes of
the table in docs/gpu-workflow.md, the same way BaselinesSuite times cuBLASLt from C#: CUDA events around each call,
median of --iters after 3 warm-ups, weights rotated over copies totalling >= 128 MB. Writes JSON for
`Nibble.Bench baselines --torch <file>`.
"""
import argparse, json, statistics
import torch

SHAPES = [(1, 28672, 8192), (16, 28672, 8192), (256, 28672, 8192), (8192, 28672, 8192),
          (1, 4096, 4096), (4096, 4096, 4096), (1, 12288, 12288), (8192, 12288, 12288)]


def median_us(fn, iters):
    for i in range(3):
        fn(i)
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    for i in range(iters):
        starts[i].record()
        fn(i + 3)
        ends[i].record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) * 1000.0 for s, e in zip(starts, ends))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--iters", type=int, default=50)
    args = ap.parse_args()
    dev = torch.device("cuda")
    rows = []
    for m, n, k in SHAPES:
        copies = max(1, (128 << 20) // (n * k * 2) + 1)
        x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        ws = [torch.randn(n, k, device=dev, dtype=torch.bfloat16) * 0.02 for _ in range(copies)]
        t = median_us(lambda i: x @ ws[i % copies].t(), args.iters)
        rows.append({"kind": "bf16", "m": m, "n": n, "k": k, "us": t})
        # Row-wise FP8: per-token scales [M, 1] and per-channel scales [1, N], as vLLM's W8A8 path calls it.
        sx = (x.float().abs().amax(dim=1, keepdim=True) / 448.0).clamp(min=1e-12)
        x8 = (x.float() / sx).to(torch.float8_e4m3fn)
        w8s, sws = [], []
        for w in ws:
            s = (w.float().abs().amax(dim=1, keepdim=True) / 448.0).clamp(min=1e-12)
            w8s.append((w.float() / s).to(torch.float8_e4m3fn))
            sws.append(s.t().contiguous())
        del ws
        for fast in (False, True):
            t = median_us(lambda i: torch._scaled_mm(x8, w8s[i % copies].t(), scale_a=sx, scale_b=sws[i % copies],
                                                     out_dtype=torch.bfloat16, use_fast_accum=fast), args.iters)
            rows.append({"kind": "fp8 rowwise fast-accum" if fast else "fp8 rowwise", "m": m, "n": n, "k": k, "us": t})
        for r in rows[-3:]:
            print(f"torch {r['kind']:<24} {m}x{n}x{k}: {r['us']:.1f} us ({2.0 * m * n * k / (r['us'] * 1e6):.0f} TFLOP/s)", flush=True)
        del w8s, sws, x8, x
        torch.cuda.empty_cache()
    with open(args.out, "w") as f:
        json.dump({"card": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
