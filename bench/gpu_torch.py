#!/usr/bin/env python3
"""PyTorch's side of `npm run bench:gpu`, a worker that bench/gpu.ts starts once (bench/torchWorker.ts).

It first prints one line of JSON {"device", "torch"} (or {"error"}), then answers each request line on stdin with
one line of JSON:
  {"op": "prepare", "case": {...}}  builds the row's inputs and warms each of its variants up: {"variants": [names]}
                                    (a variant that cannot run here is left out, its reason on stderr), or {"error"}
  {"op": "round"}                   times one round of each variant of the prepared row: {variant: seconds per call}
  {"op": "release"}                 drops the row's inputs: {}
  {"op": "library", "path"?: str}   the cuBLASLt library this process loaded (or the one at "path") and its version
                                    (cublasLtGetVersion): {"path", "version"}, both null where none is loaded
Holding a row between requests lets bench/gpu.ts alternate PyTorch's rounds with selfe's round by round, so a
drift of the card's clocks (it heats under the largest GEMMs) falls on both sides alike. Same protocol as selfe's
side: random inputs (never zeros), enough input sets to rotate through more memory than the L2 cache holds, a
warm-up, then rounds of back-to-back calls between two synchronizes.

With --smoke (bench:gpu --smoke) on a machine without CUDA it runs on the CPU, to check the script end to end;
its times then mean nothing.
"""
import contextlib
import ctypes
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

L2_BYTES = 64 << 20
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
WARMUP_CALLS = 3


def synchronize():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def dtype_of(name):
    return {"bf16": torch.bfloat16, "f32": torch.float32}[name]


def sets_for(bytes_per_set):
    return max(2, min(16, -(-2 * L2_BYTES // max(1, bytes_per_set))))


class Variant:
    """One of a row's PyTorch variants: run(i) on input set i, inside `context` (an SDPA backend, say)."""

    def __init__(self, run, sets, context=contextlib.nullcontext):
        self.run, self.sets, self.context, self.calls = run, sets, context, 0

    def calls_of(self, count):
        with self.context():
            for _ in range(count):
                self.run(self.calls % self.sets)
                self.calls += 1
        synchronize()

    def round(self, reps):
        start = time.perf_counter()
        self.calls_of(reps)
        return (time.perf_counter() - start) / reps


def gemm(case):
    m, k, n, dtype = case["m"], case["k"], case["n"], dtype_of(case["dtype"])
    sets = sets_for((m * k + n * k) * (2 if dtype == torch.bfloat16 else 4))
    xs = [torch.randn(m, k, device=DEVICE, dtype=dtype) for _ in range(sets)]
    ws = [torch.randn(n, k, device=DEVICE, dtype=dtype) * k**-0.5 for _ in range(sets)]
    bs = [torch.randn(n, device=DEVICE, dtype=dtype) for _ in range(sets)]
    if case.get("gelu"):
        return {"torch": Variant(lambda i: F.gelu(F.linear(xs[i], ws[i], bs[i]), approximate="tanh"), sets)}
    return {"torch": Variant(lambda i: F.linear(xs[i], ws[i], bs[i]), sets)}


def attention(case):
    b, l, h, d, dtype = case["batch"], case["length"], case["heads"], case["headDim"], dtype_of(case["dtype"])
    sets = sets_for(4 * b * l * h * d * 2)
    # selfe's layout [B, L, H, D], seen by torch as [B, H, L, D] (a transposed view, no copy).
    make = lambda: torch.randn(b, l, h, d, device=DEVICE, dtype=dtype).transpose(1, 2)
    qs = [make().requires_grad_(case["backward"]) for _ in range(sets)]
    ks = [make().requires_grad_(case["backward"]) for _ in range(sets)]
    vs = [make().requires_grad_(case["backward"]) for _ in range(sets)]
    dos = [make() for _ in range(sets)]
    from torch.nn.attention import SDPBackend, sdpa_kernel

    def run(i):
        out = F.scaled_dot_product_attention(qs[i], ks[i], vs[i])
        if case["backward"]:
            torch.autograd.grad(out, (qs[i], ks[i], vs[i]), dos[i])

    return {
        name: Variant(run, sets, lambda backend=backend: sdpa_kernel(backend))
        for name, backend in (("torch flash", SDPBackend.FLASH_ATTENTION), ("torch cuDNN", SDPBackend.CUDNN_ATTENTION))
    }


def layer_norm_modulate(case):
    b, l, d, dtype = case["batch"], case["length"], case["dim"], dtype_of(case["dtype"])
    sets = sets_for(b * l * d * (2 if dtype == torch.bfloat16 else 4))
    xs = [torch.randn(b, l, d, device=DEVICE, dtype=dtype) for _ in range(sets)]
    shifts = [torch.randn(b, 1, d, device=DEVICE, dtype=dtype) for _ in range(sets)]
    scales = [torch.randn(b, 1, d, device=DEVICE, dtype=dtype) for _ in range(sets)]
    return {"torch": Variant(lambda i: F.layer_norm(xs[i], (d,), eps=1e-6) * (1 + scales[i]) + shifts[i], sets)}


def fused_adamw(case):
    params = [torch.randn(shape, device=DEVICE) for shape in case["shapes"]]
    for p in params:
        p.grad = torch.randn_like(p)
    return params, torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.01, fused=True)


def adamw(case):
    _, optimizer = fused_adamw(case)
    return {"torch fused": Variant(lambda i: optimizer.step(), 1)}


def adamw_ema(case):
    """Fused AdamW alone (the reference of selfe's fused AdamW + EMA) and fused AdamW followed by the usual
    foreach EMA (ema += (1 - decay) (p - ema)), the same work in two passes."""
    params, optimizer = fused_adamw(case)
    ema = [torch.randn_like(p) for p in params]
    weight = 1.0 - case["emaDecay"]

    def step_and_ema(i):
        optimizer.step()
        torch._foreach_lerp_(ema, params, weight)

    return {"torch fused": Variant(lambda i: optimizer.step(), 1), "torch fused + foreach EMA": Variant(step_and_ema, 1)}


def cublaslt_library(path=None):
    """bench/gemmKernels.ts asks which cuBLASLt PyTorch runs on (a wheel may bring its own) and the version of selfe's."""
    if path is None:
        with open("/proc/self/maps") as maps:
            path = next((line.split()[-1] for line in maps if "libcublasLt.so" in line), None)
    if path is None:
        return {"path": None, "version": None}
    get_version = ctypes.CDLL(path).cublasLtGetVersion
    get_version.restype = ctypes.c_size_t
    return {"path": os.path.realpath(path), "version": get_version()}


KINDS = {"gemm": gemm, "attention": attention, "layerNormModulate": layer_norm_modulate, "adamw": adamw, "adamwEma": adamw_ema}


def first_line(error):
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


class Worker:
    def __init__(self):
        self.case, self.variants = None, {}

    def prepare(self, case):
        self.release()
        self.case = case
        for name, variant in KINDS[case["kind"]](case).items():
            # A variant this build cannot run (an SDPA backend, say) is left out; the row's others still run.
            try:
                variant.calls_of(WARMUP_CALLS)
                self.variants[name] = variant
            except RuntimeError as error:
                print(f"{name} unavailable for {case['id']}: {first_line(error)}", file=sys.stderr)
        return {"variants": list(self.variants)}

    def round(self):
        if self.case is None:
            raise ValueError("no row is prepared")
        return {name: variant.round(self.case["reps"]) for name, variant in self.variants.items()}

    def release(self):
        self.case, self.variants = None, {}
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
        return {}


def answer(message):
    print(json.dumps(message), flush=True)


def main():
    if DEVICE != "cuda" and "--smoke" not in sys.argv:
        answer({"error": f"torch {torch.__version__} sees no CUDA device"})
        return 1
    name = torch.cuda.get_device_name() if DEVICE == "cuda" else "CPU (smoke run)"
    answer({"device": name, "torch": torch.__version__})
    worker = Worker()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        # A request that fails (an unsupported row, out of memory) is reported and the worker goes on.
        try:
            if request["op"] == "prepare":
                answer(worker.prepare(request["case"]))
            elif request["op"] == "round":
                answer(worker.round())
            elif request["op"] == "release":
                answer(worker.release())
            elif request["op"] == "library":
                answer(cublaslt_library(request.get("path")))
            else:
                raise ValueError(f"unknown op {request['op']!r}")
        except Exception as error:  # noqa: BLE001 - any failure is this row's, reported to bench/gpu.ts
            worker.release()
            answer({"error": first_line(error)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
