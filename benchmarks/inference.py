"""Inference speed and memory, every back-end in one run on the same images and weights (issue 16).

    python benchmarks/inference.py --data ../shared/data/hymenoptera --out /tmp/cnnkit-inference

An EfficientNet-Lite0 transfer run is trained on the data (or given with --run), exported to ONNX (float, then int8).
Measured, each as the median of --repeats rounds with the back-ends interleaved within a round (a noisy machine
slows all of them alike):
- network throughput on one decoded batch set: torch as cnnkit ran it before (NCHW float32, no_grad, batch 128),
  torch now (channels_last, inference_mode), torch bf16 autocast, ONNX Runtime float and int8;
- decoding and resizing alone (the worker threads of streaming prediction);
- `cnnkit predict` end to end on --images files (start-up included), torch and ONNX Runtime;
- peak RSS of `cnnkit predict` on 1,000 and --rss-images files (hard links to the data's images: no extra disk);
- one image from a cold start (a new process), with the export and with torch;
- the FLOPs of one image and the int8 model's test accuracy against float.

Data, not in this repository: hymenoptera, the ants-and-bees set of PyTorch's transfer-learning tutorial
(https://download.pytorch.org/tutorial/hymenoptera_data.zip, unzipped: train/ and val/), by default in
../shared/data/hymenoptera. Without it the script says so in one line and exits 0. (--run too needs the data: its
images are the ones timed.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _data import HYMENOPTERA

CNNKIT = [sys.executable, "-m", "cnnkit.cli"]
MAXRSS = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
          "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def cnnkit(*args, quiet: bool = True) -> float:
    start = time.perf_counter()
    subprocess.run([*CNNKIT, *map(str, args)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL if quiet else None)
    return time.perf_counter() - start


def image_folder(data: Path, out: Path, count: int) -> Path:
    """``count`` files: hard links to the data's images, cycled (same bytes, no extra disk)."""
    sources = sorted(p for p in data.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    out.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        target = out / f"{i:06d}{sources[i % len(sources)].suffix}"
        if not target.exists():
            os.link(sources[i % len(sources)], target)
    return out


def with_test_split(data: Path, out: Path) -> Path:
    """hymenoptera comes as train/ and val/: its val/ becomes the test split (never trained on, what int8 is scored
    on), and cnnkit carves the validation split from train/."""
    out.mkdir(parents=True, exist_ok=True)
    for source, name in (("train", "train"), ("val", "test")):
        link, target = out / name, (data / source).resolve()
        if link.is_symlink() and link.resolve() != target:
            link.unlink()  # made for another --data
        if not link.is_symlink():
            link.symlink_to(target, target_is_directory=True)
    return out


def peak_rss_mb(*args) -> float:
    done = subprocess.run([sys.executable, "-c", MAXRSS, *CNNKIT, *map(str, args)], capture_output=True, text=True,
                          check=True)
    kb, status = done.stdout.split()
    assert status == "0", f"cnnkit {' '.join(map(str, args))} failed"
    return int(kb) / 1024


def network_rows(run: Path, images: np.ndarray, repeats: int) -> dict:
    import torch

    from cnnkit.data.preprocess import normalize
    from cnnkit.inference import Predictor
    from cnnkit.inference.onnx import open_session

    torch_now = Predictor.load(run, backend="torch")
    before = Predictor.load(run, backend="torch").model.to(memory_format=torch.contiguous_format)
    prep = torch_now.preprocessing
    export = run / "export"
    float_session, int8_session = open_session(export / "model.onnx"), open_session(export / "model.int8.onnx")

    def torch_before(x):
        with torch.no_grad():
            for i in range(0, len(x), 128):
                b = torch.from_numpy(x[i:i + 128]).permute(0, 3, 1, 2).contiguous().float() / 255.0
                torch.softmax(before(normalize(b, prep)), 1)

    def bf16(x):
        out = []
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            for i in range(0, len(x), 16):
                b = torch.from_numpy(x[i:i + 16]).permute(0, 3, 1, 2).float() / 255.0
                out.append(torch.softmax(torch_now.model(normalize(b, prep)).float(), 1))
        return torch.cat(out).numpy()

    def ort(session, batch):
        return lambda x: np.concatenate([session.run(["probabilities"], {"images": x[i:i + batch]})[0]
                                         for i in range(0, len(x), batch)])

    rows = {"torch before (NCHW, no_grad, batch 128)": torch_before,
            "torch now (channels_last, inference_mode, batch 16)": lambda x: torch_now.predict_arrays(x, 16),
            "torch bf16 autocast (channels_last, batch 16)": bf16,
            "ONNX Runtime float32 (batch 16)": ort(float_session, 16),
            "ONNX Runtime int8 (batch 16)": ort(int8_session, 16)}
    for f in rows.values():  # warm-up: lazy initialisation and caches
        f(images[:16])
    times = {name: [] for name in rows}
    for _ in range(repeats):
        for name, f in rows.items():
            start = time.perf_counter()
            f(images)
            times[name].append(time.perf_counter() - start)
    reference = torch_now.predict_arrays(images, 16)
    agree = {"torch bf16 autocast (channels_last, batch 16)": bf16(images),
             "ONNX Runtime float32 (batch 16)": ort(float_session, 16)(images),
             "ONNX Runtime int8 (batch 16)": ort(int8_session, 16)(images)}
    return {name: {"images_per_s": len(images) / statistics.median(t),
                   "same_class": (float((agree[name].argmax(1) == reference.argmax(1)).mean())
                                  if name in agree else 1.0),
                   "max_difference": float(np.abs(agree[name] - reference).max()) if name in agree else 0.0}
            for name, t in times.items()}


def flops_per_image(run: Path) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from cnnkit.inference import Predictor

    predictor = Predictor.load(run, backend="torch")
    h, w = predictor.preprocessing.image_size
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        predictor.model(torch.zeros(1, 3, h, w))
    return counter.get_total_flops()


def decode_rate(run: Path, folder: Path, repeats: int) -> float:
    from cnnkit.inference import Predictor
    from cnnkit.inference.stream import decoded_batches

    files = sorted(folder.iterdir())
    prep = Predictor.load(run, backend="onnx").preprocessing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _batch in decoded_batches(files, prep, 32):
            pass
        times.append(time.perf_counter() - start)
    return len(files) / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HYMENOPTERA.default)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-inference"))
    parser.add_argument("--run", type=Path, help="an existing EfficientNet-Lite0 run (default: train one)")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--rss-images", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if HYMENOPTERA.missing(args.data):
        return
    args.out.mkdir(parents=True, exist_ok=True)
    run = args.run or args.out / "run"
    if not (run / "model.safetensors").exists():
        cnnkit("train", with_test_split(args.data, args.out / "data"), "--model", "efficientnet_lite0", "--pretrained",
               "--out", run, "--overwrite", "--no-progress")
    results: dict = {"machine": f"{cpu_model()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
                     "flops_per_image": flops_per_image(run)}
    folder = image_folder(args.data, args.out / f"images-{args.images}", args.images)
    many = image_folder(args.data, args.out / f"images-{args.rss_images}", args.rss_images)
    one = sorted(folder.iterdir())[0]

    cnnkit("export", run, "--quantize", "int8", "--tolerance", "100")  # both files, int8 in use
    results["int8"] = json.loads((run / "export" / "export.json").read_text())["int8"]
    from cnnkit.inference import Predictor

    images = Predictor.load(run, backend="torch").load_images(sorted(folder.iterdir())[:128])
    results["network"] = network_rows(run, images, args.repeats)
    results["decode_images_per_s"] = decode_rate(run, folder, args.repeats)
    e2e: dict = {"torch": [], "onnx int8": [], "onnx float32": []}
    cold: dict = {"torch": [], "onnx int8": [], "onnx float32": []}
    for model in ("int8", "float32"):
        if model == "float32":
            cnnkit("export", run)  # float only: model.onnx in use
        for _ in range(args.repeats):
            e2e[f"onnx {model}"].append(cnnkit("-q", "predict", run, folder, "--out", args.out / "p.csv"))
            cold[f"onnx {model}"].append(cnnkit("-q", "predict", run, one))
            if model == "float32":
                e2e["torch"].append(cnnkit("-q", "predict", run, folder, "--out", args.out / "p.csv",
                                           "--backend", "torch"))
                cold["torch"].append(cnnkit("-q", "predict", run, one, "--backend", "torch"))
    results["end_to_end_images_per_s"] = {k: args.images / statistics.median(v) for k, v in e2e.items()}
    results["cold_one_image_s"] = {k: statistics.median(v) for k, v in cold.items()}
    results["peak_rss_mb"] = {
        f"onnx float32, {args.images} images": peak_rss_mb("-q", "predict", run, folder, "--out", args.out / "p.csv"),
        f"onnx float32, {args.rss_images} images": peak_rss_mb("-q", "predict", run, many, "--out",
                                                               args.out / "p.csv"),
        f"torch, {args.images} images": peak_rss_mb("-q", "predict", run, folder, "--out", args.out / "p.csv",
                                                    "--backend", "torch"),
        f"torch, {args.rss_images} images": peak_rss_mb("-q", "predict", run, many, "--out", args.out / "p.csv",
                                                        "--backend", "torch")}
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    report(results)


def report(r: dict) -> None:
    net = r["network"]
    ort = net["ONNX Runtime float32 (batch 16)"]["images_per_s"]
    print(f"Machine: {r['machine']}; {r['date']}; {r['flops_per_image'] / 1e9:.2f} GFLOPs per image "
          f"(multiply-adds x2)\n")
    print("| network, same 128 decoded images | images/s | x ONNX Runtime float | same class as torch | "
          "largest difference |")
    print("|---|---|---|---|---|")
    for name, row in net.items():
        print(f"| {name} | {row['images_per_s']:.0f} | {row['images_per_s'] / ort:.2f} | {row['same_class']:.3f} "
              f"| {row['max_difference']:.1e} |")
    print(f"\nDecoding and resizing alone (worker threads): {r['decode_images_per_s']:.0f} images/s\n")
    print("| `cnnkit predict`, end to end | images/s | x raw ONNX Runtime float | one image, cold (s) |")
    print("|---|---|---|---|")
    for name, rate in r["end_to_end_images_per_s"].items():
        print(f"| {name} | {rate:.0f} | {rate / ort:.2f} | {r['cold_one_image_s'][name]:.2f} |")
    print("\n| peak RSS of `cnnkit predict` | MB |\n|---|---|")
    for name, mb in r["peak_rss_mb"].items():
        print(f"| {name} | {mb:.0f} |")
    q = r["int8"]
    print(f"\nint8 on the {q['split']} split ({q['images']} images): accuracy {q['accuracy_int8']:.4f} against "
          f"{q['accuracy_float']:.4f} in float ({-q['points_lost']:+.2f} points)")


if __name__ == "__main__":
    main()
