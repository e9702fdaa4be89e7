"""Fine-tuning throughput of EfficientNet-Lite0 on this machine's CPU, images/s of training steps (forward, backward,
AdamW step) on random 224x224 batches, for each way of running the same step, measured side by side in one run
(rounds interleaved, medians reported, ratios to eager NCHW float32):

    python benchmarks/finetune_speed.py [--batch 32] [--rounds 5] [--steps 3]

The variants: the memory format (NCHW, channels_last), bf16 autocast, and the backbone's batch norm in training or
inference mode. What is fastest here decides cnnkit's fine-tuning defaults (training/precision.py).

Data: random images; nothing from outside this repository.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch


def build(channels_last: bool, bn_eval: bool):
    from cnnkit.models import create_model
    from cnnkit.models.pretrained import load_pretrained

    model = create_model("efficientnet_lite0", 6, 3)
    load_pretrained(model, "efficientnet_lite0", None)
    model.set_trainable_stages(-1)
    if bn_eval:
        model.keep_batch_norm_frozen = True
    model.train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def step_time(model, optimizer, x, y, bf16: bool, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def feature_throughput(x, rounds: int) -> dict[str, float]:
    """Images/s of the frozen backbone's pooled features (what the feature cache computes), eval mode, no grad."""
    out = {}
    for name, channels_last in (("NCHW fp32", False), ("channels_last", True)):
        model = build(channels_last, True).eval()
        inputs = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        times = []
        with torch.no_grad():
            model.pool(model.forward_features(inputs))
            for _ in range(rounds):
                start = time.perf_counter()
                model.pool(model.forward_features(inputs))
                times.append(time.perf_counter() - start)
        out[name] = round(len(x) / statistics.median(times), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    variants = {f"{'channels_last' if cl else 'NCHW'} {'bf16' if bf else 'fp32'} BN {'eval' if ev else 'train'}":
                (cl, bf, ev) for cl in (False, True) for bf in (False, True) for ev in (False, True)}
    x = torch.randn(args.batch, 3, 224, 224)
    y = torch.randint(0, 6, (args.batch,))
    setups = {}
    for name, (cl, bf, ev) in variants.items():
        model = build(cl, ev)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        inputs = x.contiguous(memory_format=torch.channels_last) if cl else x
        step_time(model, optimizer, inputs, y, bf, 1)  # warm-up
        setups[name] = (model, optimizer, inputs, bf)
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (model, optimizer, inputs, bf) in setups.items():
            times[name].append(step_time(model, optimizer, inputs, y, bf, args.steps))
    base = statistics.median(times["NCHW fp32 BN train"])
    rows = [{"variant": name, "images_per_s": round(args.batch / statistics.median(t), 2),
             "ratio": round(base / statistics.median(t), 2)} for name, t in times.items()]
    for row in rows:
        print(f"{row['variant']:<32} {row['images_per_s']:>7} img/s  x{row['ratio']}")
    features = feature_throughput(x, args.rounds)
    for name, rate in features.items():
        print(f"feature extraction {name:<13} {rate:>7} img/s")
    print(json.dumps({"machine": f"{platform.machine()} {torch.get_num_threads()} threads",
                      "torch": torch.__version__, "batch": args.batch, "rows": rows, "features": features}))


if __name__ == "__main__":
    main()
