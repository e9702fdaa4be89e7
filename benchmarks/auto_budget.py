"""Does `cnnkit train DATA --auto --budget B` end within B + 10%, end to end (feature extraction, every candidate,
the final scoring of the test split, the report)? Runs the command as a user does, times it from outside, and keeps
the leaderboard (each candidate's status, seconds and note).

    python benchmarks/auto_budget.py --data ../shared/data/hymenoptera --budgets 3m --out /tmp/cnnkit-budget \
        --results benchmarks/results/auto_budget.json

Data (not in this repository): hymenoptera, the ants-and-bees set of PyTorch's transfer-learning tutorial
(https://download.pytorch.org/tutorial/hymenoptera_data.zip, unzipped; train/ and val/: since issue 32 val/ is scored
once as the test split), by default in ../shared/data/hymenoptera. Without it the script says so in one line and exits
0. The machine is shared: run it alone, and say how loaded it was (the load average is recorded).
`--results` writes the tables to benchmarks/results/auto_budget.json, from which `python -m benchmarks report` writes
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _data import HYMENOPTERA
from _results import add_option, command_line, record

RUNS = [{"key": "budget", "label": "budget"}, {"key": "budget_seconds", "label": "budget (s)"},
        {"key": "wall_seconds", "label": "wall (s)"}, {"key": "ratio", "label": "wall / budget", "format": "{:.2f}"},
        {"key": "recipe_seconds", "label": "--auto's own seconds"},
        {"key": "load_average_at_start", "label": "load average at start"},
        {"key": "kept", "label": "kept"}, {"key": "test_accuracy", "label": "test accuracy", "format": "{:.4f}"}]
CANDIDATES = [{"key": "budget", "label": "budget"}, {"key": "name", "label": "candidate"},
              {"key": "status", "label": "status"}, {"key": "seconds", "label": "seconds"},
              {"key": "val_accuracy", "label": "validation accuracy", "format": "{:.4f}"},
              {"key": "note", "label": "note"}]


def run_once(data: Path, budget: str, out: Path) -> dict:
    if out.exists():
        shutil.rmtree(out)
    load = os.getloadavg()[0]
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "cnnkit.cli", "train", str(data), "--auto", "--budget", budget,
                           "--out", str(out), "--no-progress"], capture_output=True, text=True)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"--auto failed: {done.stderr[-2000:]}")
    record = json.loads((out / "config.json").read_text())
    recipe = record["recipe"]
    metrics = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").exists() else {}
    return {"budget": budget, "budget_seconds": recipe["budget_seconds"], "wall_seconds": round(seconds, 1),
            "ratio": round(seconds / recipe["budget_seconds"], 3), "recipe_seconds": recipe["seconds"],
            "load_average_at_start": round(load, 2), "kept": recipe["kept"],
            "test_accuracy": metrics.get("accuracy"),
            "candidates": [{k: e.get(k) for k in ("name", "status", "seconds", "val_accuracy", "note")}
                           for e in recipe["candidates"]]}


def tables(runs: list[dict]) -> list[dict]:
    """The results file's tables: one row per budget, and every candidate of each."""
    return [{"id": "runs", "columns": RUNS, "rows": [{c["key"]: run[c["key"]] for c in RUNS} for run in runs]},
            {"id": "candidates", "columns": CANDIDATES,
             "rows": [{"budget": run["budget"], **{k: v for k, v in candidate.items() if v is not None}}
                      for run in runs for candidate in run["candidates"]]}]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HYMENOPTERA.default)
    parser.add_argument("--budgets", nargs="+", default=["3m"])
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-budget"))
    add_option(parser, "auto_budget")
    args = parser.parse_args()
    if HYMENOPTERA.missing(args.data):
        return 0
    runs = [run_once(args.data, budget, args.out / budget) for budget in args.budgets]
    print(json.dumps(runs, indent=2))
    if args.results:
        record(args.results, "auto_budget", tables(runs), command_line(__file__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
