"""Training memory against the size of the data: `cnnkit train --data-in memory` and `--data-in disk` on generated
folders of 10,000 and 100,000 small images (32x32 RGB PNG, 10 classes), one epoch of simple_cnn each.

    python benchmarks/train_memory.py --out /tmp/cnnkit-trainmem [--sizes 10000 100000]

Memory is sampled every 0.2 s over the training process and its DataLoader workers from /proc/PID/smaps_rollup:
the summed PSS (shared pages split between the processes that map them; the memory-mapped cache's pages are file
pages the kernel may drop under pressure) and its anonymous part (what cannot be dropped), and the training
process's own peak RSS. Disk runs twice: the first decodes every PNG into the cache, the second reads it back.
Images/s: training images over the epoch's seconds (cnnkit's record), decoding excluded.

Data: generated images; nothing from outside this repository.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from _report import table_lines
from _results import add_option, command_line, record

COLUMNS = [{"key": "images", "label": "images", "format": "{:,}"}, {"key": "data_in", "label": "data in"},
           {"key": "attempt", "label": "run"}, {"key": "wall_s", "label": "wall (s)"},
           {"key": "images_per_s", "label": "training images/s"}, {"key": "pss_mb", "label": "peak PSS (MB)"},
           {"key": "pss_anon_mb", "label": "of it anonymous (MB)"}, {"key": "main_rss_mb", "label": "main RSS (MB)"}]

CNNKIT = [sys.executable, "-m", "cnnkit.cli", "-q"]


def make_images(folder: Path, n: int, seed: int = 0) -> None:
    """n images in 10 class folders: a bright bar whose position is the class, on noise."""
    rng = np.random.default_rng(seed)
    for k in range(10):
        (folder / f"c{k}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        k = i % 10
        pixels = rng.integers(0, 80, (32, 32, 3), dtype=np.uint8)
        pixels[3 * k:3 * k + 3] += 150
        Image.fromarray(pixels).save(folder / f"c{k}" / f"{i:06d}.png", compress_level=1)


def subset(source: Path, folder: Path, n: int) -> None:
    """The first n images of ``source`` as symbolic links (n/10 per class)."""
    for k in range(10):
        (folder / f"c{k}").mkdir(parents=True, exist_ok=True)
        for file in sorted((source / f"c{k}").iterdir())[:n // 10]:
            (folder / f"c{k}" / file.name).symlink_to(file)


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in open(f"/proc/{p}/task/{task}/children").read().split()]
        except OSError:
            pass
    return out


def _rollup(pid: int) -> dict[str, int]:
    try:
        lines = open(f"/proc/{pid}/smaps_rollup").read().splitlines()
    except OSError:
        return {}
    return {line.split(":")[0]: int(line.split()[1]) for line in lines[1:] if line.split()[-1] == "kB"}


def run(command: list[str], env: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = {"pss_mb": 0.0, "pss_anon_mb": 0.0, "main_rss_mb": 0.0}
    while proc.poll() is None:
        rollups = [_rollup(p) for p in _tree(proc.pid)]
        peak["pss_mb"] = max(peak["pss_mb"], sum(r.get("Pss", 0) for r in rollups) / 1024)
        peak["pss_anon_mb"] = max(peak["pss_anon_mb"], sum(r.get("Pss_Anon", 0) for r in rollups) / 1024)
        peak["main_rss_mb"] = max(peak["main_rss_mb"], (rollups[0].get("Rss", 0) if rollups else 0) / 1024)
        time.sleep(0.2)
    if proc.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr.read()[-2000:]}")
    return time.perf_counter() - start, {k: round(v) for k, v in peak.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-trainmem"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    add_option(parser, "train_memory")
    args = parser.parse_args()
    source = args.out / f"images-{max(args.sizes)}"
    if not source.exists():
        start = time.perf_counter()
        make_images(source, max(args.sizes))
        print(f"wrote {max(args.sizes)} images in {time.perf_counter() - start:.0f} s", flush=True)
    env = {**os.environ, "CNNKIT_CACHE_DIR": str(args.out / "cache")}
    rows = []
    for n in args.sizes:
        data = source if n == max(args.sizes) else args.out / f"images-{n}"
        if not data.exists():
            subset(source, data, n)
        for mode, attempt in (("memory", 1), ("disk", 1), ("disk", 2)):
            out = args.out / f"run-{n}-{mode}-{attempt}"
            command = [*CNNKIT, "train", str(data), "--model", "simple_cnn", "--epochs", "1", "--data-in", mode,
                       "--no-progress", "--test-fraction", "0", "--out", str(out), "--overwrite"]
            seconds, peak = run(command, env)
            record = json.loads((out / "config.json").read_text())
            train_images = sum(record["data"]["counts"]["train"].values())
            rows.append({"images": n, "data_in": mode, "attempt": attempt, "wall_s": round(seconds, 1),
                         "images_per_s": round(train_images / record["result"]["epoch_seconds"][0]), **peak})
            print(json.dumps(rows[-1]), flush=True)
    table = {"id": "runs", "columns": COLUMNS, "rows": [{c["key"]: r[c["key"]] for c in COLUMNS} for r in rows]}
    print("\n" + "\n".join(table_lines(table)))
    if args.results:
        record(args.results, "train_memory", [table], command_line(__file__))


if __name__ == "__main__":
    main()
