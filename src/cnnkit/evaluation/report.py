"""``report.html``: one self-contained page (inline CSS, images embedded as data URIs, no external links)."""

from __future__ import annotations

import base64
from dataclasses import replace
from html import escape

from cnnkit._io import shown_path, shown_paths
from cnnkit.run.results import SolverResult

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;
color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f4f4f4}
.headline td{font-size:1.15em}.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em 1em}
img{max-width:100%;height:auto}.muted{color:#777}.wide{overflow-x:auto}
"""

SECTIONS = ("summary", "settings", "per-class", "confusion-matrix", "roc", "mistakes", "training-curves")


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="wide"><table><tr>{head}</tr>{body}</table></div>'


def _image(png: bytes | None, alt: str, missing: str | None = None) -> str:
    """The figure with ``alt`` describing it, or a line saying why there is none (``missing``, default ``alt``)."""
    if not png:
        return f'<p class="muted">No figure: {escape(missing or alt)}.</p>'
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _fmt(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _baseline_rows(record, metrics: dict) -> list[list[str]]:
    cv, result = record.cross_validation, record.result
    rows = [["model", f"{record.model.name}: {record.model.params}"],
            ["stored numbers", f"{metrics.get('parameters', 0):,}"]]
    if cv is not None:
        rows.append(["cross-validation", f"{cv.folds} stratified folds on {cv.samples} train+val images, "
                                         f"{cv.candidates} candidates; best {cv.best} (accuracy "
                                         f"{cv.cv_accuracy:.4f}); the test split was not used"])
    rows.append(["fitting time", f"{result.train_seconds if result else 0:.1f} s"])
    return rows


def _data_row(record, seed) -> list[str]:
    data = record.data
    where = f"{shown_path(data.root)} ({data.layout} layout)" if data else "unknown"
    return ["data", f"{where}, split seed {seed}"]


def _network_rows(record, metrics: dict) -> list[list[str]]:
    training, model, pre = record.training, record.model, record.preprocessing
    result = record.result
    options = ", ".join(f"{k}={v}" for k, v in model.options.items()) or "defaults"
    return [
        ["model", f"{model.name} ({options}), init {model.init}"],
        ["parameters", f"{metrics.get('parameters', 0):,}"],
        ["input", f"{pre.channels} channel(s), {'x'.join(map(str, pre.image_size))} pixels"],
        ["optimizer", f"{training.optimizer}, lr {training.lr}, weight decay {training.weight_decay}, batch "
                      f"{training.batch_size}, scheduler {training.scheduler}"],
        ["epochs", f"{result.epochs_run if result else '?'} run of {training.epochs} (early stopping patience "
                   f"{training.early_stopping}); weights kept from epoch "
                   f"{((result.best_epoch if result else None) or 0) + 1}"],
        ["augmentation", f"{training.augment or 'none'}; mixup {training.mixup}, cutmix {training.cutmix}; balance "
                         f"{record.balance.mode}"],
        ["training time", f"{result.train_seconds if result else 0:.1f} s"],
        ["inference", f"{metrics.get('inference_ms_per_image', 0):.2f} ms per image"],
        _data_row(record, training.seed),
    ]


def _transfer_rows(record) -> list[list[str]]:
    phases = ", ".join((f"{p.name} fitted to the optimum by L-BFGS (C={p.solver.C:.3g} by cross-validation on "
                        f"train+val, fitted on {p.solver.fitted_on}"
                        + ("; features averaged with the mirror image's" if p.solver.flip_average else "")
                        + ")" if p.solver else
                        f"{p.name} {p.epochs_run} epochs"
                        + (f", augment {p.augment or 'none'}, precision {p.precision}" if p.precision else ""))
                       + f" ({p.trainable_params:,} trainable parameters)"
                       for p in (record.result.phases if record.result else ()))
    cache = record.feature_cache
    cache_text = (f"{cache.views} view(s) per image; {cache.computed} computed, {cache.reused} reused"
                  if cache and cache.used else f"off: {cache.reason if cache else 'backbone not frozen'}")
    return [["strategy", f"{record.training.strategy} from {record.pretrained_source}: {phases}"],
            ["feature cache", cache_text]]


def solved_head(record) -> SolverResult | None:
    """The solver's record of the run's last head fitted by L-BFGS, when it kept the cross-validated score of every C
    it tried (``grid``: the points without a score left out); else None."""
    solvers = [p.solver for p in (record.result.phases if record.result else ()) if p.solver]
    grid = tuple(g for g in solvers[-1].grid if g.C == g.C and g.cv_acc is not None) if solvers else ()
    return replace(solvers[-1], grid=grid) if grid else None


def _curves_section(record, figures: dict[str, bytes]) -> str:
    """The loss and accuracy per epoch, and for a solved head the cross-validation that chose its penalty."""
    solved = solved_head(record)
    html = ['<section id="training-curves"><h2>Training curves</h2>']
    if figures.get("training_curves") or not solved:
        html.append(_image(figures.get("training_curves"), "loss and accuracy per epoch",
                           "the run has no training log"))
    if solved:
        best = next((g for g in solved.grid if g.C == solved.C), None)
        html.append(f"<h3>The head's penalty, chosen by cross-validation</h3><p>The linear head was fitted to the "
                    f"optimum by L-BFGS, not trained by epochs. Each C of the grid ({len(solved.grid)} tried, "
                    f"strong penalty to weak) was scored on held-out folds of train+val; C={solved.C:.3g} "
                    + (f"had the best accuracy ({best.cv_acc:.4f}) " if best else "")
                    + f"and the head was then fitted on {escape(solved.fitted_on)}.</p>"
                    + _image(figures.get("penalty_curve"), "cross-validated loss and accuracy per C",
                             "the figure was not drawn"))
    return "".join(html) + "</section>"


def _settings(record, metrics: dict) -> str:
    if record.training is None:  # a baseline or a probe
        rows = _baseline_rows(record, metrics) + [_data_row(record, record.baseline.seed)]
        if record.pretrained_source:
            rows.insert(1, ["backbone", f"frozen, ImageNet weights from {record.pretrained_source}"])
        return _table(["setting", "value"], rows) + _counts_table(record)
    rows = _network_rows(record, metrics)
    if record.training.strategy != "scratch":
        rows[1:1] = _transfer_rows(record)
    if record.data and record.data.skipped:
        rows.append(["skipped files", f"{len(record.data.skipped)} unreadable: " + ", ".join(record.data.skipped[:5])])
    return _table(["setting", "value"], rows) + _counts_table(record)


def _recipe_section(record) -> str:
    """The leaderboard of ``--auto``: every candidate's validation score, time and status."""
    recipe = record.recipe
    if not recipe:
        return ""
    rows = [[e.name, e.status, _fmt(e.val_accuracy), e.validated_by or "",
             "" if e.seconds is None else f"{e.seconds:.1f} s", e.note or ""] for e in recipe.ranked()]
    return ('<section id="recipes"><h2>Recipes tried (--auto)</h2>'
            f"<p>{recipe.seconds:.0f} s of a {recipe.budget_seconds:.0f} s budget, backbones "
            f"{escape(', '.join(recipe.backbones))}; ranked by {escape(recipe.ranked_by)}. The kept run is "
            f"{escape(recipe.kept)}; the others stay in candidates/.</p>"
            + _table(["candidate", "status", "validation accuracy", "measured on", "time", "note"], rows)
            + "</section>")


def _counts_table(record) -> str:
    counts = record.data.counts if record.data else {}
    if not counts:
        return ""
    splits = list(counts)
    rows = [[c] + [counts[s].get(c, 0) for s in splits] for c in record.classes]
    if record.multi_label:  # an image counts once for each of its labels: no total
        return "<h3>Images per split that carry each label</h3>" + _table(["label"] + splits, rows)
    rows.append(["total"] + [sum(counts[s].values()) for s in splits])
    return "<h3>Images per split and class</h3>" + _table(["class"] + splits, rows)


def _notes(metrics: dict) -> list[str]:
    """What the reader must know to read the scores: decision rule, classes left out, test-time augmentation."""
    classes, notes = metrics["classes"], []
    if metrics.get("run_status"):
        notes.append(metrics["run_status"])
    if metrics.get("split") == "val":
        notes.append("The run has no test split, so this report scores its validation split, which chose the kept "
                     "weights: the scores are optimistic. Evaluate on images the run never saw with "
                     "`cnnkit evaluate RUN --data FOLDER`.")
    seen = metrics.get("seen_in_training")
    if seen and seen["included"]:
        notes.append(f"{seen['train'] + seen['val']} of these images were used to train ({seen['train']}) or validate "
                     f"({seen['val']}) the run and are scored anyway: the score is optimistic.")
    elif seen:
        notes.append(f"{seen['left_out']} images of this folder were used to train ({seen['train']}) or validate "
                     f"({seen['val']}) the run; they were left out of the score.")
    if metrics.get("skipped"):
        notes.append(f"{len(metrics['skipped'])} unreadable image(s) were left out: "
                     + ", ".join(metrics["skipped"][:10]) + (" ..." if len(metrics["skipped"]) > 10 else ""))
    if metrics.get("threshold") is not None:
        t = metrics["threshold"]
        notes.append(f"Decision rule: '{classes[1]}' when its probability is at least {t['value']:.4f} "
                     f"({t['source']}).")
    if metrics.get("thresholds"):
        t = metrics["thresholds"]
        notes.append("Multi-label decision rule: a class is predicted wherever its probability is at least its own "
                     f"threshold ({t['source'] or 'stored in the run'}): "
                     + ", ".join(f"{c} {v:.3f}" for c, v in t["per_class"].items()) + ".")
    elif metrics.get("multi_label"):
        notes.append("Multi-label decision rule: a class is predicted wherever its probability is at least 0.5.")
    if (metrics.get("shared_classes_only") or {}).get("labels_dropped_from"):
        s = metrics["shared_classes_only"]
        notes.append(f"Labels the model does not know ({', '.join(s['extra'])}) were dropped from "
                     f"{s['labels_dropped_from']} image(s); the scores are the model's labels only.")
    elif metrics.get("shared_classes_only"):
        s = metrics["shared_classes_only"]
        notes.append(f"Evaluated on the classes shared by model and data only. Left out of the data: "
                     f"{', '.join(s['extra']) or 'none'} ({s['left_out']} images). Model classes absent from the "
                     f"data: {', '.join(s['missing']) or 'none'}.")
    if metrics.get("tta"):
        t = metrics["tta"]
        notes.append(f"Test-time augmentation: {t['n']} versions of each image ({t['augment']}), probabilities "
                     f"averaged. Without it: accuracy {t['accuracy_without']:.4f}, balanced accuracy "
                     f"{t['balanced_accuracy_without']:.4f}, {t['ms_per_image_without']:.2f} ms per image; with it "
                     f"{metrics['inference_ms_per_image']:.2f} ms ({t['time_ratio']:.1f}x the time).")
    return notes


def _headline(metrics: dict) -> str:
    if metrics.get("multi_label"):
        return _table(
            ["images", "exact-set accuracy", "samples F1", "micro F1", "macro F1", "Hamming loss", "mean AP",
             "AUC"],
            [[metrics["n"], _fmt(metrics["accuracy"]), _fmt(metrics["samples_f1"]), _fmt(metrics["micro_f1"]),
              _fmt(metrics["macro_f1"]), _fmt(metrics["hamming_loss"]), _fmt(metrics["mean_average_precision"]),
              _fmt(metrics.get("auc"))]]).replace("<table>", '<table class="headline">', 1)
    headline = _table(
        ["images", "accuracy", "balanced accuracy", "macro F1", "AUC"],
        [[metrics["n"], _fmt(metrics["accuracy"]), _fmt(metrics["balanced_accuracy"]), _fmt(metrics["macro_f1"]),
          _fmt(metrics.get("auc"))]],
    ).replace("<table>", '<table class="headline">', 1)
    if metrics.get("knn"):
        knn = metrics["knn"]
        headline += "<h3>Latent k-NN beside the network's head</h3>" + _table(
            ["classifier", "accuracy", "balanced accuracy", "macro F1"],
            [["the network's head", _fmt(metrics["accuracy"]), _fmt(metrics["balanced_accuracy"]),
              _fmt(metrics["macro_f1"])],
             [f"k-NN in the latent space (k={knn['k']}, {knn['metric']}, {knn['train_images']} training images)",
              _fmt(knn["accuracy"]), _fmt(knn["balanced_accuracy"]), _fmt(knn["macro_f1"])]])
    return headline


def _multilabel_per_class(metrics: dict) -> str:
    return _table(
        ["class", "threshold", "precision", "recall", "F1", "average precision", "AUC", "false positives",
         "false negatives", "images with it"],
        [[c, _fmt(s["threshold"], 3), _fmt(s["precision"], 3), _fmt(s["recall"], 3), _fmt(s["f1"], 3),
          _fmt(s["average_precision"], 3), _fmt((metrics.get("auc_per_class") or {}).get(c), 3),
          s["false_positives"], s["false_negatives"], s["support"]]
         for c, s in metrics["per_class"].items()])


def _confusion_section(metrics: dict, figures: dict[str, bytes]) -> str:
    if metrics.get("multi_label"):
        return ('<section id="confusion-matrix"><h2>Errors per class</h2><p>Multi-label: each class is its own yes/no '
                "decision, so the per-class table above counts its false positives and false negatives instead of "
                "a confusion matrix.</p></section>")
    return ('<section id="confusion-matrix"><h2>Confusion matrix</h2>'
            "<p>Row i, column j: the share of class i predicted as class j, in percent, with the count below. "
            "The diagonal is each class's recall.</p>"
            f'{_image(figures.get("confusion_matrix"), "confusion matrix")}</section>')


def render_report(title: str, metrics: dict, record, figures: dict[str, bytes]) -> str:
    """The whole page as a string; ``figures`` maps names (confusion_matrix, roc, mistakes, training_curves,
    penalty_curve) to PNG."""
    notes, headline = _notes(metrics), _headline(metrics)
    kind = {"val": "validation", "test": "test"}.get(metrics.get("split") or "", "evaluated")
    per_class = _multilabel_per_class(metrics) if metrics.get("multi_label") else _table(
        ["class", "precision", "recall", "F1", "support"] + (["AUC (one vs rest)"] if "auc_per_class" in metrics
                                                             else []),
        [[c, _fmt(s["precision"], 3), _fmt(s["recall"], 3), _fmt(s["f1"], 3), s["support"]]
         + ([_fmt(metrics["auc_per_class"].get(c), 3)] if "auc_per_class" in metrics else [])
         for c, s in metrics["per_class"].items()],
    )
    multi = metrics.get("multi_label")
    mistakes_text = (" (the highest binary cross-entropy over the classes): file, true labels, predicted labels"
                     if multi else ": file, true class, predicted class and its probability")
    unsure_text = ("Every label right, but with the highest loss." if multi else
                   "Right, but with the least probability for their class.")
    looked_text = (" Beside each, where the network looked: Grad-CAM for the class it predicted (multi-label: its most "
                   "probable class; red: the regions whose features raised that class's score most; `cnnkit inspect` "
                   "shows one image in depth)." if metrics.get("grad_cam_beside_mistakes") else "")
    roc_text = ""
    if metrics.get("roc_points"):
        roc_text = _table(["point", "threshold", "false positive rate", "true positive rate"],
                          [[p["label"], _fmt(p["threshold"]), _fmt(p["fpr"], 3), _fmt(p["tpr"], 3)]
                           for p in metrics["roc_points"]])
    confused = metrics.get("most_confused", [])
    confused_html = _table(["true class", "predicted as", "images"],
                           [[p["true"], p["predicted"], p["count"]] for p in confused]) if confused else (
        "<p>No image was misclassified.</p>")
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<section id="summary"><h2>Summary</h2><p>Data: {escape(shown_paths(str(metrics.get("data", ""))))}</p>'
        f"{headline}",
        *(f'<p class="note">{escape(n)}</p>' for n in notes),
        "</section>",
        f'<section id="settings"><h2>Run settings</h2>{_settings(record, metrics)}</section>',
        _recipe_section(record),
        f'<section id="per-class"><h2>Per-class scores</h2>{per_class}</section>',
        _confusion_section(metrics, figures),
        f'<section id="roc"><h2>ROC and AUC</h2>{_image(figures.get("roc"), "ROC curves")}{roc_text}</section>',
        f'<section id="mistakes"><h2>Worst mistakes</h2><p>Wrongly classified {kind} images, the most confident '
        f"mistakes first{mistakes_text}.{looked_text}</p>"
        f'{_image(figures.get("mistakes"), "the worst mistakes, with true and predicted class", "no mistakes")}'
        f"<h3>Least confident correct</h3><p>{unsure_text}</p>"
        f'{_image(figures.get("least_confident"), f"the least confident correct {kind} images", "no correct images")}',
        "</section>" if multi else f"<h3>Most confused pairs</h3>{confused_html}</section>",
        _curves_section(record, figures),
    ]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")
