#!/usr/bin/env python3
"""PyTorch's side of `npm run bench:gpu`, a worker that bench/gpu.ts starts once (bench/torchWorker.ts).

It first prints one line of JSON {"device", "torch"} (or {"error"}), then answers each request line on stdin (a
case of bench/gpu.ts, JSON) with one line of JSON: {variant: seconds per call, or null where the variant is
unavailable}, or {"error": why} where the case failed. One case a request lets bench/gpu.ts time PyTorch and
selfe on a row back to back, alternating which goes first, instead of all of PyTorch's rows and then all of
selfe's minutes later. Same protocol as selfe's side: random inputs (never zeros), enough input sets to rotate
through more memory than the L2 cache holds, warm-up, then the best of 3 rounds of back-to-back calls between
two synchronizes.

With --smoke (bench:gpu --smoke) on a machine without CUDA it runs on the CPU, to check the script end to end;
its times then mean nothing.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

L2_BYTES = 64 << 20
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def synchronize():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def dtype_of(name):
    return {"bf16": torch.bfloat16, "f32": torch.float32}[name]


def sets_for(bytes_per_set):
    return max(2, min(16, -(-2 * L2_BYTES // max(1, bytes_per_set))))


def timed(run, sets, reps):
    for i in range(3):
        run(i % sets)
    synchronize()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i in range(reps):
            run(i % sets)
        synchronize()
        best = min(best, (time.perf_counter() - start) / reps)
    return best


def gemm(case):
    m, k, n, dtype = case["m"], case["k"], case["n"], dtype_of(case["dtype"])
    per_set = (m * k + n * k) * (2 if dtype == torch.bfloat16 else 4)
    sets = sets_for(per_set)
    xs = [torch.randn(m, k, device=DEVICE, dtype=dtype) for _ in range(sets)]
    ws = [torch.randn(n, k, device=DEVICE, dtype=dtype) * k**-0.5 for _ in range(sets)]
    bs = [torch.randn(n, device=DEVICE, dtype=dtype) for _ in range(sets)]
    if case.get("gelu"):
        run = lambda i: F.gelu(F.linear(xs[i], ws[i], bs[i]), approximate="tanh")
    else:
        run = lambda i: F.linear(xs[i], ws[i], bs[i])
    return {"torch": timed(run, sets, case["reps"])}


def attention(case):
    b, l, h, d, dtype = case["batch"], case["length"], case["heads"], case["headDim"], dtype_of(case["dtype"])
    per_set = 4 * b * l * h * d * 2
    sets = sets_for(per_set)
    # selfe's layout [B, L, H, D], seen by torch as [B, H, L, D] (a transposed view, no copy).
    make = lambda: torch.randn(b, l, h, d, device=DEVICE, dtype=dtype).transpose(1, 2)
    qs = [make().requires_grad_(case["backward"]) for _ in range(sets)]
    ks = [make().requires_grad_(case["backward"]) for _ in range(sets)]
    vs = [make().requires_grad_(case["backward"]) for _ in range(sets)]
    dos = [make() for _ in range(sets)]
    results = {}
    from torch.nn.attention import SDPBackend, sdpa_kernel

    for name, backend in (("torch flash", SDPBackend.FLASH_ATTENTION), ("torch cuDNN", SDPBackend.CUDNN_ATTENTION)):
        def run(i):
            out = F.scaled_dot_product_attention(qs[i], ks[i], vs[i])
            if case["backward"]:
                torch.autograd.grad(out, (qs[i], ks[i], vs[i]), dos[i])

        try:
            with sdpa_kernel(backend):
                results[name] = timed(run, sets, case["reps"])
        except RuntimeError as error:
            results[name] = None
            print(f"{name} unavailable for {case['id']}: {str(error).splitlines()[0]}", file=sys.stderr)
    return results


def layer_norm_modulate(case):
    b, l, d, dtype = case["batch"], case["length"], case["dim"], dtype_of(case["dtype"])
    sets = sets_for(b * l * d * (2 if dtype == torch.bfloat16 else 4))
    xs = [torch.randn(b, l, d, device=DEVICE, dtype=dtype) for _ in range(sets)]
    shifts = [torch.randn(b, 1, d, device=DEVICE, dtype=dtype) for _ in range(sets)]
    scales = [torch.randn(b, 1, d, device=DEVICE, dtype=dtype) for _ in range(sets)]
    run = lambda i: F.layer_norm(xs[i], (d,), eps=1e-6) * (1 + scales[i]) + shifts[i]
    return {"torch": timed(run, sets, case["reps"])}


def adamw(case):
    params = [torch.randn(shape, device=DEVICE) for shape in case["shapes"]]
    for p in params:
        p.grad = torch.randn_like(p)
    optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.01, fused=True)
    return {"torch fused": timed(lambda i: optimizer.step(), 1, case["reps"])}


def adamw_ema(case):
    """Fused AdamW alone (the reference of selfe's fused AdamW + EMA) and fused AdamW followed by the usual
    foreach EMA (ema += (1 - decay) (p - ema)), the same work in two passes."""
    params = [torch.randn(shape, device=DEVICE) for shape in case["shapes"]]
    for p in params:
        p.grad = torch.randn_like(p)
    ema = [torch.randn_like(p) for p in params]
    optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.01, fused=True)
    weight = 1.0 - case["emaDecay"]

    def step_and_ema(i):
        optimizer.step()
        torch._foreach_lerp_(ema, params, weight)

    return {
        "torch fused": timed(lambda i: optimizer.step(), 1, case["reps"]),
        "torch fused + foreach EMA": timed(step_and_ema, 1, case["reps"]),
    }


KINDS = {"gemm": gemm, "attention": attention, "layerNormModulate": layer_norm_modulate, "adamw": adamw, "adamwEma": adamw_ema}


def answer(message):
    print(json.dumps(message), flush=True)


def main():
    if DEVICE != "cuda" and "--smoke" not in sys.argv:
        answer({"error": f"torch {torch.__version__} sees no CUDA device"})
        return 1
    name = torch.cuda.get_device_name() if DEVICE == "cuda" else "CPU (smoke run)"
    answer({"device": name, "torch": torch.__version__})
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        # A case that fails (an unsupported variant, out of memory) is reported and the worker goes on.
        try:
            answer(KINDS[case["kind"]](case))
        except Exception as error:  # noqa: BLE001 - any failure is this row's, reported to bench/gpu.ts
            answer({"error": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"})
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
