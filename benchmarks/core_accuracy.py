"""Test accuracy and wall time of `cnnkit demo` (wafers) and `cnnkit train` with simple_cnn (digits).

Runs the real commands as a user would, for several seeds (the seed sets the split, the wafer data and the
initialisation), and prints a Markdown table; `--results` writes it to benchmarks/results/core_accuracy.json, from
which `python -m benchmarks report` writes BENCHMARKS.md.

    python benchmarks/core_accuracy.py --seeds 0 1 2 --out /tmp/cnnkit-bench

Data: the built-in wafers and digits; nothing from outside this repository.
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

from _report import table_lines
from _results import add_option, command_line, record

COLUMNS = [{"key": "command", "label": "command"}, {"key": "seeds", "label": "seeds"},
           {"key": "accuracy", "label": "test accuracy (mean, min-max)", "format": "{mean:.4f} ({min:.4f}-{max:.4f})"},
           {"key": "balanced_accuracy", "label": "balanced accuracy (mean)", "format": "{:.4f}"},
           {"key": "test_images", "label": "test images"},
           {"key": "seconds", "label": "wall time s (mean)", "format": "{:.1f}"}]
LABELS = {"demo (wafers, vgg_small, up to 30 epochs)": "`cnnkit demo` (wafers, vgg_small, up to 30 epochs)",
          "train digits --model simple_cnn (up to 20 epochs)":
              "`cnnkit train digits --model simple_cnn` (up to 20 epochs, 16x16)"}


def run(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def tables(results: dict[str, list[dict]]) -> list[dict]:
    """The results file's table: per command, the mean over seeds (and the range of the test accuracy)."""
    rows = []
    for name, runs in results.items():
        accuracy = [r["accuracy"] for r in runs]
        rows.append({"command": LABELS[name], "seeds": len(runs),
                     "accuracy": {"mean": round(statistics.mean(accuracy), 4), "min": round(min(accuracy), 4),
                                  "max": round(max(accuracy), 4)},
                     "balanced_accuracy": round(statistics.mean(r["balanced_accuracy"] for r in runs), 4),
                     "test_images": runs[0]["n_test"],
                     "seconds": round(statistics.mean(r["seconds"] for r in runs), 1)})
    return [{"id": "accuracy_and_time", "columns": COLUMNS, "rows": rows}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-bench"))
    add_option(parser, "core_accuracy")
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
    print("\n".join(table_lines(tables(results)[0])))
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    if args.results:
        record(args.results, "core_accuracy", tables(results), command_line(__file__))


if __name__ == "__main__":
    main()
