"""``cnnkit predict``, ``evaluate`` and ``compare``: use a trained run and read its scores."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from cnnkit._io import shown_paths
from cnnkit.cli.options import add_options, settings
from cnnkit.cli.train import scores
from cnnkit.errors import CnnkitError

log = logging.getLogger("cnnkit")


PREDICTION_COLUMNS = ("path", "class", "probability", "error")


def _open_output(path: str | None, classes: list[str], multi_label: bool = False):
    """A writer of predictions to ``path`` (.csv or .jsonl), row by row into a temporary file that replaces
    ``path`` when all are written; None without a path."""
    from cnnkit._io import StreamingOutput

    if path is None:
        return None
    if not path.endswith((".csv", ".jsonl")):
        raise CnnkitError(f"--out {path}: expected a .csv or .jsonl file.")
    columns = ("path", "labels", *PREDICTION_COLUMNS[2:]) if multi_label else PREDICTION_COLUMNS  # labels: a|b
    return StreamingOutput(path, header=[*columns, *classes] if path.endswith(".csv") else None)


def _row(p, classes: list[str], csv_out: bool, multi_label: bool):
    if csv_out:  # multi-label: the label column reads a|b, empty for none
        return [p.path, p.label, "" if p.error else f"{p.probability:.6f}", p.error or "",
                *(f"{p.probabilities[c]:.6f}" if not p.error else "" for c in classes)]
    decided = ({"labels": None if p.error else [c for c in p.label.split("|") if c]} if multi_label
               else {"class": p.label or None})
    return json.dumps({"path": p.path, **decided, "probability": None if p.error else p.probability,
                       "probabilities": p.probabilities or None, "error": p.error})


def _emit(p, out, args, classes: list[str], shown: int, multi_label: bool) -> None:
    """One prediction to ``--out``, or to stdout as a JSON array element or a tab-separated line."""
    if out is not None:
        out.write(_row(p, classes, args.out.endswith(".csv"), multi_label))
    elif args.json:  # one JSON array, written as the objects come
        print(("[" if shown == 0 else ",") + _row(p, classes, False, multi_label))
    else:
        label = "UNREADABLE" if p.error else p.label or "(none)"
        print(f"{p.path}\t{label}\t" + ("" if p.error else f"{p.probability:.4f}"))


def cmd_predict(args: argparse.Namespace) -> None:
    from cnnkit.config import PredictConfig
    from cnnkit.inference import Predictor

    config = settings(args, PredictConfig)
    backend = "torch" if config.backend == "auto" and config.tta > 1 else config.backend  # TTA runs in torch
    predictor = Predictor.load(args.run, backend=backend)
    out = _open_output(args.out, predictor.classes, predictor.multi_label)
    done, shown, bad = 0, 0, []
    # a bar redrawn on the terminal would cut into the rows printed there: only when rows go elsewhere
    progress = not args.quiet and (out is not None or not sys.stdout.isatty())
    with out if out is not None else _nothing():
        for p in predictor.iter_predictions(args.images, tta=config.tta, batch_size=config.batch_size,
                                            progress=progress):
            done += 1
            bad += [p.error] if p.error else []
            if not (p.error and config.skip_bad):
                _emit(p, out, args, predictor.classes, shown, predictor.multi_label)
                shown += 1
    if args.json and out is None and shown:
        print("]")
    for error in bad[:10]:
        log.warning("unreadable: %s", error)
    if len(bad) > 10:
        log.warning("... and %d more unreadable images%s", len(bad) - 10, f" (all in {args.out})" if args.out else "")
    log.info("%d of %d images predicted (%s backend)%s%s", done - len(bad), done, predictor.backend,
             f"; {len(bad)} unreadable" if bad else "", f"; written to {args.out}" if args.out else "")
    if not done or len(bad) == done:
        raise CnnkitError("No image could be read; nothing was predicted.")
    if bad and config.strict:
        raise CnnkitError(f"{len(bad)} of {done} images could not be read (strict).")


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def cmd_export(args: argparse.Namespace) -> None:
    from cnnkit.config import ExportConfig
    from cnnkit.export.run import export_run

    result = export_run(args.run, settings(args, ExportConfig))
    print(f"Exported {result.path} in {result.seconds:.1f} s; largest difference from torch "
          f"{result.max_difference:.2e} on {result.check_images}")
    if result.int8:
        q = result.int8
        print(f"int8: accuracy on the {q['split']} split {q['accuracy_int8']:.4f} against {q['accuracy_float']:.4f} "
              f"in float ({-q['points_lost']:+.1f} points on {q['images']} images); "
              + ("the int8 model is used" if q["used"] else "more than --tolerance: the float model is used"))


def _print_evaluation(evaluation) -> None:
    m = evaluation.metrics
    if m.get("codes_only"):  # an autoencoder: its codes' k-NN vote is all there is to score
        print(f"{shown_paths(m['data'])}: latent k-NN of the autoencoder's codes (k={m['knn']['k']}): "
              f"{scores({**m['knn'], 'n': m['n']})}")
        print(f"Metrics: {evaluation.metrics_path}")
        return
    print(f"{shown_paths(m['data'])}: {scores(m)}")
    if m["tta"]:
        t = m["tta"]
        print(f"With TTA x{t['n']}; without: accuracy {t['accuracy_without']:.4f}  balanced accuracy "
              f"{t['balanced_accuracy_without']:.4f}; time {t['time_ratio']:.1f}x "
              f"({m['inference_ms_per_image']:.2f} vs {t['ms_per_image_without']:.2f} ms per image)")
    if m.get("knn"):
        print(f"Latent k-NN (k={m['knn']['k']}): {scores({**m['knn'], 'n': m['n']})}")
    if m.get("thresholds"):
        print("Thresholds per class: " + ", ".join(f"{c} {v:.3f}" for c, v in m["thresholds"]["per_class"].items())
              + f" ({m['thresholds']['source']})")
    if m.get("threshold"):
        t = m["threshold"]
        print(f"Decision: '{t['positive_class']}' when its probability >= {t['value']:.4f} ({t['source']}; "
              f"stored in the run)")
    width = max(len(c) for c in m["classes"])
    print(f"{'class'.ljust(width)}  precision  recall      f1  support")
    for name, s in m["per_class"].items():
        print(f"{name.ljust(width)}  {s['precision']:9.3f}  {s['recall']:6.3f}  {s['f1']:6.3f}  {s['support']:7d}")
    for pair in m.get("most_confused", [])[:3]:
        print(f"confused: {pair['true']} -> {pair['predicted']} ({pair['count']} image"
              f"{'' if pair['count'] == 1 else 's'})")
    print(f"Report: {evaluation.report_path}  (metrics: {evaluation.metrics_path})")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from cnnkit.config import DecisionConfig, EvaluateConfig
    from cnnkit.evaluation.evaluate import evaluate_run
    from cnnkit.evaluation.threshold import store_threshold

    decision = settings(args, DecisionConfig)
    if decision.decision_threshold is not None or decision.choose_threshold:
        store_threshold(args.run, decision.decision_threshold, decision.choose_threshold)
    _print_evaluation(evaluate_run(args.run, data=args.data, out=args.out, config=settings(args, EvaluateConfig)))


def cmd_compare(args: argparse.Namespace) -> None:
    from cnnkit._io import write_text
    from cnnkit.evaluation.compare import compare_runs, render_compare_html, render_compare_text

    rows = compare_runs(args.runs)
    print(render_compare_text(rows))
    from pathlib import Path

    write_text(args.out, render_compare_html(rows, base=Path(args.out).resolve().parent))
    print(f"Written to {args.out}")


def register(sub) -> None:
    from cnnkit.config import DecisionConfig, EvaluateConfig, ExportConfig, PredictConfig

    p = sub.add_parser("predict", help="class and probability for each image")
    p.add_argument("run", help="run folder")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout: a JSON array, one object per image")
    p.add_argument("--out", help="write the predictions to this .csv or .jsonl file as they come (all classes' "
                                 "probabilities; unreadable images with their error)")
    add_options(p, PredictConfig, grouped=False)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="write the run's network as ONNX (RUN/export/), checked against torch")
    p.add_argument("run", help="run folder")
    add_options(p, ExportConfig, grouped=False)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("evaluate", help="metrics on the run's test split or on --data")
    p.add_argument("run", help="run folder")
    p.add_argument("--data", help="another labelled folder (its test/ split if it has one)")
    p.add_argument("--out", help="folder for metrics.json and report.html (default: the run, or RUN/eval-FOLDER "
                                 "for --data)")
    add_options(p, DecisionConfig, grouped=False)
    add_options(p, EvaluateConfig, grouped=False)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="side-by-side table of runs evaluated on the same test set")
    p.add_argument("runs", nargs="+", help="run folders (or evaluation folders holding metrics.json)")
    p.add_argument("--out", default="compare.html", help="HTML table to write (default compare.html)")
    p.set_defaults(func=cmd_compare)
