"""The learning-rate finder's rules against a grid of fixed rates: which one lands within the best third?

    python benchmarks/lr_find.py --hymenoptera ../shared/data/hymenoptera --out /tmp/cnnkit-lr-find --epochs 3

For each data set, ``lr_find`` runs with the default sweep (1e-7 to 10, 100 batches) for each seed; then the same
model is trained at 7 fixed rates, log-spaced from 1e-4 to 1, for the same epochs, 3 seeds each (2 for digits, the
slowest, with ``--two-seeds digits``), with everything else at train's defaults (Adam, cosine schedule, early
stopping). Per rate: the median over seeds of the validation accuracy of the kept epoch. The best third of the grid
is the 3 rates of 7 with the highest median (ties included). Every rule of ``lr_find.RULES`` is read off the same
sweeps; a rule's rate is the median (in log) over the sweeps' seeds, and it lands in the best third when the grid
rate nearest to it (in log) is one of them; each single sweep's rate is counted too (a user runs one). Everything
measured goes to ``OUT/results.json``; ``--table`` prints the tables again from it, without training, and
``--results`` writes them to benchmarks/results/lr_find.json (``--table --results`` does so without training).

Data sets: digits (built-in, 8x8, 10 classes) and wafers (built-in, balanced, 40 per class) with simple_cnn from scratch;
hymenoptera (validation carved from train/, its val/ as the unused test split) with efficientnet_lite0
pretrained, transfer, the head trained by epochs on cached features (what the suggested command line asks for).

Data, not in this repository: hymenoptera, the ants-and-bees set of PyTorch's transfer-learning tutorial
(https://download.pytorch.org/tutorial/hymenoptera_data.zip, unzipped: train/ and val/), by default in
../shared/data/hymenoptera. Without it the script says so in one line and exits 0. `--only digits wafers` needs no data.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from _data import HYMENOPTERA, missing_made
from _report import table_lines
from _results import add_option, command_line, record

GRID = [float(f"{r:.2g}") for r in np.geomspace(1e-4, 1.0, 7)]
RULE_CELL = "{rate:g} ({seeds:g}): {lands} ({grid:g})"  # a rule's rate (each seed's): lands? (the nearest grid rate)


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


def label(rate: float) -> str:
    """A grid rate as the tables write it: 1e-4, 4.6e-4, ..., 0.22, 1."""
    if rate >= 0.1:
        return f"{rate:g}"
    mantissa, exponent = f"{rate:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def tables(results: dict, suggestion: str | None = None) -> list[dict]:
    """The grid's accuracies and each rule's rates, as the results file's two tables; `suggestion`: the rule whose
    rate lr_find suggests (default: cnnkit's)."""
    if suggestion is None:
        from cnnkit.training.lr_find import RULE as suggestion

    grid, best = [], {}
    for name, measured in results.items():
        accuracy = {float(r): a for r, a in measured["accuracy"].items()}
        third = sorted(accuracy.values(), reverse=True)[math.ceil(len(GRID) / 3) - 1]
        best[name] = [r for r in GRID if accuracy[r] >= third]
        grid.append({"data": f"{name}, {measured['model']} ({len(measured['seeds'])} seeds)",
                     **{label(g): round(accuracy[g], 3) for g in GRID}, "best_third": best[name],
                     "sweep_s": measured["sweep_seconds"]})
    rates = {name: rule_rates(measured) for name, measured in results.items()}
    rules = []
    for rule in next(iter(rates.values())):
        row, lands, single, sweeps = {"rule": rule + (" (the suggestion)" if rule == suggestion else "")}, 0, 0, 0
        for name in results:
            per_seed = rates[name][rule]
            rate = float(f"{np.exp(np.median(np.log(per_seed))):.2g}")
            row[name] = {"rate": rate, "seeds": per_seed, "lands": nearest(rate) in best[name],
                         "grid": nearest(rate)}
            lands += row[name]["lands"]
            single += sum(nearest(r) in best[name] for r in per_seed)
            sweeps += len(per_seed)
        rules.append({**row, "median_lands": {"n": lands, "of": len(results)},
                      "single_lands": {"n": single, "of": sweeps}})
    return [{"id": "grid", "columns": [{"key": "data", "label": "data, model"},
                                       *[{"key": label(g), "label": label(g), "format": "{:.3f}"} for g in GRID],
                                       {"key": "best_third", "label": "best third", "format": "{:g}", "join": ", "},
                                       {"key": "sweep_s", "label": "sweep (s)", "format": "{:.1f}"}],
             "rows": grid},
            {"id": "rules", "columns": [{"key": "rule", "label": "rule"},
                                        *[{"key": name, "label": name, "format": RULE_CELL} for name in results],
                                        *[{"key": f"{kind}_lands", "label": f"lands ({words})", "format": "{n} of {of}"}
                                          for kind, words in (("median", "median rate"), ("single", "single sweeps"))]],
             "rows": rules}]


def report(results: dict, args) -> None:
    """Print the two tables; with --results, write them to the results file."""
    found = tables(results)
    for table in found:
        print("\n" + "\n".join(table_lines(table)))
    if args.results:
        record(args.results, "lr_find", found, command_line(__file__))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hymenoptera", type=Path, default=HYMENOPTERA.default)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-lr-find"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--two-seeds", nargs="*", default=["digits"], help="data sets run with the first 2 seeds")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="data sets to run (default all)")
    parser.add_argument("--table", action="store_true", help="print the table from OUT/results.json; train nothing")
    add_option(parser, "lr_find")
    args = parser.parse_args()
    if args.table and missing_made(args.out, "python benchmarks/lr_find.py (without --table)", "results.json"):
        return
    if not args.table and (not args.only or "hymenoptera" in args.only) and HYMENOPTERA.missing(
            args.hymenoptera, "--hymenoptera"):
        return
    if args.table:
        report(json.loads((args.out / "results.json").read_text()), args)
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
    report(results, args)


if __name__ == "__main__":
    main()
