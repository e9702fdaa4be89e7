"""Does `cnnkit train DATA --auto --budget B` end within B + 10%, end to end (feature extraction, every candidate,
the final scoring of the test split, the report)? Runs the command as a user does, times it from outside, and keeps
the leaderboard (each candidate's status, seconds and note).

    python benchmarks/auto_budget.py --data ../shared/data/hymenoptera --budgets 3m --out /tmp/cnnkit-budget \
        --results benchmarks/results/auto_budget.json

The data (not in this repository): `../shared/data/hymenoptera`, the ants-and-bees set of PyTorch's transfer-learning
tutorial (train/ and val/: since issue 32 val/ is scored once as the test split). Without it the script says so and
exits 0. The machine is shared: run it alone, and say how loaded it was (the load average is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/hymenoptera"))
    parser.add_argument("--budgets", nargs="+", default=["3m"])
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-budget"))
    parser.add_argument("--results", type=Path, help="a JSON file to write the results to")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"{args.data} is not here: get the hymenoptera set (see ../shared/data/README.md) and pass --data. "
              "Nothing measured.")
        return 0
    rows = [run_once(args.data, budget, args.out / budget) for budget in args.budgets]
    result = {"command": " ".join(["python", "benchmarks/auto_budget.py", *sys.argv[1:]]),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
              "date": date.today().isoformat(), "data": str(args.data), "runs": rows}
    text = json.dumps(result, indent=2)
    print(text)
    if args.results:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
