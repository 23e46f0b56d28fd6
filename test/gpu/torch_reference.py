#!/usr/bin/env python3
"""PyTorch reference for test/gpu/torch.test.ts.

Usage: torch_reference.py FOLDER. FOLDER/manifest.json lists cases: {"cases": [{"name", "op", "params",
"inputs": {name: {"shape", "dtype": "f32" | "i32", "file"}}}]} with each tensor raw little-endian in FOLDER.
Every case is computed in float64 on the CPU (an exact reference, whatever the GPU), forward and backward, and
written back as raw f32 files listed in FOLDER/outputs.json: {"cases": {name: {output: {"shape", "file"}}}}.

Ops (layouts as selfe's kernels, docs/native-bindings.md):
  attention: q [B, Lq, H, D], k, v [B, Lk, H, D], optional key_mask i32 [B, Lk] (nonzero = attend), dout;
             params {"scale"} -> out, lse [B, H, Lq], dq, dk, dv (torch's scaled_dot_product_attention).
  layerNorm: x [..., D], weight, bias [D], dy; params {"eps"} -> y, mean, rstd, dx, dweight, dbias.
"""
import json
import pathlib
import sys

import torch
import torch.nn.functional as F


def load(folder, spec):
    data = (folder / spec["file"]).read_bytes()
    dtype = torch.int32 if spec["dtype"] == "i32" else torch.float32
    return torch.frombuffer(bytearray(data), dtype=dtype).reshape(spec["shape"]).clone()


def attention(inputs, params):
    q, k, v, dout = (inputs[n].double().permute(0, 2, 1, 3).requires_grad_(n != "dout") for n in ("q", "k", "v", "dout"))
    scale = params["scale"]
    mask = None
    if "key_mask" in inputs:
        mask = (inputs["key_mask"] != 0)[:, None, None, :]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    out.backward(dout)
    scores = (q.detach() @ k.detach().transpose(-1, -2)) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    back = lambda t: t.permute(0, 2, 1, 3).contiguous()
    return {"out": back(out.detach()), "lse": lse, "dq": back(q.grad), "dk": back(k.grad), "dv": back(v.grad)}


def layer_norm(inputs, params):
    x = inputs["x"].double().requires_grad_(True)
    weight = inputs["weight"].double().requires_grad_(True)
    bias = inputs["bias"].double().requires_grad_(True)
    eps = params["eps"]
    y = F.layer_norm(x, (x.shape[-1],), weight, bias, eps)
    y.backward(inputs["dy"].double())
    xd = x.detach()
    mean = xd.mean(-1)
    rstd = 1.0 / torch.sqrt(xd.var(-1, unbiased=False) + eps)
    return {"y": y.detach(), "mean": mean, "rstd": rstd, "dx": x.grad, "dweight": weight.grad, "dbias": bias.grad}


OPS = {"attention": attention, "layerNorm": layer_norm}


def main():
    folder = pathlib.Path(sys.argv[1])
    manifest = json.loads((folder / "manifest.json").read_text())
    results = {}
    for case in manifest["cases"]:
        inputs = {name: load(folder, spec) for name, spec in case["inputs"].items()}
        outputs = OPS[case["op"]](inputs, case["params"])
        written = {}
        for name, tensor in outputs.items():
            file = f"{case['name']}.{name}.out.f32"
            raw = tensor.detach().to(torch.float32).contiguous().reshape(-1).view(torch.uint8)
            (folder / file).write_bytes(bytes(raw.tolist()))
            written[name] = {"shape": list(tensor.shape), "file": file}
        results[case["name"]] = written
    (folder / "outputs.json").write_text(json.dumps({"cases": results, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
