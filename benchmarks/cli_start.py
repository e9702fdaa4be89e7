"""How fast the command line answers: `cnnkit --help` (no heavy import may load for it) and `cnnkit predict` of an
exported run (ONNX Runtime, no torch), each a fresh process, medians of several runs measured alternately.

    python benchmarks/cli_start.py --rounds 7 --results benchmarks/results/cli_start.json

Data: none from outside; it writes a few images and trains and exports a tiny run in a temporary folder first.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._results import add_option, command_line, record  # noqa: E402

CNNKIT = [sys.executable, "-m", "cnnkit.cli"]


def tiny_exported_run(folder: Path) -> tuple[Path, Path]:
    """A tiny_cnn trained one epoch on written images and exported to ONNX; the run and one image."""
    from tests.conftest import write_image_folder

    data = write_image_folder(folder / "data", ["a", "b"], 12, size=32)
    run = folder / "run"
    for args in (["train", str(data), "--model", "tiny_cnn", "--epochs", "1", "--out", str(run)],
                 ["export", str(run)]):
        subprocess.run([*CNNKIT, "-q", *args], check=True, capture_output=True)
    return run, next((data / "a").iterdir())


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    add_option(parser, "cli_start")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        run, image = tiny_exported_run(Path(scratch))
        commands = {"cnnkit --help": [*CNNKIT, "--help"],
                    "cnnkit predict RUN IMAGE (ONNX export)": [*CNNKIT, "predict", str(run), str(image)]}
        times = {name: [] for name in commands}
        for _ in range(args.rounds):  # alternately, so that a busy moment of the machine hits both
            for name, command in commands.items():
                times[name].append(seconds(command))
    rows = [{"command": name, "median_s": round(statistics.median(t), 3), "min_s": round(min(t), 3),
             "rounds": len(t)} for name, t in times.items()]
    for row in rows:
        print(f"{row['command']:<40} median {row['median_s']:.3f} s  (min {row['min_s']:.3f} s, {row['rounds']} runs)")
    if args.results:
        columns = [{"key": "command", "label": "command"}, {"key": "median_s", "label": "median (s)"},
                   {"key": "min_s", "label": "fastest (s)"}, {"key": "rounds", "label": "runs"}]
        record(args.results, "cli_start", [{"id": "start", "columns": columns, "rows": rows}],
               command_line("benchmarks/cli_start.py"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
