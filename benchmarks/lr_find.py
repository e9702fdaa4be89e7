"""The learning-rate finder's rules against a grid of fixed rates: which one lands within the best third?

    python benchmarks/lr_find.py --hymenoptera ../shared/data/hymenoptera --out /tmp/cnnkit-lr-find --epochs 3

For each data set, ``lr_find`` runs with the default sweep (1e-7 to 10, 100 batches) for each seed; then the same
model is trained at 7 fixed rates, log-spaced from 1e-4 to 1, for the same epochs, 3 seeds each (2 for digits, the
slowest, with ``--two-seeds digits``), with everything else at train's defaults (Adam, cosine schedule, early
stopping). Per rate: the median over seeds of the validation accuracy of the kept epoch. The best third of the grid
is the 3 rates of 7 with the highest median (ties included). Every rule of ``lr_find.RULES`` is read off the same
sweeps; a rule's rate is the median (in log) over the sweeps' seeds, and it lands in the best third when the grid
rate nearest to it (in log) is one of them; each single sweep's rate is counted too (a user runs one). Everything measured goes to ``OUT/results.json``; ``--table`` prints the
table again from it, without training.

Data sets: digits (built-in, 8x8, 10 classes) and wafers (built-in, balanced, 40 per class) with simple_cnn from scratch;
hymenoptera (validation carved from train/, its val/ as the unused test split) with efficientnet_lite0
pretrained, transfer, the head trained by epochs on cached features (what the suggested command line asks for).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

GRID = [float(f"{r:.2g}") for r in np.geomspace(1e-4, 1.0, 7)]


def data_sets(args) -> dict[str, tuple[Path, dict]]:
    from cnnkit.data.builtin import export_dataset

    sets = {}
    for name, size in (("digits", None), ("wafers", 40)):
        folder = args.out / "data" / name
        if not folder.exists():
            export_dataset(name, folder, size=size, balanced=size is not None)
        sets[name] = (folder, {"model": "simple_cnn", "epochs": args.epochs})
    hymenoptera = args.out / "data" / "hymenoptera"
    if not hymenoptera.exists():
        hymenoptera.mkdir(parents=True)
        (hymenoptera / "train").symlink_to(args.hymenoptera.resolve() / "train")
        (hymenoptera / "test").symlink_to(args.hymenoptera.resolve() / "val")
    sets["hymenoptera"] = (hymenoptera, {"model": "efficientnet_lite0", "pretrained": True, "head_solver": "epochs",
                                         "epochs": args.epochs, "skip_bad": True})
    return sets


def measure(name: str, data: Path, settings: dict, seeds: list[int], args) -> dict:
    from cnnkit.training.fit import train
    from cnnkit.training.lr_find import lr_find

    start = time.perf_counter()
    sweeps = [lr_find(data, args.out / "sweeps" / f"{name}-{seed}", seed=seed, progress=False, **settings)
              for seed in seeds]
    sweep_seconds = (time.perf_counter() - start) / len(sweeps)
    accuracy = {}
    for rate in GRID:
        scores = []
        for seed in seeds:
            run = train(data, args.out / "runs" / f"{name}-{rate:g}-{seed}", lr=rate, seed=seed, progress=False,
                        overwrite=True, **settings)
            scores.append(run.record.result.best_val_acc)
        accuracy[str(rate)] = float(np.median(scores))
        print(json.dumps({name: {"lr": rate, "val_acc": scores}}), flush=True)
    return {"model": settings["model"], "seeds": seeds, "accuracy": accuracy, "sweep_seconds": round(sweep_seconds, 1),
            "sweeps": [{"suggestion": s.suggestion, "diverged_at": s.diverged_at, "lrs": list(s.lrs),
                        "smoothed_losses": list(s.smoothed_losses)} for s in sweeps]}


def rule_rates(measured: dict) -> dict[str, list[float]]:
    """Each rule's rate per sweep, from the batches before the divergence."""
    from cnnkit.training.lr_find import candidate_rates

    per_sweep = [candidate_rates(s["lrs"][:s["diverged_at"]], s["smoothed_losses"][:s["diverged_at"]])
                 for s in measured["sweeps"]]
    return {rule: [rates[rule] for rates in per_sweep] for rule in per_sweep[0]}


def nearest(rate: float) -> float:
    return min(GRID, key=lambda r: abs(math.log(r / rate)))


def table(results: dict) -> None:
    print("\n| data, model | " + " | ".join(f"{r:g}" for r in GRID) + " | sweep (s) |")
    print("|---" * (len(GRID) + 2) + "|")
    best = {}
    for name, measured in results.items():
        accuracy = {float(r): a for r, a in measured["accuracy"].items()}
        third = sorted(accuracy.values(), reverse=True)[math.ceil(len(GRID) / 3) - 1]
        best[name] = [r for r in GRID if accuracy[r] >= third]
        cells = " | ".join(f"**{accuracy[g]:.3f}**" if g in best[name] else f"{accuracy[g]:.3f}" for g in GRID)
        print(f"| {name}, {measured['model']} ({len(measured['seeds'])} seeds) | {cells} | "
              f"{measured['sweep_seconds']} |")
    rates = {name: rule_rates(measured) for name, measured in results.items()}
    print("\n| rule | " + " | ".join(results) + " | lands (median rate) | lands (single sweeps) |")
    print("|---" * (len(results) + 3) + "|")
    for rule in next(iter(rates.values())):
        cells, lands, single, sweeps = [], 0, 0, 0
        for name in results:
            per_seed = rates[name][rule]
            rate = float(np.exp(np.median(np.log(per_seed))))
            hit = nearest(rate) in best[name]
            lands += hit
            single += sum(nearest(r) in best[name] for r in per_seed)
            sweeps += len(per_seed)
            cells.append(f"{rate:.2g} ({', '.join(f'{r:g}' for r in per_seed)}): "
                         f"{'**yes**' if hit else 'no'} ({nearest(rate):g})")
        print(f"| {rule} | " + " | ".join(cells) + f" | {lands} of {len(results)} | {single} of {sweeps} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hymenoptera", type=Path, default=Path("../shared/data/hymenoptera"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-lr-find"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--two-seeds", nargs="*", default=["digits"], help="data sets run with the first 2 seeds")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="data sets to run (default all)")
    parser.add_argument("--table", action="store_true", help="print the table from OUT/results.json; train nothing")
    args = parser.parse_args()
    if args.table:
        table(json.loads((args.out / "results.json").read_text()))
        return
    results = {}
    sets = data_sets(args)
    for name in sorted(sets, key=lambda n: n in args.two_seeds):  # the slowest last
        data, settings = sets[name]
        if args.only and name not in args.only:
            continue
        seeds = args.seeds[:2] if name in args.two_seeds else args.seeds
        results[name] = measure(name, data, settings, seeds, args)
        (args.out / "results.json").write_text(json.dumps(results))
    table(results)


if __name__ == "__main__":
    main()
