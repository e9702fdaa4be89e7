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
from cnnkit.errors import ConfigError, DataError, RunError
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

    images = torch.from_numpy(arrays.images).permute(0, 3, 1, 2).contiguous()
    return _tensor_loader(images, arrays.labels, batch_size, shuffle, seed, sampler)


def _tensor_loader(inputs, labels, batch_size: int, shuffle: bool, seed: int, sampler=None):
    """Batches of (inputs, labels): images or cached features, shuffled with ``seed`` or drawn by ``sampler``."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    dataset = TensorDataset(inputs, torch.as_tensor(labels))
    if sampler is not None:
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def _model_spec(config: TrainConfig, classes: list[str], preprocessing: Preprocessing) -> dict:
    return {"name": config.model, "options": dict(config.model_options), "init": config.init,
            "num_classes": len(classes), "in_channels": preprocessing.channels}


def _input_settings(config: TrainConfig, is_backbone: bool) -> dict:
    """How images are decoded and standardised: the data's own way, or the way a pretrained backbone expects."""
    if not is_backbone:
        if config.pretrained or config.strategy != "scratch":
            raise ConfigError(f"--pretrained and --strategy {config.strategy} need a timm backbone such as "
                              f"efficientnet_lite0; {config.model!r} is one of cnnkit's own networks.")
        return {"channels": config.channels}
    from cnnkit.data.decode import INTERPOLATIONS
    from cnnkit.models.pretrained import pretrained_normalization
    from cnnkit.models.transfer import backbone_config

    if config.channels == 1:
        raise ConfigError("Backbones take 3 channels; grayscale images are repeated to 3 (drop --channels 1).")
    cfg = backbone_config(config.model)
    interpolation = cfg["interpolation"] if cfg["interpolation"] in INTERPOLATIONS else "bilinear"
    normalization = pretrained_normalization(config.model, config.weights) if config.pretrained else None
    return {"channels": 3, "interpolation": interpolation, "crop_pct": cfg["crop_pct"], "normalization": normalization}


def train(data_dir: str | Path, out_dir: str | Path, config: TrainConfig = TrainConfig(),
          progress: bool = True) -> TrainResult:
    """Train ``config.model`` on ``data_dir``; the run folder ``out_dir`` gets config, split, weights, logs, metrics.

    Refuses an ``out_dir`` that already holds a run, so a finished run is never overwritten.
    """
    from cnnkit.augment.spec import OVERSAMPLE_DEFAULT
    from cnnkit.models import TransferNet, create_model, default_image_size
    from cnnkit.training.balance import balance_record

    run = RunFolder(out_dir)
    if run.exists():
        raise RunError(f"{run.path} already holds a run. Choose another --out, or continue it with --resume {run.path}.")
    import torch

    with torch.device("meta"):  # a wrong model name or option fails now, before any image is decoded
        probe = create_model(config.model, 2, 3, config.image_size or default_image_size(config.model) or (32, 32),
                             **config.model_options)
    pretrained = _pretrained_backbone(config) if config.pretrained else None  # missing weights fail now, too
    prepared = prepare_training_data(
        data_dir, image_size=config.image_size, val_fraction=config.val_fraction, test_fraction=config.test_fraction,
        seed=config.seed, skip_bad=config.skip_bad, default_image_size=default_image_size(config.model),
        **_input_settings(config, is_backbone=isinstance(probe, TransferNet)),
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
    return _fit(run, config_data, prepared.splits, config, ckpt_path=None, progress=progress, pretrained=pretrained)


def _pretrained_backbone(config: TrainConfig) -> tuple[dict, str]:
    """The backbone's pretrained state dict and where it came from."""
    from cnnkit.models import create_model
    from cnnkit.models.pretrained import load_pretrained

    model = create_model(config.model, 2, 3, **config.model_options)
    source = load_pretrained(model, config.model, config.weights)["source"]
    return model.backbone.state_dict(), source


def resume(run_dir: str | Path, epochs: int | None = None, progress: bool = True) -> TrainResult:
    """Continue an interrupted run from ``checkpoints/last.ckpt`` with its saved config and split.

    ``epochs`` raises the total number of epochs (to train a finished run further).
    """
    run = RunFolder(run_dir)
    config_data = run.read_config()
    config = TrainConfig.from_dict(config_data["training"])
    if config.strategy != "scratch":
        raise RunError(f"Run {run.path} used --strategy {config.strategy}; resuming is for runs that train the whole "
                       "network (--strategy scratch). With the feature cache, training it again is quick.")
    if not run.last_checkpoint.exists():
        raise RunError(f"Run {run.path} has no checkpoint to resume from ({run.last_checkpoint} is missing).")
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
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")  # frozen backbones, on purpose


@dataclass(frozen=True)
class Phase:
    name: str
    epochs: int
    trainable_stages: int  # of a backbone: 0 frozen, -1 all; ignored for cnnkit's own networks
    backbone_lr: float | None = None


def plan_phases(config: TrainConfig) -> list[Phase]:
    """scratch: one phase, everything trains. transfer: the head on a frozen backbone. finetune: that, then the last
    ``unfreeze`` stages (or all) with ``finetune_lr``."""
    if config.strategy == "scratch":
        return [Phase("train", config.epochs, -1)]
    head = Phase("head", config.epochs, 0)
    if config.strategy == "transfer":
        return [head]
    return [head, Phase("finetune", config.finetune_epochs, config.unfreeze or -1, config.finetune_lr)]


def _trainer(run: RunFolder, config: TrainConfig, phase: Phase, callbacks: list, progress: bool, tb_version: str):
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    if config.strategy == "scratch":  # the checkpoint serves --resume, which only whole-network training supports
        callbacks = [*callbacks, ModelCheckpoint(dirpath=run.checkpoint_dir, save_last=True, save_top_k=0,
                                                enable_version_counter=False)]
    if config.early_stopping:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=config.early_stopping))
    return L.Trainer(
        max_epochs=phase.epochs, accelerator=config.accelerator, devices=1, deterministic=True,
        enable_checkpointing=config.strategy == "scratch",
        callbacks=callbacks, enable_progress_bar=progress, enable_model_summary=False, num_sanity_val_steps=0,
        logger=[CSVLogger(run.path, name="logs", version=""),
                TensorBoardLogger(run.path, name="logs", version=tb_version)],
        log_every_n_steps=1,
    )


def _feature_loaders(model, splits, config: TrainConfig, preprocessing: Preprocessing, sampler, progress: bool):
    """Loaders of cached backbone features, or None (with the reason) when the cache cannot stand in for images."""
    from cnnkit.training.features import cached_features

    if not config.feature_cache:
        return None, {"used": False, "reason": "turned off (--no-cache)"}
    if config.cutmix:
        return None, {"used": False, "reason": "CutMix mixes images, not features"}
    if config.augment and not config.cache_views:
        return None, {"used": False, "reason": "--augment without --cache-views: every epoch sees new views"}
    views = config.cache_views or 1
    train, stats = cached_features(model, splits["train"].images, preprocessing, views, config.augment,
                                   progress=progress)
    val, val_stats = cached_features(model, splits["val"].images, preprocessing, 1, None, progress=progress)
    train_loader = _tensor_loader(train, splits["train"].labels, config.batch_size, True, config.seed, sampler)
    val_loader = _tensor_loader(val, splits["val"].labels, config.batch_size, False, config.seed)
    return (train_loader, val_loader), {"used": True, "views": views, "directory": stats.directory,
                                        "reused": stats.reused + val_stats.reused,
                                        "computed": stats.computed + val_stats.computed}


def _fit(run: RunFolder, config_data: dict, splits: dict[str, ImageArrays], config: TrainConfig,
         ckpt_path: Path | None, progress: bool, pretrained: tuple[dict, str] | None = None) -> TrainResult:
    import lightning as L

    from cnnkit.evaluation.evaluate import evaluate_run
    from cnnkit.inference import build_model_from_config
    from cnnkit.models import TransferNet
    from cnnkit.models.init import init_weights
    from cnnkit.training.balance import oversampler
    from cnnkit.training.callbacks import BestWeights, EpochTimer
    from cnnkit.training.module import ClassifierModule
    from cnnkit.weights import load_weights

    _quiet_lightning()
    L.seed_everything(config.seed, workers=True, verbose=False)
    preprocessing = Preprocessing.from_dict(config_data["preprocessing"])
    model = init_weights(build_model_from_config(config_data), config.init)
    if pretrained is not None:
        model.backbone.load_state_dict(pretrained[0])
        config_data["pretrained"] = {"source": pretrained[1]}
        log.info("Backbone weights: %s", pretrained[1])
    balance = config_data.get("balance", {})
    weights = list(balance["class_weights"].values()) if balance.get("mode") == "weights" else None
    sampler = (oversampler(splits["train"].labels, len(config_data["classes"]), config.seed)
               if config.balance == "oversample" else None)
    best, timer = BestWeights(run.weights_path), EpochTimer()
    phases = plan_phases(config)
    earlier_log = _read_text(run.log_dir / "metrics.csv") if ckpt_path else ""
    start, epochs_before, phase_records = time.perf_counter(), 0, []
    for i, phase in enumerate(phases):
        if i > 0:
            load_weights(model, run.weights_path)  # the next phase starts from the best weights so far
            earlier_log = _read_text(run.log_dir / "metrics.csv")
        if isinstance(model, TransferNet):
            model.set_trainable_stages(phase.trainable_stages)
        loaders, cache = (None, None)
        if isinstance(model, TransferNet) and model.frozen:
            loaders, cache = _feature_loaders(model, splits, config, preprocessing, sampler, progress)
            config_data["feature_cache"] = cache
            if cache["used"]:
                log.info("Feature cache: %d computed, %d reused (%s)", cache["computed"], cache["reused"],
                         cache["directory"])
        if loaders is None:
            loaders = (_loader(splits["train"], config.batch_size, True, config.seed, sampler),
                       _loader(splits["val"], config.batch_size, False, config.seed))
        module = ClassifierModule(model, config, preprocessing, class_weights=weights,
                                  features=bool(cache and cache["used"]), backbone_lr=phase.backbone_lr,
                                  epochs=phase.epochs)
        best.epoch_offset = epochs_before
        trainer = _trainer(run, config, phase, [best, timer], progress, "" if i == 0 else phase.name)
        trainer.fit(module, *loaders, ckpt_path=str(ckpt_path) if ckpt_path else None, weights_only=True)
        if earlier_log:
            _merge_csv_log(run.log_dir / "metrics.csv", earlier_log, epoch_offset=epochs_before if i else 0)
        phase_records.append({"name": phase.name, "epochs_run": trainer.current_epoch,
                              "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
                              "backbone_lr": phase.backbone_lr})
        epochs_before += trainer.current_epoch
    seconds = time.perf_counter() - start + config_data.get("result", {}).get("train_seconds", 0.0)
    result = {"best_epoch": best.best_epoch, "best_val_loss": best.best_score,
              "best_val_acc": best.best_metrics.get("val_acc"), "epochs_run": epochs_before,
              "train_seconds": round(seconds, 2), "epoch_seconds": [round(t, 4) for t in timer.seconds],
              "phases": phase_records, "test_accuracy": None}
    config_data = {**config_data, "status": "finished", "result": result}
    write_json(run.config_path, config_data)  # the report reads the result
    evaluation = None
    if len(splits.get("test", [])) and run.weights_path.exists():
        evaluation = evaluate_run(run.path)
        config_data = run.read_config()  # evaluation may have added to it
        config_data["result"]["test_accuracy"] = evaluation.metrics["accuracy"]
        write_json(run.config_path, config_data)
    return TrainResult(run.path, best.best_epoch, best.best_score, epochs_before, seconds, best.best_metrics,
                       evaluation and evaluation.metrics, evaluation and evaluation.report_path)


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _merge_csv_log(path: Path, earlier: str, epoch_offset: int = 0) -> None:
    """Lightning's CSV logger starts a new file on resume and in a second phase; put the epochs logged before back
    in front (a second phase counts its epochs from ``epoch_offset``)."""
    import csv
    import io

    from cnnkit._io import write_text

    old_rows, new_rows = (list(csv.DictReader(io.StringIO(t))) for t in (earlier, _read_text(path)))
    for row in new_rows:
        if row.get("epoch"):
            row["epoch"] = str(int(row["epoch"]) + epoch_offset)
    first_new = min((int(r["epoch"]) for r in new_rows if r.get("epoch")), default=10**9)
    rows = [r for r in old_rows if r.get("epoch") and int(r["epoch"]) < first_new] + new_rows
    header = list(dict.fromkeys(k for r in rows for k in r))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, out.getvalue())
