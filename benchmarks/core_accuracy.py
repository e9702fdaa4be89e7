"""Test accuracy and wall time of `cnnkit demo` (wafers) and `cnnkit train` with simple_cnn (digits).

Runs the real commands as a user would, for several seeds (the seed sets the split, the wafer data and the
initialisation), and prints a Markdown table for BENCHMARKS.md.

    python benchmarks/core_accuracy.py --seeds 0 1 2 --out /tmp/cnnkit-bench
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


def run(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-bench"))
    args = parser.parse_args()
    cnnkit = [sys.executable, "-m", "cnnkit.cli", "-q"]
    digits = args.out / "digits-data"
    if not digits.exists():
        subprocess.run([*cnnkit, "datasets", "export", "digits", str(digits)], check=True, stdout=subprocess.DEVNULL)
    jobs = {
        "demo (wafers, vgg_small, up to 30 epochs)": lambda s, out: [*cnnkit, "demo", "--seed", str(s), "--out", out,
                                                                 "--no-progress"],
        "train digits --model simple_cnn (up to 20 epochs)": lambda s, out: [*cnnkit, "train", str(digits), "--model",
                                                                        "simple_cnn", "--seed", str(s), "--out", out,
                                                                        "--no-progress"],
    }
    results = {}
    for name, command in jobs.items():
        rows = []
        for seed in args.seeds:
            out = args.out / f"{name.split()[0]}-{name.split()[1]}-seed{seed}"
            seconds = run(command(seed, str(out)))
            metrics = json.loads((out / "metrics.json").read_text())
            rows.append({"seed": seed, "accuracy": metrics["accuracy"], "balanced_accuracy":
                         metrics["balanced_accuracy"], "n_test": metrics["n"], "seconds": seconds})
            print(name, rows[-1], file=sys.stderr)
        results[name] = rows
    print(f"Machine: {platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores, "
          f"Python {platform.python_version()}; date {time.strftime('%Y-%m-%d')}\n")
    print("| command | seeds | test accuracy (mean, min-max) | balanced accuracy (mean) | test images | wall time s (mean) |")
    print("|---|---|---|---|---|---|")
    for name, rows in results.items():
        acc = [r["accuracy"] for r in rows]
        print(f"| {name} | {len(rows)} | {statistics.mean(acc):.4f} ({min(acc):.4f}-{max(acc):.4f}) | "
              f"{statistics.mean(r['balanced_accuracy'] for r in rows):.4f} | {rows[0]['n_test']} | "
              f"{statistics.mean(r['seconds'] for r in rows):.1f} |")
    (args.out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
