"""Fault injection: trainings killed at random points and resumed, the bad-input catalogue replayed, and a
property-based fuzz of the image decoder and the run-folder reader. Prints a Markdown summary (its numbers are in
benchmarks/results/faults.json, from which BENCHMARKS.md is generated).

    python benchmarks/faults.py --kills 20 --fuzz 300 --out /tmp/cnnkit-faults

Kills: half the trials train a tiny_cnn from scratch, half fine-tune timm's test_efficientnet (random weights from a
file: no download) through its head and fine-tuning phases. Each trial SIGKILLs the training after a random delay
(so some kills land mid-epoch, some during a checkpoint write), checks that nothing is corrupted and at most one
epoch is lost, resumes it, and compares the finished run with an uninterrupted run of the same seed.

Data: small image folders it writes itself; nothing from outside this repository.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import write_image_folder  # noqa: E402

CLI = [sys.executable, "-m", "cnnkit.cli"]


def run_cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, env=env, timeout=600)


def logged_epochs(run: Path) -> int:
    try:
        return len((run / "logs" / "metrics.csv").read_text().splitlines()) - 1
    except FileNotFoundError:
        return 0


def scenarios(root: Path) -> dict[str, tuple[list, dict]]:
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    weights = root / "backbone.safetensors"
    save_file(timm.create_model("test_efficientnet", num_classes=0).state_dict(), str(weights))
    small = write_image_folder(root / "small", ["left", "right", "top"], 40, size=16)
    rgb = write_image_folder(root / "rgb", ["left", "right"], 30, size=32)
    env = {**os.environ, "CNNKIT_CACHE_DIR": str(root / "cache")}
    scratch = ["train", small, "--model", "tiny_cnn", "--epochs", "40", "--batch-size", "4", "--early-stopping",
               "0", "--lr", "0.01", "--no-progress"]
    finetune = ["train", rgb, "--model", "test_efficientnet", "--weights", weights, "--strategy", "finetune",
                "--epochs", "6", "--head-solver", "epochs", "--finetune-epochs", "14", "--finetune-lr", "0.001",
                "--early-stopping", "0",
                "--batch-size", "4", "--image-size", "32", "--no-progress"]
    return {"scratch": (scratch, env, 40), "finetune": (finetune, env, 20)}


def intact(run: Path) -> list[str]:
    """What is corrupted in a killed run folder (an empty list: nothing)."""
    from cnnkit.run import RunFolder
    from cnnkit.training.phases import read_progress

    problems = []
    folder = RunFolder(run)
    try:
        folder.read_record()
        folder.read_split()
        if folder.last_checkpoint.exists():
            read_progress(folder.last_checkpoint)
        if folder.weights_path.exists():
            from safetensors.torch import load_file

            load_file(str(folder.weights_path))
    except Exception as e:  # noqa: BLE001  (any failure here is corruption to report)
        problems.append(f"{type(e).__name__}: {e}")
    return problems


def same(a: Path, b: Path) -> tuple[float, bool]:
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    diff = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    rows = [[line.split(",")[:-1] for line in (r / "logs" / "metrics.csv").read_text().splitlines()] for r in (a, b)]
    return diff, rows[0] == rows[1]


def kill_trials(root: Path, trials: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    plans = scenarios(root)
    references, epoch_seconds = {}, {}
    for name, (args, env, _) in plans.items():
        references[name] = root / f"reference-{name}"
        assert run_cli(*args, "--out", references[name], env=env).returncode == 0
        rows = (references[name] / "logs" / "metrics.csv").read_text().splitlines()[1:]
        epoch_seconds[name] = sum(float(r.split(",")[-1]) for r in rows) / len(rows)
    results = []
    for trial in range(trials):
        name = "scratch" if trial % 2 == 0 else "finetune"
        args, env, epochs = plans[name]
        run = root / f"trial-{trial}"
        target = rng.randrange(epochs)  # kill during epoch `target`: mid-epoch or in its checkpoint write
        delay = rng.uniform(0, 1.5 * epoch_seconds[name])
        process = subprocess.Popen([*CLI, *map(str, args), "--out", str(run)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, env=env)
        while logged_epochs(run) < target and process.poll() is None:
            time.sleep(0.005)
        time.sleep(delay)
        logged_before_kill = logged_epochs(run)
        process.send_signal(signal.SIGKILL)
        process.wait()
        problems = intact(run) if (run / "config.json").exists() else []
        from cnnkit.training.phases import read_progress

        checkpoint = run / "checkpoints" / "last.ckpt"
        kept = len(read_progress(checkpoint).get("history") or []) if checkpoint.exists() and not problems else 0
        finished = (run / "config.json").exists() and json.loads((run / "config.json").read_text())["status"] == (
            "finished")
        if finished:  # the kill came after the end: nothing to resume
            resumed = subprocess.CompletedProcess([], 0, "", "")
        elif checkpoint.exists():
            resumed = run_cli("train", "--resume", run, env=env)
        else:  # killed before the first epoch ended: nothing to resume, the documented way out is --overwrite
            resumed = run_cli(*args, "--out", run, "--overwrite", env=env)
        diff, history_equal = same(references[name], run) if resumed.returncode == 0 else (float("nan"), False)
        results.append({"trial": trial, "scenario": name, "epoch": target, "delay_s": round(delay, 3),
                        "finished_before_kill": finished, "logged": logged_before_kill,
                        "kept": kept, "lost": max(0, logged_before_kill - kept), "corrupted": problems,
                        "resumed": resumed.returncode == 0, "max_weight_diff": diff, "history_equal": history_equal,
                        "traceback": "Traceback" in resumed.stderr})
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    return results


def catalogue(root: Path) -> list[dict]:
    """The bad inputs of issue 13, replayed through the command line."""
    data = write_image_folder(root / "cat-data", ["a", "b"], 8)
    run = root / "cat-run"
    assert run_cli("-q", "train", data, "--model", "tiny_cnn", "--epochs", "1", "--out", run).returncode == 0
    text = root / "note.png"
    text.write_text("not an image")
    write_image_folder(root / "empty-class", ["a"], 2)
    (root / "empty-class" / "b").mkdir()
    bad = {
        "--seed -1": ["train", data, "--seed", "-1"], "--lr nan": ["train", data, "--lr", "nan"],
        "--epochs 0": ["train", data, "--epochs", "0"], "--option filters=abc": ["train", data, "--option",
                                                                                  "filters=abc"],
        "--option dropout=2": ["train", data, "--model", "simple_cnn", "--option", "dropout=2"],
        "-k 0": ["similar", run, text, "-k", "0"], "--folds 1": ["baseline", data, "--method", "knn", "--folds", "1"],
        "--stride -4": ["scan", run, text, "--out", root / "s", "--stride", "-4"],
        "--tile 0": ["scan", run, text, "--out", root / "s", "--tile", "0"],
        "scan --detection-threshold -1": ["scan", run, text, "--out", root / "s", "--detection-threshold", "-1"],
        "scan --scale 100": ["scan", run, data / "a" / "a_000.png", "--out", root / "s", "--scale", "5000"],
        "--out under a file": ["evaluate", run, "--out", text / "x"],
        "--accelerator unknown": ["train", data, "--accelerator", "abacus"],
        "--accelerator cuda (absent)": ["train", data, "--accelerator", "cuda"],
        "features of a folder with an empty class": ["features", run, root / "empty-class", "--out", root / "f.npz"],
        "--resume with other options": ["train", "--resume", run, "--lr", "0.5"],
        "--image-size abc": ["train", data, "--image-size", "abc"],
    }
    out = []
    for name, args in bad.items():
        done = run_cli(*args, *(["--out", root / "o" / name.replace(" ", "_")] if args[0] == "train" and "--resume"
                                not in args else []))
        out.append({"case": name, "exit": done.returncode, "traceback": "Traceback" in done.stderr,
                    "message": (done.stderr.strip().splitlines() or [""])[-1][:140]})
    return out


def fuzz(root: Path, examples: int) -> dict:
    """Hypothesis: mutated image files through the decoder, random JSON through the run-folder reader."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from cnnkit.data.decode import load_image
    from cnnkit.errors import CnnkitError
    from cnnkit.inference import Predictor

    seeds = [(root / "cat-data" / "a" / "a_000.png").read_bytes()]
    from PIL import Image

    Image.new("RGB", (40, 30), (90, 20, 200)).save(root / "seed.jpg", quality=80)
    seeds.append((root / "seed.jpg").read_bytes())
    failures: list[str] = []
    counts = {"decoder": 0, "reader": 0}

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.sampled_from(seeds), st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=12),
           st.integers(0, 4000))
    def decoder(seed, flips, cut):
        data = bytearray(seed[: max(8, cut)] if cut < len(seed) else seed)
        for position, value in flips:
            if position < len(data):
                data[position] = value
        path = root / "fuzz.img"
        path.write_bytes(bytes(data))
        counts["decoder"] += 1
        try:
            load_image(path, (16, 16), 3)
        except CnnkitError:
            pass
        except Exception as e:  # noqa: BLE001
            failures.append(f"decoder {type(e).__name__}: {e}")

    json_values = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats() | st.text(),
                               lambda children: st.lists(children, max_size=4)
                               | st.dictionaries(st.text(max_size=12), children, max_size=5), max_leaves=20)
    valid = json.loads((root / "cat-run" / "config.json").read_text())

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.sampled_from(["model", "classes", "preprocessing", "training", "result", "decision", "data"]),
           json_values)
    def reader(key, value):
        run = root / "fuzz-run"
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(root / "cat-run", run)
        (run / "config.json").write_text(json.dumps({**valid, key: value}))
        counts["reader"] += 1
        try:
            Predictor.load(run)
        except CnnkitError:
            pass
        except Exception as e:  # noqa: BLE001
            failures.append(f"reader {key}={str(value)[:60]}: {type(e).__name__}: {e}")

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    decoder()
    after_decoder = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    reader()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"examples": counts, "failures": failures[:20], "failure_count": len(failures), "rss_before_mb": before,
            "peak_rss_decoder_mb": after_decoder, "peak_rss_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--fuzz", type=int, default=300, help="examples per fuzz target")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-faults"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    kills = kill_trials(args.out, args.kills, args.seed)
    bad = catalogue(args.out)
    fuzzed = fuzz(args.out, args.fuzz)
    (args.out / "results.json").write_text(json.dumps({"kills": kills, "catalogue": bad, "fuzz": fuzzed}, indent=1))
    print("| trials | resumed | equal weights (max diff < 1e-5) | equal history | corrupted | epochs lost (max) |")
    print("|---|---|---|---|---|---|")
    print(f"| {len(kills)} | {sum(k['resumed'] for k in kills)} | "
          f"{sum(k['max_weight_diff'] < 1e-5 for k in kills)} | {sum(k['history_equal'] for k in kills)} | "
          f"{sum(bool(k['corrupted']) for k in kills)} | {max(k['lost'] for k in kills)} |")
    print(f"\nBad-input catalogue: {len(bad)} cases, {sum(b['traceback'] for b in bad)} tracebacks, "
          f"{sum(b['exit'] == 0 for b in bad)} exit 0 (1: cnnkit's error; 2: a usage error from argparse)")
    for b in bad:
        print(f"- {b['case']}: exit {b['exit']}: {b['message']}")
    print(f"\nFuzz: {fuzzed['examples']} examples, {fuzzed['failure_count']} unexpected exceptions; peak RSS "
          f"{fuzzed['rss_before_mb']:.0f} MB before, {fuzzed['peak_rss_decoder_mb']:.0f} MB after the decoder fuzz, "
          f"{fuzzed['peak_rss_mb']:.0f} MB after the reader fuzz")
    for f in fuzzed["failures"]:
        print(f"- {f}")


if __name__ == "__main__":
    main()
