"""``train`` a network on a data folder into a run folder, and ``resume`` an interrupted run."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

from cnnkit import __version__
from cnnkit._io import write_json
from cnnkit.config import TrainConfig
from cnnkit.data.prepare import ImageArrays, load_samples, prepare_training_data
from cnnkit.data.preprocess import Preprocessing
from cnnkit.errors import DataError, RunError
from cnnkit.run import RunFolder

log = logging.getLogger("cnnkit")


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    train_seconds: float
    val_metrics: dict[str, float]  # logged at the best epoch: val_loss, val_acc
    test_metrics: dict | None
    report: Path | None  # report.html of the test split, when there is one


def _counts(prepared_splits: dict[str, ImageArrays], classes: list[str]) -> dict[str, dict[str, int]]:
    return {name: {c: int((arrays.labels == i).sum()) for i, c in enumerate(classes)}
            for name, arrays in prepared_splits.items()}


def report_counts(counts: dict[str, dict[str, int]]) -> None:
    """Log images per class and split, and warn about imbalance before any training starts."""
    classes = list(next(iter(counts.values())))
    width = max(len(c) for c in classes)
    log.info("%s  %s", "class".ljust(width), "  ".join(f"{s:>6}" for s in counts))
    for c in classes:
        log.info("%s  %s", c.ljust(width), "  ".join(f"{counts[s][c]:>6}" for s in counts))
    train = counts["train"]
    ratio = max(train.values()) / max(min(train.values()), 1)
    if ratio >= 3:
        rare = min(train, key=train.get)
        log.warning("Classes are imbalanced: %.1f:1 between the largest and the smallest ('%s', %d training images). "
                    "Look at balanced accuracy and per-class recall, not accuracy alone.", ratio, rare, train[rare])


def _loader(arrays: ImageArrays, batch_size: int, shuffle: bool, seed: int, sampler=None):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    images = torch.from_numpy(arrays.images).permute(0, 3, 1, 2).contiguous()
    dataset = TensorDataset(images, torch.from_numpy(arrays.labels))
    if sampler is not None:
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def _model_spec(config: TrainConfig, classes: list[str], preprocessing: Preprocessing) -> dict:
    return {"name": config.model, "options": dict(config.model_options), "init": config.init,
            "num_classes": len(classes), "in_channels": preprocessing.channels}


def train(data_dir: str | Path, out_dir: str | Path, config: TrainConfig = TrainConfig(),
          progress: bool = True) -> TrainResult:
    """Train ``config.model`` on ``data_dir``; the run folder ``out_dir`` gets config, split, weights, logs, metrics.

    Refuses an ``out_dir`` that already holds a run, so a finished run is never overwritten.
    """
    from cnnkit.augment.spec import OVERSAMPLE_DEFAULT
    from cnnkit.models import create_model, default_image_size
    from cnnkit.training.balance import balance_record

    run = RunFolder(out_dir)
    if run.exists():
        raise RunError(f"{run.path} already holds a run. Choose another --out, or continue it with --resume {run.path}.")
    import torch

    with torch.device("meta"):  # a wrong model name or option fails now, before any image is decoded
        create_model(config.model, 2, 3, default_image_size(config.model) or (32, 32), **config.model_options)
    prepared = prepare_training_data(
        data_dir, image_size=config.image_size, channels=config.channels, val_fraction=config.val_fraction,
        test_fraction=config.test_fraction, seed=config.seed, skip_bad=config.skip_bad,
        default_image_size=default_image_size(config.model),
    )
    if len(prepared.splits["val"]) == 0:
        raise DataError(f"No validation images in {data_dir}: add a val/ folder or raise --val-fraction.")
    manifest = replace(prepared.manifest, root=run.portable_root(prepared.manifest.root))
    counts = _counts(prepared.splits, prepared.classes)
    report_counts(counts)
    if config.balance == "oversample" and not config.augment:
        config = replace(config, augment=OVERSAMPLE_DEFAULT)
        log.info("--balance oversample without --augment: repeated images get '%s' so that copies differ.",
                 OVERSAMPLE_DEFAULT)
    config_data = {
        "cnnkit_version": __version__,
        "status": "training",
        "model": _model_spec(config, prepared.classes, prepared.preprocessing),
        "classes": prepared.classes,
        "preprocessing": prepared.preprocessing.to_dict(),
        "training": config.to_dict(),
        "balance": balance_record(config.balance, counts["train"]),
        "data": {"root": manifest.root, "layout": manifest.layout, "counts": counts,
                 "skipped": prepared.skipped},
        "split": "split.json",
    }
    run.path.mkdir(parents=True, exist_ok=True)
    write_json(run.split_path, manifest.to_dict())
    write_json(run.config_path, config_data)
    return _fit(run, config_data, prepared.splits, config, ckpt_path=None, progress=progress)


def resume(run_dir: str | Path, epochs: int | None = None, progress: bool = True) -> TrainResult:
    """Continue an interrupted run from ``checkpoints/last.ckpt`` with its saved config and split.

    ``epochs`` raises the total number of epochs (to train a finished run further).
    """
    run = RunFolder(run_dir)
    config_data = run.read_config()
    if not run.last_checkpoint.exists():
        raise RunError(f"Run {run.path} has no checkpoint to resume from ({run.last_checkpoint} is missing).")
    config = TrainConfig.from_dict(config_data["training"])
    if epochs is not None:
        config = TrainConfig.from_dict({**config.to_dict(), "epochs": epochs})
        config_data = {**config_data, "training": config.to_dict()}
    manifest = run.read_split()
    preprocessing = Preprocessing.from_dict(config_data["preprocessing"])
    splits = {name: load_samples(run.data_root(manifest), samples, config_data["classes"], preprocessing)
              for name, samples in manifest.splits.items()}
    return _fit(run, config_data, splits, config, ckpt_path=run.last_checkpoint, progress=progress)


def _quiet_lightning() -> None:
    """Keep Lightning's banner lines (accelerators, tips) out of the user's terminal; warnings still show."""
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*Experiment logs directory.*")


def _fit(run: RunFolder, config_data: dict, splits: dict[str, ImageArrays], config: TrainConfig,
         ckpt_path: Path | None, progress: bool) -> TrainResult:
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from cnnkit.evaluation.evaluate import evaluate_run
    from cnnkit.inference import build_model_from_config
    from cnnkit.models.init import init_weights
    from cnnkit.training.balance import oversampler
    from cnnkit.training.callbacks import BestWeights
    from cnnkit.training.module import ClassifierModule

    _quiet_lightning()
    L.seed_everything(config.seed, workers=True, verbose=False)
    preprocessing = Preprocessing.from_dict(config_data["preprocessing"])
    model = init_weights(build_model_from_config(config_data), config.init)
    balance = config_data.get("balance", {})
    weights = list(balance["class_weights"].values()) if balance.get("mode") == "weights" else None
    module = ClassifierModule(model, config, preprocessing, class_weights=weights)
    sampler = (oversampler(splits["train"].labels, len(config_data["classes"]), config.seed)
               if config.balance == "oversample" else None)
    best = BestWeights(run.weights_path)
    callbacks = [best, ModelCheckpoint(dirpath=run.checkpoint_dir, save_last=True, save_top_k=0)]
    if config.early_stopping:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=config.early_stopping))
    trainer = L.Trainer(
        max_epochs=config.epochs, accelerator=config.accelerator, devices=1, deterministic=True,
        callbacks=callbacks, enable_progress_bar=progress, enable_model_summary=False, num_sanity_val_steps=0,
        logger=[CSVLogger(run.path, name="logs", version=""), TensorBoardLogger(run.path, name="logs", version="")],
        log_every_n_steps=1,
    )
    earlier_log = _read_text(run.log_dir / "metrics.csv") if ckpt_path else ""
    start = time.perf_counter()
    trainer.fit(module, _loader(splits["train"], config.batch_size, True, config.seed, sampler),
                _loader(splits["val"], config.batch_size, False, config.seed),
                ckpt_path=str(ckpt_path) if ckpt_path else None, weights_only=True)
    if earlier_log:
        _merge_csv_log(run.log_dir / "metrics.csv", earlier_log)
    seconds = time.perf_counter() - start + config_data.get("result", {}).get("train_seconds", 0.0)
    result = {"best_epoch": best.best_epoch, "best_val_loss": best.best_score,
              "best_val_acc": best.best_metrics.get("val_acc"), "epochs_run": trainer.current_epoch,
              "train_seconds": round(seconds, 2), "test_accuracy": None}
    config_data = {**config_data, "status": "finished", "result": result}
    write_json(run.config_path, config_data)  # the report reads the result
    evaluation = None
    if len(splits.get("test", [])) and run.weights_path.exists():
        evaluation = evaluate_run(run.path)
        config_data = run.read_config()  # evaluation may have added to it
        config_data["result"]["test_accuracy"] = evaluation.metrics["accuracy"]
        write_json(run.config_path, config_data)
    return TrainResult(run.path, best.best_epoch, best.best_score, trainer.current_epoch, seconds, best.best_metrics,
                       evaluation and evaluation.metrics, evaluation and evaluation.report_path)

def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _merge_csv_log(path: Path, earlier: str) -> None:
    """Lightning's CSV logger starts a new file on resume; put the epochs logged before the resume back in front."""
    import csv
    import io

    from cnnkit._io import write_text

    old_rows, new_rows = (list(csv.DictReader(io.StringIO(t))) for t in (earlier, _read_text(path)))
    first_new = min((int(r["epoch"]) for r in new_rows if r.get("epoch")), default=10**9)
    rows = [r for r in old_rows if r.get("epoch") and int(r["epoch"]) < first_new] + new_rows
    header = list(dict.fromkeys(k for r in rows for k in r))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, out.getvalue())
