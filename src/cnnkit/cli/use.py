"""``cnnkit predict``, ``evaluate`` and ``compare``: use a trained run and read its scores."""

from __future__ import annotations

import argparse
import json

from cnnkit.cli.options import add_options, settings
from cnnkit.cli.train import scores
from cnnkit.errors import CnnkitError


def cmd_predict(args: argparse.Namespace) -> None:
    from cnnkit.config import PredictConfig
    from cnnkit.inference import Predictor

    config = settings(args, PredictConfig)
    predictions = Predictor.load(args.run).predict(args.images, tta=config.tta, skip_bad=config.skip_bad)
    if not predictions:
        raise CnnkitError("No image could be read; nothing was predicted.")
    if args.json:
        print(json.dumps([{"path": p.path, "class": p.label, "probability": p.probability,
                           "probabilities": p.probabilities} for p in predictions], indent=2))
        return
    width, label_width = max(len(p.path) for p in predictions), max(len(p.label) for p in predictions)
    for p in predictions:
        print(f"{p.path.ljust(width)}  {p.label.ljust(label_width)}  {p.probability:.4f}")


def _print_evaluation(evaluation) -> None:
    m = evaluation.metrics
    print(f"{m['data']}: {scores(m)}")
    if m["tta"]:
        t = m["tta"]
        print(f"With TTA x{t['n']}; without: accuracy {t['accuracy_without']:.4f}  balanced accuracy "
              f"{t['balanced_accuracy_without']:.4f}; time {t['time_ratio']:.1f}x "
              f"({m['inference_ms_per_image']:.2f} vs {t['ms_per_image_without']:.2f} ms per image)")
    if m.get("knn"):
        print(f"Latent k-NN (k={m['knn']['k']}): {scores({**m['knn'], 'n': m['n']})}")
    if m["threshold"]:
        t = m["threshold"]
        print(f"Decision: '{t['positive_class']}' when its probability >= {t['value']:.4f} ({t['source']}; "
              f"stored in the run)")
    width = max(len(c) for c in m["classes"])
    print(f"{'class'.ljust(width)}  precision  recall      f1  support")
    for name, s in m["per_class"].items():
        print(f"{name.ljust(width)}  {s['precision']:9.3f}  {s['recall']:6.3f}  {s['f1']:6.3f}  {s['support']:7d}")
    for pair in m["most_confused"][:3]:
        print(f"confused: {pair['true']} -> {pair['predicted']} ({pair['count']} images)")
    print(f"Report: {evaluation.report_path}  (metrics: {evaluation.metrics_path})")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from cnnkit.config import DecisionConfig, EvaluateConfig
    from cnnkit.evaluation.evaluate import evaluate_run
    from cnnkit.evaluation.threshold import store_threshold

    decision = settings(args, DecisionConfig)
    if decision.threshold is not None or decision.choose_threshold:
        store_threshold(args.run, decision.threshold, decision.choose_threshold)
    _print_evaluation(evaluate_run(args.run, data=args.data, out=args.out, config=settings(args, EvaluateConfig)))


def cmd_compare(args: argparse.Namespace) -> None:
    from cnnkit._io import write_text
    from cnnkit.evaluation.compare import compare_runs, render_compare_html, render_compare_text

    rows = compare_runs(args.runs)
    print(render_compare_text(rows))
    write_text(args.out, render_compare_html(rows))
    print(f"Written to {args.out}")


def register(sub) -> None:
    from cnnkit.config import DecisionConfig, EvaluateConfig, PredictConfig

    p = sub.add_parser("predict", help="class and probability for each image")
    p.add_argument("run", help="run folder")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_options(p, PredictConfig, grouped=False)
    p.set_defaults(func=cmd_predict)

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
