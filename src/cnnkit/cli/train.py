"""``cnnkit train``, ``demo`` and ``baseline``: make a run, score its test split, print one screen."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cnnkit.cli.options import add_options, settings, values
from cnnkit.errors import CnnkitError

log = logging.getLogger("cnnkit")


def scores(m: dict) -> str:
    auc = "" if m.get("auc") is None else f"  AUC {m['auc']:.4f}"
    if m.get("multi_label"):
        return (f"exact-set accuracy {m['accuracy']:.4f}  samples F1 {m['samples_f1']:.4f}  macro F1 "
                f"{m['macro_f1']:.4f}  mean AP {m['mean_average_precision'] or 0:.4f}{auc}  (n={m['n']})")
    return (f"accuracy {m['accuracy']:.4f}  balanced accuracy {m['balanced_accuracy']:.4f}  "
            f"macro F1 {m['macro_f1']:.4f}{auc}  (n={m['n']})")


def _phases(record) -> list[tuple[str, str]]:
    """For transfer and fine-tuning: the phases and the feature cache, one line."""
    if record.strategy in ("scratch", "baseline") or not record.result:
        return []
    text = " + ".join(f"{p.name} solved (L-BFGS)" if p.solver else f"{p.name} {p.epochs_run} epochs"
                      for p in record.result.phases)
    cache = record.feature_cache
    if cache and cache.used:
        text += f"; feature cache: {cache.computed} computed, {cache.reused} reused"
    rows = [("Phases", text)]
    phases = record.result.phases
    if phases[-1].fallback:
        rows.append(("Fine-tuning", "did not beat the solved head's validation accuracy: the run keeps the head on "
                                    "the pretrained backbone, re-solved on train+val (what --strategy transfer gives)"))
    elif len(phases) > 1 and record.result.best_epoch < phases[0].epochs_run:
        rows.append(("Fine-tuning", "did not lower the validation loss of the head; the head's weights are kept"))
    elif len(phases) > 1:
        rows.append(("Fine-tuning", "kept: its validation accuracy beats the solved head's"))
    return rows


def _head_rows(record, improving: bool = False) -> list[tuple[str, str]]:
    """The kept epoch, or for a head solved to the optimum, how; ``improving``: the validation loss was still
    falling at the end."""
    result = record.result
    solver = next((p.solver for p in reversed(result.phases) if p.solver), None)
    rows = []
    if solver:
        rows.append(("Head", f"fitted to the optimum (L-BFGS, C={solver.C:.3g} by cross-validation on "
                             f"train+val among {len(solver.grid)}, fitted on {solver.fitted_on})"
                             + ("; features averaged with the mirror image's (better by cross-validation)"
                                if solver.flip_average else "")
                             + ("" if solver.converged else "; not converged")))
        if result.epochs_run == 1 or result.phases[-1].fallback:
            return rows + [("Time", f"trained in {result.train_seconds:.1f} s")]
    rows.append(("Best epoch", f"{result.best_epoch + 1} of {result.epochs_run} (its weights are kept), trained in "
                               f"{result.train_seconds:.1f} s" + ("; the validation loss was still falling (over 5% "
                                                                   "in the last quarter of the epochs): more epochs "
                                                                   "may help" if improving else "")))
    return rows


def _pool_rows(record) -> list[tuple[str, str]]:
    """What the pool of unlabelled images did (``unlabelled``), one line."""
    pool = next((p.solver.self_training for p in record.result.phases if p.solver and p.solver.self_training), None)
    if pool is None:
        return []
    if pool.kept:
        plain, kept = pool.rounds[0].val_accuracy, pool.rounds[pool.kept_rounds].val_accuracy
        return [("Pool", f"{pool.images:,} images, {pool.kept_rounds} round{'' if pool.kept_rounds == 1 else 's'}, "
                         f"{pool.pseudo_labels:,} pseudo-labels; validation {plain:.2f} -> {kept:.2f}, kept")]
    tried = max(r.pseudo_labels for r in pool.rounds)
    return [("Pool", f"{pool.images:,} images, {len(pool.rounds) - 1} rounds tried, up to {tried:,} pseudo-labels; "
                     f"{pool.reason}")]


def _test_rows(evaluation) -> list[tuple[str, str]]:
    if evaluation is None:
        return [("Test", "No test split (the data folder has train/ but no test/): nothing held out was scored; "
                         "use `cnnkit evaluate RUN --data FOLDER`")]
    m = evaluation.metrics
    if m.get("split") == "val":
        return [("Test", "No test split (the data folder has train/ but no test/): nothing held out was scored; "
                         "use `cnnkit evaluate RUN --data FOLDER`"),
                ("Report", f"{evaluation.report_path} (on the validation split, which chose the weights: "
                           "optimistic)")]
    worst = min(m["per_class"].items(), key=lambda item: (item[1]["support"] == 0, item[1]["recall"]))
    return [("Test", scores(m)),
            ("Weakest class", f"{worst[0]}: recall {worst[1]['recall']:.3f} of {worst[1]['support']} image"
                              f"{'' if worst[1]['support'] == 1 else 's'}"),
            ("Report", str(evaluation.report_path))]


def _data_rows(record) -> list[tuple[str, str]]:
    """Copies of one image labelled differently: named, since no label of theirs can be trusted."""
    groups = record.data.conflicting if record.data else ()
    if not groups:
        return []
    shown = "; ".join(" = ".join(group) for group in groups[:3]) + (" ..." if len(groups) > 3 else "")
    return [("Copies", f"{len(groups)} group{'s' if len(groups) > 1 else ''} of identical images labelled "
                       f"differently: {shown} (each group sits in one split; `--dedupe` leaves them out)")]


def print_summary(trained, evaluation) -> None:
    """The one-screen summary at the end of training."""
    result, run_dir = trained.record.result, trained.run_dir
    rows = [("Run folder", str(run_dir))]
    if trained.record.training is None:  # a baseline or a probe: cross-validated, no epochs
        rows.append(("CV accuracy", f"{result.best_val_acc:.4f} (train+val, {trained.record.cross_validation.folds}"
                                    f" folds), fitted in {result.train_seconds:.1f} s"))
    else:
        from cnnkit.evaluation.history import read_history, still_improving

        history = read_history(Path(run_dir) / "logs" / "metrics.csv")
        improving = still_improving(history) and not any(p.solver for p in result.phases)
        rows += [*_head_rows(trained.record, improving),
                 *_phases(trained.record), *_pool_rows(trained.record),
                 ("Validation", f"loss {result.best_val_loss:.4f}"
                  + (f"  {'per-label accuracy (at 0.5)' if trained.record.multi_label else 'accuracy'} "
                     f"{result.best_val_acc:.4f}" if result.best_val_acc is not None else ""))]
    rows += _test_rows(evaluation)
    rows += _data_rows(trained.record)
    rows.append(("Next", f"cnnkit predict {run_dir} IMAGES...  |  cnnkit evaluate {run_dir} --data DIR"))
    if trained.record.recipe is None and not trained.record.multi_label:
        rows.append(("Better?", "cnnkit train DATA --auto  (within a time budget: the probe, transfer on more "
                                "backbones, fine-tuning, a scratch CNN for small gray images; kept on validation)"))
    print()
    for name, text in rows:
        print(f"{name:<14}{text}")


def finish(trained) -> None:
    """Score the test split once (when there is one) and print the one-screen summary."""
    from cnnkit.evaluation.evaluate import evaluate_test_split

    if trained.record.reconstructs:  # an autoencoder: reconstruction errors, not accuracies
        from cnnkit.cli.anomaly import print_autoencoder_summary

        return print_autoencoder_summary(trained, _head_rows(trained.record))

    print_summary(trained, evaluate_test_split(trained.run_dir))


def train_config(args: argparse.Namespace, **extra):
    from cnnkit.config import TrainConfig, parse_head

    config = settings(args, TrainConfig, **extra)
    head = parse_head(getattr(args, "head", None))
    return config.replace(model_options={**head, **config.model_options}) if head else config


def cmd_train(args: argparse.Namespace) -> None:
    from cnnkit.training.fit import resume, train

    from cnnkit.config import TrainConfig

    if args.auto:
        return _auto(args)
    if args.budget is not None:
        raise CnnkitError("--budget is the time of --auto; add --auto, or drop --budget.")
    if args.resume:
        if args.data or args.out or args.overwrite:
            raise CnnkitError("--resume RUN continues RUN from its own data and folder; drop DATA, --out and "
                              "--overwrite, or train afresh without --resume.")
        trained = resume(args.resume, progress=not (args.no_progress or args.quiet), changes=values(args, TrainConfig))
    else:
        if not args.data:
            raise CnnkitError("cnnkit train needs a DATA folder (or --resume RUN).")
        from cnnkit.training.defaults import choose_model

        config = choose_model(args.data, train_config(args))
        out = args.out or Path("runs") / f"{Path(args.data).resolve().name}-{config.model}"
        trained = train(args.data, out, config, progress=not (args.no_progress or args.quiet), overwrite=args.overwrite)
    from cnnkit.training.distributed import is_main

    if trained.record.finds_points:
        from cnnkit.cli.points import print_points_summary

        return print_points_summary(trained)
    if is_main(trained.record.training.devices):  # the other processes of a distributed training stop here
        finish(trained)


def _auto(args: argparse.Namespace) -> None:
    from cnnkit.recipes import auto_train

    if args.resume or not args.data:
        raise CnnkitError("--auto trains afresh on a DATA folder; drop --resume and give DATA.")
    out = args.out or Path("runs") / f"{Path(args.data).resolve().name}-auto"
    trained = auto_train(args.data, out, train_config(args), budget=args.budget or "10m",
                         progress=not (args.no_progress or args.quiet), overwrite=args.overwrite)
    print_leaderboard(trained.record.recipe)
    kept = trained.record.recipe.kept
    print(f"Reproduce the kept recipe ({kept}): {reproduce_command(args.data, Path(out) / 'candidates' / kept)}")
    finish(trained)


def reproduce_command(data: str, run_dir: Path) -> str:
    """The one command that trains the recipe of ``run_dir`` (an --auto candidate) again, on the same split: its
    settings that differ from the defaults, as flags (a baseline's as `cnnkit baseline`)."""
    import shlex
    from dataclasses import fields

    from cnnkit.cli.tuning import train_flags
    from cnnkit.config import BaselineConfig, TrainConfig
    from cnnkit.run import RunFolder

    record = RunFolder(run_dir).read_record()
    if record.training is None:
        settings, cls, head = record.baseline, BaselineConfig, ["cnnkit", "baseline", data]
    else:
        settings, cls, head = record.training, TrainConfig, ["cnnkit", "train", data]
    default = cls()
    changed = {f.name: getattr(settings, f.name) for f in fields(cls)
               if getattr(settings, f.name) != getattr(default, f.name) and f.name not in ("strategy", "finetune_lr")
               or f.name == "strategy" and settings.strategy == "finetune"}
    if cls is TrainConfig:
        return f"{shlex.join(head)} {train_flags({'model': settings.model, **changed})}"
    flags = [(f"--{k.replace('_', '-')}", "x".join(map(str, v)) if k == "image_size" else str(v))
             for k, v in changed.items() if k != "method"]
    return shlex.join([*head, "--method", settings.method, *(w for pair in flags for w in pair)])


def print_leaderboard(recipe) -> None:
    """The candidates of --auto (a ``run.results.Recipe``), best first, with their validation scores and times."""
    print(f"\nRecipes tried ({recipe.seconds:.0f} s of a {recipe.budget_seconds:.0f} s budget; ranked by "
          "validation accuracy, the test split untouched):")
    for e in recipe.ranked():
        score = f"{e.val_accuracy:.4f} ({e.validated_by})" if e.val_accuracy is not None else e.note or ""
        time_text = f"{e.seconds:6.1f} s" if e.seconds is not None else "       -"
        print(f"  {e.name:<28} {e.status:<8} {time_text}  {score}")


def cmd_baseline(args: argparse.Namespace) -> None:
    from cnnkit.baselines.fit import train_baseline
    from cnnkit.config import BaselineConfig

    config = settings(args, BaselineConfig)
    out = args.out or Path("runs") / f"{Path(args.data).resolve().name}-baseline-{config.method}"
    trained = train_baseline(args.data, out, config)
    finish(trained)


def training_options(p: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    from cnnkit.config import TrainConfig
    from cnnkit.config.training import BACKBONE

    groups = add_options(p, TrainConfig, defaults=defaults)
    groups[BACKBONE].add_argument("--head", metavar="SPEC", help='the new head of a backbone, e.g. '
                                  '"dropout=0.5,hidden=0" (default dropout=0.2, no hidden layer); same as --option')
    p.add_argument("--no-progress", action="store_true", help="no progress bar on a terminal, no per-epoch lines in "
                                                              "a log (-q also silences them)")


def register(sub) -> None:
    p = sub.add_parser("train", help="train on DATA (root/<class>/*, root/{train,val,test}/<class>/*, or a CSV "
                                     "path,label[,split]; labels a|b: multi-label)")
    p.add_argument("data", nargs="?", help="data folder, or a CSV with columns path,label[,split]")
    p.add_argument("--out", help="run folder to create (default runs/DATA-MODEL)")
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run from its last checkpoint (its "
                                                   "settings; only --epochs and --finetune-epochs may be raised)")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --out (its run files only)")
    p.add_argument("--auto", action="store_true", help="try the linear probe, transfer (on each offline backbone "
                                                       "installed, and their features concatenated), fine-tuning (and "
                                                       "a scratch CNN for small grayscale images) within --budget, "
                                                       "keep the best on validation data (all stay in OUT/candidates)"
                                                       )
    p.add_argument("--budget", metavar="TIME", help="--auto's time, e.g. 90s, 10m, 1h (default 10m)")
    training_options(p)
    p.set_defaults(func=cmd_train)

    from cnnkit.config import BaselineConfig

    p = sub.add_parser("baseline", help="a classical baseline on the same split: k-NN or softmax on pixels, or "
                                        "hand-crafted features")
    p.add_argument("data", help="data folder (as for train)")
    p.add_argument("--out", help="run folder (default runs/DATA-baseline-METHOD)")
    add_options(p, BaselineConfig, grouped=False, required=("method",))
    p.set_defaults(func=cmd_baseline)
