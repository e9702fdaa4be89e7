"""Lightning DDP on CPU: `cnnkit train --devices 2` (two processes, gloo) against one process, same data and seeds.

    python benchmarks/ddp_cpu.py --out /tmp/cnnkit-ddp [--seeds 0 1 2] [--epochs 20]

Data: the built-in wafers (1,040 maps, 9 classes); simple_cnn with every default but the epochs. Reported per seed:
test accuracy, best validation loss and wall time of the whole command (decoding, process start, training, the test
evaluation); the scaling efficiency is (time of 1 process) / (2 x time of 2 processes). On a 2-core machine two
processes share the two cores one process already used (Lightning gives each one thread), so no speed-up is expected
here: the point is that the results agree.

Nothing from outside this repository.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _report import table_lines
from _results import add_option, command_line, record

COLUMNS = [{"key": "seed", "label": "seed"},
           {"key": "accuracy_1", "label": "test accuracy, 1 process", "format": "{:.4f}"},
           {"key": "accuracy_2", "label": "2 processes", "format": "{:.4f}"},
           {"key": "val_loss", "label": "best val loss 1 / 2", "format": "{one:.4f} / {two:.4f}"},
           {"key": "wall_s", "label": "wall (s) 1 / 2", "format": "{one} / {two}"},
           {"key": "same_split", "label": "same split"}]
CNNKIT = [sys.executable, "-m", "cnnkit.cli", "-q"]


def tables(rows: list[dict]) -> list[dict]:
    """The results file's table: per seed, one process beside two."""
    found = []
    for seed in sorted({r["seed"] for r in rows}):
        one, two = (next(r for r in rows if r["seed"] == seed and r["devices"] == d) for d in (1, 2))
        found.append({"seed": seed, "accuracy_1": one["test_accuracy"], "accuracy_2": two["test_accuracy"],
                      "val_loss": {"one": one["best_val_loss"], "two": two["best_val_loss"]},
                      "wall_s": {"one": one["wall_s"], "two": two["wall_s"]},
                      "same_split": one["split"] == two["split"]})
    return [{"id": "seeds", "columns": COLUMNS, "rows": found}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-ddp"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    add_option(parser, "ddp_cpu")
    args = parser.parse_args()
    data = args.out / "wafers"
    if not data.exists():
        subprocess.run([*CNNKIT, "datasets", "export", "wafers", str(data)], check=True, stdout=subprocess.DEVNULL)
    rows = []
    for seed in args.seeds:
        for devices in (1, 2):
            out = args.out / f"run-{devices}-{seed}"
            start = time.perf_counter()
            subprocess.run([*CNNKIT, "train", str(data), "--epochs", str(args.epochs), "--seed", str(seed),
                            "--devices", str(devices), "--accelerator", "cpu", "--no-progress", "--overwrite",
                            "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - start
            metrics = json.loads((out / "metrics.json").read_text())
            record = json.loads((out / "config.json").read_text())
            rows.append({"seed": seed, "devices": devices, "test_accuracy": metrics["accuracy"],
                         "best_val_loss": record["result"]["best_val_loss"], "wall_s": round(wall, 1),
                         "split": (out / "split.json").read_text()})
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "split"}), flush=True)
    print("\n" + "\n".join(table_lines(tables(rows)[0])))
    t1 = np.median([r["wall_s"] for r in rows if r["devices"] == 1])
    t2 = np.median([r["wall_s"] for r in rows if r["devices"] == 2])
    print(f"\nmedian wall: 1 process {t1:.1f} s, 2 processes {t2:.1f} s; scaling efficiency {t1 / (2 * t2):.2f}")
    if args.results:
        record(args.results, "ddp_cpu", tables(rows), command_line(__file__))


if __name__ == "__main__":
    main()
