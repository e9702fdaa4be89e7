"""Evaluate a run on its saved test split (never seen in training) or on another labelled folder, and write the
metrics, the figures and ``report.html`` together."""

from __future__ import annotations

import hashlib
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit._io import replace_folder, shown_paths, write_bytes, write_json, write_text
from cnnkit.config import EvaluateConfig
from cnnkit.data.prepare import ImageArrays, label_names, load_folder, load_samples
from cnnkit.errors import ConfigError, DataError, OutputError, RunError, check_choice
from cnnkit.evaluation import metrics as M
from cnnkit.evaluation.history import epoch_history, read_history
from cnnkit.evaluation.report import render_report, solved_head
from cnnkit.evaluation.seen import seen_in_training
from cnnkit.inference import Predictor, decide
from cnnkit.inspection.figures import overlay
from cnnkit.options import with_options
from cnnkit.run import RunFolder, RunRecord
from cnnkit.run.lock import locked, refuse_if_written
from cnnkit.run.tasks import require

log = logging.getLogger("cnnkit")
WORST_MISTAKES = 16


@dataclass(frozen=True)
class Evaluation:
    metrics: dict
    folder: Path  # holds metrics.json, report.html and figures/

    @property
    def metrics_path(self) -> Path:
        return self.folder / "metrics.json"

    @property
    def report_path(self) -> Path:
        return self.folder / "report.html"


def fingerprint(arrays: ImageArrays, classes: list[str]) -> str:
    """A digest of the evaluated images' bytes and labels: equal for the same test set wherever it is stored."""
    def digest(path: str) -> str:
        return hashlib.sha256((Path(arrays.root) / path).read_bytes()).hexdigest()

    items = sorted(f"{label_names(label, classes)}:{digest(path)}" for path, label in zip(arrays.paths, arrays.labels))
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:16]


VALIDATION_NOTE = "it chose the kept weights, so its scores are optimistic"
VALIDATION_REPORT = "validation-report"  # never eval-<name>, which `evaluate --data <name>` writes


def _evaluation_data(run: RunFolder, predictor: Predictor, data, out, config: EvaluateConfig, split: str = "test"):
    if data is None:
        manifest = run.read_split()
        if not manifest.splits.get(split):
            raise RunError(f"Run {run.path} has no {split} split; pass `data` to evaluate on images it never saw.")
        root = run.existing_data_root(manifest, "pass `data` to evaluate elsewhere")
        arrays = load_samples(root, manifest.splits[split], predictor.classes, predictor.preprocessing,
                              config.skip_bad, lazy=True, multi_label=predictor.multi_label)
        if split == "val":
            return (arrays, f"validation split of {root} ({VALIDATION_NOTE})",
                    Path(out or run.path / VALIDATION_REPORT), None, None)
        return arrays, f"test split of {root}", Path(out or run.path), None, None
    arrays, note = load_folder(data, predictor.classes, predictor.preprocessing, shared_only=config.shared_classes,
                               skip_bad=config.skip_bad, lazy=True,  # images decode a batch at a time
                               multi_label=predictor.multi_label)
    arrays, seen = _leave_out_seen(run, predictor, arrays, data, config.include_seen)
    resolved = Path(data).resolve()
    name = f"{resolved.parent.name}-{resolved.stem}" if resolved.is_file() else resolved.name  # a CSV of labels
    return arrays, str(resolved), Path(out or run.path / f"eval-{name}"), note, seen


def _leave_out_seen(run: RunFolder, predictor: Predictor, arrays: ImageArrays, data, include: bool):
    """Leave out (or with ``include``, keep and say so) the images the run trained or validated on."""
    mask, counts = seen_in_training(run, predictor, arrays)
    if not mask.any():
        return arrays, None
    record = {**counts, "included": include, "left_out": 0 if include else int(mask.sum())}
    text = (f"{int(mask.sum())} of the {len(arrays)} images of {data} were used to train ({counts['train']}) or "
            f"validate ({counts['val']}) {run.path}")
    if include:
        log.warning("%s; they are scored anyway (`include_seen`), so the score is optimistic.", text)
        return arrays, record
    if mask.all():
        raise DataError(f"Every image of {data} was used to train ({counts['train']}) or validate "
                        f"({counts['val']}) {run.path}: a score on them says nothing about new images. Evaluate on "
                        "images the run never saw, or set `include_seen` to score them anyway.")
    log.warning("%s; they are left out, %d are scored (set `include_seen` to keep them).", text,
                len(arrays) - int(mask.sum()))
    return arrays.subset(~mask), record


def _scores(predictor: Predictor, labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """The scores of the run's decision on ``probabilities`` (multi-label: per class with its threshold)."""
    if predictor.multi_label:
        return M.multilabel_metrics(labels, predictor.decide(probabilities), probabilities, predictor.classes,
                                    predictor.thresholds)
    return M.classification_metrics(labels, decide(probabilities, predictor.threshold), predictor.classes)


def _timed_probabilities(predictor: Predictor, arrays: ImageArrays, tta: int, classes: list[str]):
    """Probabilities (with ``tta`` versions per image when above 1), seconds, and the scores without TTA. Each batch
    is decoded once, outside the timing: the seconds are the network's."""
    plain, augmented, seconds, tta_seconds = [], [], 0.0, 0.0
    for start in range(0, len(arrays), 128):
        batch = arrays.images[start:start + 128]
        began = time.perf_counter()
        plain.append(predictor.predict_arrays(batch))
        seconds += time.perf_counter() - began
        if tta > 1:
            began = time.perf_counter()
            augmented.append(predictor.predict_arrays(batch, tta=tta))
            tta_seconds += time.perf_counter() - began
    empty = np.zeros((0, len(classes)), np.float32)
    probabilities = np.concatenate(plain) if plain else empty
    if tta == 1:
        return probabilities, seconds, None
    scores = _scores(predictor, arrays.labels, probabilities)
    record = {"n": tta, "augment": predictor.augment, "accuracy_without": scores["accuracy"],
              "balanced_accuracy_without": scores["balanced_accuracy"], "macro_f1_without": scores["macro_f1"],
              "ms_per_image_without": 1000.0 * seconds / max(len(arrays), 1),
              "time_ratio": tta_seconds / max(seconds, 1e-9)}
    return (np.concatenate(augmented) if augmented else empty), tta_seconds, record


@with_options(EvaluateConfig)
def evaluate_run(run_dir: str | Path, data: str | Path | None = None, out: str | Path | None = None,
                 config: EvaluateConfig | None = None, *, predictor: Predictor | None = None,
                 report: bool = True, split: str = "test") -> Evaluation:
    """Score the run's model and write ``metrics.json``, ``report.html`` and ``figures/*.png``.

    They go into the run for its own test split, into ``RUN/eval-<folder>/`` for ``data``, or into ``out``. The
    run's record is only read: its decision threshold (see ``store_threshold``) is applied.
    ``shared_classes`` evaluates on the classes that model and data share instead of refusing a mismatch.
    ``tta`` > 1: the scores are those of test-time augmentation, and ``metrics["tta"]`` holds the plain ones and the
    time each took. ``knn`` > 0 also classifies by majority vote of the ``knn`` nearest training images in the
    latent space (``metrics["knn"]``), beside the network's own head.
    """
    config = config or EvaluateConfig()
    check_choice("split", split, ("test", "val"), "evaluate_run")
    if split != "test" and data is not None:
        raise ConfigError("`split` chooses one of the run's own splits; leave it out with `data`.")
    run = RunFolder(run_dir)
    require(run.read_record().kind, "knn" if config.knn else "evaluate", run.path)  # an autoencoder: knn only
    if out is None or run.path.resolve() in Path(out).resolve().parents:
        refuse_if_written(run.path)  # the outputs go into the run: a writer there now is refused before any work
    if run.read_record().reconstructs:
        return _evaluate_codes(run, data, out, config, split)
    # the network the run trained, never its export: the export's fidelity is what `cnnkit export` reports
    predictor = predictor or Predictor.load(run.path, backend="torch")
    record = run.read_record()
    predictor.threshold = record.decision.threshold if record.decision else None
    arrays, source, folder, shared_note, seen = _evaluation_data(run, predictor, data, out, config, split)
    log.info("Scoring %d images of the %s (%s backend)...", len(arrays), shown_paths(source), predictor.backend)
    probabilities, seconds, tta_record = _timed_probabilities(predictor, arrays, config.tta, predictor.classes)
    metrics, curves, worst = (_multilabel_metrics if record.multi_label else _metrics)(predictor, record, arrays,
                                                                                       probabilities)
    metrics.update({"run": str(run.path.resolve()), "data": source, "split": split if data is None else None,
                    "backend": predictor.backend,
                    "shared_classes_only": shared_note,
                    "tta": tta_record, "inference_ms_per_image": 1000.0 * seconds / max(len(arrays), 1),
                    "seen_in_training": seen, "skipped": arrays.skipped, "run_status": run.status_note(record),
                    "grad_cam_beside_mistakes": getattr(predictor, "model", None) is not None})
    if config.knn:
        metrics["knn"] = _latent_knn(run, predictor, arrays, config.knn)
    evaluation = Evaluation(metrics, folder)
    _write_outputs(evaluation, run, lambda target: _fill(target, evaluation, run, record, arrays, curves, worst,
                                                         report, predictor))
    return evaluation


def _evaluate_codes(run: RunFolder, data, out, config: EvaluateConfig, split: str) -> Evaluation:
    """An autoencoder's run has no head to score; with ``knn`` its codes classify each image by a vote of the
    nearest training images' codes, scored as any run's k-NN is. Written to ``metrics.json`` in ``RUN/eval-knn/``
    (its test split) or where ``data`` and ``out`` say."""
    record = run.read_record()
    if len(record.classes) < 2:
        raise ConfigError(f"`knn` votes among the training images' classes; {run.path} was trained on images of one "
                          "class (or unlabelled ones): there is nothing to vote for. Train it on class folders.")
    predictor = Predictor.load(run.path, backend="torch")
    arrays, source, folder, note, seen = _evaluation_data(run, predictor, data, out, config, split)
    if data is None and out is None:
        folder = run.path / "eval-knn"
    log.info("Classifying %d images of the %s by their %d nearest codes...", len(arrays), shown_paths(source),
             config.knn)
    metrics = {"run": str(run.path.resolve()), "data": source, "split": split if data is None else None,
               "n": len(arrays), "classes": list(predictor.classes), "codes_only": True,
               "knn": _latent_knn(run, predictor, arrays, config.knn), "shared_classes_only": note,
               "seen_in_training": seen, "skipped": arrays.skipped}
    evaluation = Evaluation(metrics, folder)
    _write_outputs(evaluation, run, lambda target: write_json(target / "metrics.json", metrics))
    return evaluation


def _fill(target: Path, evaluation: Evaluation, run: RunFolder, record: RunRecord, arrays: ImageArrays, curves,
          worst, report: bool, predictor: Predictor) -> None:
    """Write the evaluation's files into ``target``."""
    write_json(target / "metrics.json", evaluation.metrics)
    if report:
        _write_report(target, evaluation, run, record, arrays, curves, worst, predictor)


def _write_outputs(evaluation: Evaluation, run: RunFolder, fill) -> None:
    """Into the run itself (its test split): metrics and report replaced, figures replaced as a whole. Elsewhere: the
    whole folder replaced, so an earlier evaluation's files never mix with this one's."""
    folder = evaluation.folder
    inside = folder.resolve() == run.path.resolve() or run.path.resolve() in folder.resolve().parents
    with locked(run.path) if inside else nullcontext():
        if folder.resolve() == run.path.resolve():
            fill(folder)
            return
        if folder.exists() and any(folder.iterdir()) and not (folder / "metrics.json").exists():
            raise OutputError(f"{folder} exists and is not an evaluation folder (it has no metrics.json); choose "
                              "a new `out` so that nothing in it is replaced.")
        replace_folder(folder, fill)


def evaluate_test_split(run_dir: str | Path) -> Evaluation | None:
    """Score the run's test split once (what the ``train`` command does after training). Without a test split, the
    report is made on the validation split instead, into ``RUN/validation-report/``, and says it is optimistic;
    None when there is neither, or when the model was fitted on the validation images too (a baseline, a head solved
    on train+val): their scores would be training scores."""
    run = RunFolder(run_dir)
    splits = run.read_split().splits
    if splits.get("test"):
        return evaluate_run(run_dir)
    record = run.read_record()
    phases = record.result.phases if record.result else ()
    fitted_on_val = record.training is None or any(p.solver and p.solver.fitted_on == "train+val" for p in phases)
    if fitted_on_val or not splits.get("val"):  # a baseline, or a head solved on train+val: val is training data
        return None
    return evaluate_run(run_dir, split="val")


def _metrics(predictor: Predictor, record: RunRecord, arrays: ImageArrays, probabilities: np.ndarray):
    """Every score of ``probabilities`` against the labels, with the ROC curves and the worst images' indices."""
    classes, threshold = predictor.classes, predictor.threshold
    y_pred = decide(probabilities, threshold)
    metrics = M.classification_metrics(arrays.labels, y_pred, classes)
    curves = M.roc_curves(arrays.labels, probabilities, classes)
    metrics.update(M.auc_summary(curves))
    losses = M.losses(arrays.labels, probabilities)
    by_loss = np.argsort(-losses, kind="stable")
    wrong = y_pred[by_loss] != arrays.labels[by_loss]
    worst = by_loss[wrong][:WORST_MISTAKES]  # mistakes only, the most confident first
    unsure = by_loss[~wrong][:WORST_MISTAKES // 2]  # right, with the least probability for the true class
    metrics.update({
        "test_set": {"n": len(arrays), "fingerprint": fingerprint(arrays, classes)},
        "threshold": None if threshold is None else {
            "value": threshold, "positive_class": classes[1], "source": record.decision.source},
        "roc_points": _roc_points(curves, arrays.labels, probabilities, threshold),
        "most_confused": M.most_confused(np.array(metrics["confusion_matrix"]), classes),
        "worst_mistakes": [_image_row(arrays, classes, y_pred, probabilities, losses, i) for i in worst],
        "least_confident_correct": [_image_row(arrays, classes, y_pred, probabilities, losses, i) for i in unsure],
        "parameters": predictor.num_parameters,
    })
    return metrics, curves, (worst, unsure, y_pred[worst])


def _multilabel_metrics(predictor: Predictor, record: RunRecord, arrays: ImageArrays, probabilities: np.ndarray):
    """A multi-label run's scores: per class with its threshold, per image, and the images most wrong."""
    classes, decided = predictor.classes, predictor.decide(probabilities)
    metrics = _scores(predictor, arrays.labels, probabilities)
    curves = M.multilabel_roc_curves(arrays.labels, probabilities, classes)
    metrics.update(M.auc_summary(curves))
    losses = M.multilabel_losses(arrays.labels, probabilities)
    by_loss = np.argsort(-losses, kind="stable")
    wrong = (decided[by_loss] != (arrays.labels[by_loss] > 0.5)).any(1)
    worst, unsure = by_loss[wrong][:WORST_MISTAKES], by_loss[~wrong][:WORST_MISTAKES // 2]

    def row(i: int) -> dict:
        return {"path": arrays.paths[i], "true": label_names(arrays.labels[i], classes) or "(none)",
                "predicted": label_names(decided[i], classes) or "(none)",
                "probability": float(probabilities[i].max(initial=0.0)), "loss": float(losses[i])}

    metrics.update({
        "test_set": {"n": len(arrays), "fingerprint": fingerprint(arrays, classes)},
        "thresholds": None if predictor.thresholds is None else {
            "per_class": dict(zip(classes, predictor.thresholds)),
            "source": record.label_thresholds.source if record.label_thresholds else None},
        "worst_mistakes": [row(i) for i in worst], "least_confident_correct": [row(i) for i in unsure],
        "parameters": predictor.num_parameters,
    })
    return metrics, curves, (worst, unsure, probabilities[worst].argmax(1))


def _short(name: str, width: int = 24) -> str:
    return name if len(name) <= width else f"{name[:width // 2 - 1]}…{name[-(width // 2):]}"


def _image_row(arrays: ImageArrays, classes, y_pred, probabilities, losses, i: int) -> dict:
    return {"path": arrays.paths[i], "true": classes[arrays.labels[i]], "predicted": classes[y_pred[i]],
            "probability": float(probabilities[i, y_pred[i]]), "loss": float(losses[i])}


def _latent_knn(run: RunFolder, predictor: Predictor, arrays: ImageArrays, k: int) -> dict:
    from cnnkit.latent.index import knn_vote, run_index

    index = run_index(run.path, predictor, "l2", "flat")
    distances, ids = index.search(predictor.embed_arrays(arrays.images), k)
    probabilities = knn_vote(index.labels[ids], distances, len(predictor.classes))
    scores = M.classification_metrics(arrays.labels, probabilities.argmax(1), predictor.classes)
    return {"k": k, "metric": "l2", "train_images": len(index.paths),
            **{name: scores[name] for name in ("accuracy", "balanced_accuracy", "macro_f1", "per_class")}}


def _roc_points(curves, labels, probabilities, threshold) -> list[dict]:
    """Two classes: the (fpr, tpr) of the threshold in use and of the threshold closest to (0, 1) on this data."""
    if len(curves) != 1 or next(iter(curves.values())).auc is None:
        return []
    curve, scores, positive = next(iter(curves.values())), probabilities[:, 1], labels == 1
    in_use = 0.5 if threshold is None else threshold
    label = "threshold in use: " + ("0.5 (argmax)" if threshold is None else f"{threshold:.3f} (stored in the run)")
    best = M.closest_to_corner(curve)
    return [{"label": label, "threshold": in_use, **dict(zip(("fpr", "tpr"), curve.point(in_use, scores, positive)))},
            {"label": f"closest to (0, 1) on this data: {best:.3f}", "threshold": best,
             **dict(zip(("fpr", "tpr"), curve.point(best, scores, positive)))}]


def _where_looked(predictor: Predictor, images: np.ndarray, targets: np.ndarray) -> np.ndarray | None:
    """Grad-CAM overlays of ``images`` for the ``targets`` classes (the predicted ones); None for a predictor without
    a torch network (a baseline, an ONNX export)."""
    model = getattr(predictor, "model", None)
    if model is None or not len(images):
        return None
    from cnnkit.inspection.attribution import grad_cam
    from cnnkit.inspection.network import ScoreModel

    cams = grad_cam(ScoreModel(model, predictor.preprocessing, multi_label=predictor.multi_label), images,
                    [int(t) for t in targets])
    return np.stack([overlay(image, cam) for image, cam in zip(images, cams)])


def _captions(m: dict, key: str) -> list[str]:
    return [f"{_short(Path(w['path']).name)}\ntrue {w['true']}\npredicted {w['predicted']}"
            + ("" if m.get("multi_label") else f" ({w['probability']:.2f})") for w in m[key]]


def _mistakes_png(m: dict, images: np.ndarray, looked: np.ndarray | None, targets: list[str]) -> bytes:
    """The worst mistakes, each beside where the network looked for the class it found most likely (when the
    predictor has a torch network)."""
    import cnnkit.plots as F

    captions = _captions(m, "worst_mistakes")
    if looked is None:
        return F.image_grid_png(images, captions)
    pictures, texts = [], []
    for image, seen, caption, target in zip(images, looked, captions, targets):
        pictures += [np.repeat(image, 3, -1) if image.shape[-1] == 1 else image[..., :3], seen]
        texts += [caption, f"where it looked\n(Grad-CAM for\n{_short(target, 14)})"]
    return F.image_grid_png(np.stack(pictures), texts)


def _write_report(target: Path, evaluation: Evaluation, run: RunFolder, record: RunRecord, arrays: ImageArrays,
                  curves, worst, predictor: Predictor) -> None:
    import cnnkit.plots as F

    m = evaluation.metrics
    pngs = {"confusion_matrix": F.confusion_matrix_png(np.array(m["confusion_matrix"]), m["classes"])
            } if "confusion_matrix" in m else {}
    if any(c.auc is not None for c in curves.values()):
        pngs["roc"] = F.roc_png(curves, [(p["label"], p["fpr"], p["tpr"]) for p in m.get("roc_points", [])])
    if len(worst[0]):
        images = arrays.images[worst[0]]
        pngs["mistakes"] = _mistakes_png(m, images, _where_looked(predictor, images, worst[2]),
                                         [predictor.classes[t] for t in worst[2]])
    if len(worst[1]):
        pngs["least_confident"] = F.image_grid_png(arrays.images[worst[1]], _captions(m, "least_confident_correct"))
    history, solved = read_history(run.log_dir / "metrics.csv"), solved_head(record)
    if epoch_history(run.log_dir / "metrics.csv").get("epoch"):  # a solved head alone would be one dot
        best = record.result.best_epoch if record.result else None
        pngs["training_curves"] = F.training_curves_png(history, None if best is None else best + 1)
    if solved:
        pngs["penalty_curve"] = F.penalty_curve_png([{"C": g.C, "cv_acc": g.cv_acc, "cv_loss": g.cv_loss}
                                                     for g in solved.grid], solved.C)
    if target.resolve() == run.path.resolve():  # the run's own figures: the set is replaced as a whole
        replace_folder(target / "figures", lambda folder: _write_figures(folder, pngs))
    else:
        _write_figures(target / "figures", pngs)
    title = f"cnnkit report: {run.path.resolve().name}"
    write_text(target / "report.html", render_report(title, m, record, pngs))


def _write_figures(folder: Path, pngs: dict[str, bytes]) -> None:
    for name, png in pngs.items():
        write_bytes(folder / f"{name}.png", png)
