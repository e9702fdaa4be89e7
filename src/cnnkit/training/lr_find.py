"""``lr_find``: the learning-rate range test (Smith, "Cyclical Learning Rates", 2017; fastai's ``lr_find``).

A fresh network is trained for ``steps`` batches at exponentially rising rates, on the data, split, preprocessing,
augmentation, loss and optimiser that ``train`` would use with the same settings; the loss of each batch is recorded
and the sweep stops once its smoothed value passes four times its minimum (the rates have stopped working). Nothing
the sweep trains is kept: no run folder, no weights; the data folder is only read.

The suggestion is a tenth of the rate where the smoothed loss was lowest (``RULE``). Four other rules are read off
the same sweep and recorded beside it (``RULES``): benchmarks/lr_find.py trained 7 fixed rates on three data sets,
and this rule, Lightning's steepest descent and fastai's valley as fastai's code computes it each landed within the
best third of them on all three; the simplest was kept (BENCHMARKS.md).

Written by hand rather than with Lightning's ``Tuner.lr_find``, on purpose: the tuner records only the smoothed
loss, runs its first two batches at the same rate (so its rates are not the geometric series asked for), writes a
checkpoint into the trainer's folder to restore afterwards, and replaces every callback; the sweep itself is short.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L

from cnnkit._io import write_bytes, write_json
from cnnkit.config import LrFindConfig, TrainConfig
from cnnkit.data.prepare import split_counts
from cnnkit.errors import ConfigError, RunError
from cnnkit.models import create_model
from cnnkit.models.init import init_weights
from cnnkit.options import with_options
from cnnkit.plots import lr_find_png
from cnnkit.progress import Progress
from cnnkit.training.balance import balance_record, oversampler
from cnnkit.training.defaults import choose_model
from cnnkit.training.distributed import check_accelerator
from cnnkit.training.fit import prepare_data, pretrained_backbone, probe_model
from cnnkit.training.loaders import cache_refusal, image_loader, tensor_loader
from cnnkit.training.module import ClassifierModule
from cnnkit.training.phases import quiet_lightning

log = logging.getLogger("cnnkit")

SMOOTHING = 0.98  # the loss's exponential moving average, bias-corrected (fastai's and Lightning's)
DIVERGENCE = 4.0  # the sweep stops once the smoothed loss passes this multiple of its minimum
FILES = ("lr_find.json", "lr_find.png")


@dataclass(frozen=True)
class LrFindResult:
    """One sweep: the rate, loss and smoothed loss of each batch, and the rate of each rule in ``RULES`` (two
    significant digits), read off the batches before any divergence; the suggestion is ``RULE``'s."""

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed_losses: tuple[float, ...]
    candidates: dict[str, float]  # every rule's rate, the suggestion's among them, for comparison
    diverged_at: int | None  # the batch whose smoothed loss passed DIVERGENCE x its minimum (the last one run)
    classes: tuple[str, ...]
    multi_label: bool
    config: TrainConfig
    sweep: LrFindConfig
    seconds: float
    train_changes: dict = field(default_factory=dict)  # what ``train`` takes to use the rate found

    @property
    def suggestion(self) -> float:
        """The suggested rate: ``RULE``'s."""
        return self.candidates[RULE]

    @property
    def lowest_loss_lr(self) -> float:
        """The rate where the smoothed loss was lowest before any divergence: already too high to train at."""
        end = len(self.smoothed_losses) if self.diverged_at is None else self.diverged_at
        return self.lrs[min(range(end), key=self.smoothed_losses.__getitem__)]

    def to_dict(self) -> dict:
        return {"model": self.config.model, "suggestion": self.suggestion, "rule": RULE,
                "rule_text": EXPLAINED[RULE], "candidates": self.candidates, "lowest_loss_lr": self.lowest_loss_lr,
                "diverged_at": self.diverged_at, "train_changes": self.train_changes,
                "smoothing": SMOOTHING, "divergence_factor": DIVERGENCE, "seconds": self.seconds,
                "classes": list(self.classes), "multi_label": self.multi_label, "sweep": self.sweep.to_dict(),
                "settings": self.config.to_dict(), "lrs": list(self.lrs), "losses": _finite(self.losses),
                "smoothed_losses": _finite(self.smoothed_losses)}


def _finite(values: tuple[float, ...]) -> list[float | None]:
    """JSON has no NaN or infinity: a diverged batch's loss is written as null."""
    return [v if math.isfinite(v) else None for v in values]


def sweep_rates(sweep: LrFindConfig) -> list[float]:
    """The rate of each batch: a geometric series from ``start_lr`` to ``end_lr`` in ``steps`` terms."""
    ratio = math.log(sweep.end_lr / sweep.start_lr) / (sweep.batches - 1)
    return [sweep.start_lr * math.exp(ratio * i) for i in range(sweep.batches - 1)] + [sweep.end_lr]


def valley(smoothed: list[float]) -> tuple[int, int, int]:
    """(first, last, chosen): the longest descent of the smoothed loss and the batch halfway along it.

    The descent is the loss's longest strictly decreasing subsequence, so noise does not cut it in pieces the way it
    cuts a run of consecutive falls. Halfway along it (in log rate: the rates are geometric) the loss still falls
    fast and the rate sits well below the one where the loss bottoms out, which is already too high to train at.
    fastai's "valley" idea (its default since 2021); on a whole sweep the descent tends to start in the plateau's
    noise at the first batches, and its middle then follows ``start_lr`` (``falling_valley`` starts it later).
    """
    n = len(smoothed)
    length, before = [1] * n, list(range(n))
    for i in range(n):
        for j in range(i):
            if smoothed[j] > smoothed[i] and length[j] + 1 > length[i]:
                length[i], before[i] = length[j] + 1, j
    last = max(range(n), key=lambda i: (length[i], -i))
    first = last
    while before[first] != first:
        first = before[first]
    return first, last, (first + last) // 2


SKIPPED = 10  # the steepest rule's first batches, whose slope is the smoothing's start-up, not the network's
FALL = 0.98  # the falling valley starts once the smoothed loss is below this fraction of its first tenth's


def lowest_tenth(lrs: list[float], smoothed: list[float]) -> float:
    """Smith's and fastai's older rule, the suggestion: a tenth of the rate where the smoothed loss is lowest (that
    rate itself is already too high to train at). It rests on one point the sweep finds reliably, not on the
    curve's shape before it, so neither ``start_lr`` nor a noisy plateau moves it."""
    return lrs[min(range(len(smoothed)), key=smoothed.__getitem__)] / 10


def steepest(lrs: list[float], smoothed: list[float]) -> float:
    """Lightning's rule: the rate where the smoothed loss falls fastest per batch (per step of log rate), the
    first ``SKIPPED`` batches left out."""
    import numpy as np

    skip = min(SKIPPED, len(smoothed) - 2)
    return lrs[skip + int(np.argmin(np.gradient(np.asarray(smoothed[skip:], float))))]


def valley_rate(lrs: list[float], smoothed: list[float]) -> float:
    """The valley's middle (``valley``) over the whole sweep."""
    return lrs[valley(smoothed)[2]]


def fastai_valley(lrs: list[float], smoothed: list[float]) -> float:
    """fastai's ``valley`` as its code computes it: the first tenth and the last 5 batches dropped, the descent taken
    to start at its end minus its length (not at its first point), the rate halfway along."""
    skip = len(smoothed) // 10
    kept = smoothed[skip:max(skip + 2, len(smoothed) - 5)]
    length = [1] * len(kept)
    for i in range(len(kept)):
        for j in range(i):
            if kept[j] > kept[i]:
                length[i] = max(length[i], length[j] + 1)
    end = max(range(len(kept)), key=lambda i: (length[i], -i))
    start = end - length[end]
    third = (end - start) / 3
    return lrs[skip + max(0, start + int(third) + int(third / 2))]


def falling_start(smoothed: list[float]) -> int:
    """The first batch after the first tenth whose smoothed loss is below ``FALL`` times the first tenth's median
    (its rates, 1e-7 to 5e-7 by default, change nothing): where the loss has clearly begun to fall (the first
    tenth's end when it never does)."""
    import numpy as np

    tenth = max(1, len(smoothed) // 10)
    plateau = float(np.median(smoothed[:tenth]))
    return next((i for i in range(tenth, len(smoothed)) if smoothed[i] < FALL * plateau), tenth)


def falling_valley(lrs: list[float], smoothed: list[float]) -> float:
    """The valley's middle, the descent sought only from ``falling_start``: the plateau before it, where the rates
    are too small to change anything, cannot lengthen it with its noise."""
    start = falling_start(smoothed)
    return lrs[start + valley(smoothed[start:])[2]]


RULES = {"lowest_tenth": lowest_tenth, "steepest": steepest, "valley": valley_rate, "fastai_valley": fastai_valley,
         "falling_valley": falling_valley}
EXPLAINED = {"lowest_tenth": "a tenth of the rate where the smoothed loss was lowest",
             "steepest": "where the smoothed loss fell fastest (Lightning's rule)",
             "valley": "halfway along the longest descent of the smoothed loss",
             "fastai_valley": "halfway along the longest descent of the smoothed loss, as fastai's code finds it",
             "falling_valley": "halfway along the longest descent of the smoothed loss once it has begun to fall"}
RULE = "lowest_tenth"  # the suggestion's: within the best third of 7 fixed rates on 3 data sets of 3, the simplest


def candidate_rates(lrs: list[float], smoothed: list[float]) -> dict[str, float]:
    """Every rule's rate (two significant digits) from the batches before any divergence."""
    return {name: float(f"{rule(lrs, smoothed):.2g}") for name, rule in RULES.items()}


class SmoothedLoss:
    """The running value of ``smooth``: ``add(loss)`` returns the smoothed loss so far."""

    def __init__(self, beta: float = SMOOTHING):
        self.beta, self.average, self.count = beta, 0.0, 0

    def add(self, loss: float) -> float:
        self.count += 1
        self.average = self.beta * self.average + (1 - self.beta) * loss
        return self.average / (1 - self.beta ** self.count)


def smooth(losses: list[float], beta: float = SMOOTHING) -> list[float]:
    """The exponential moving average of ``losses``, divided by ``1 - beta ** n`` so that early values are not
    biased towards zero."""
    running = SmoothedLoss(beta)
    return [running.add(loss) for loss in losses]


class RateSweep(L.Callback):
    """Sets each batch's rate (every parameter group in proportion), records its loss, and stops the fit once the
    smoothed loss passes ``DIVERGENCE`` times its minimum or is no longer finite."""

    def __init__(self, rates: list[float], base_lr: float, progress: bool):
        self.rates, self.base_lr = rates, base_lr
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.diverged_at: int | None = None
        self.scales: list[float] = []
        self.running = SmoothedLoss()
        self.bar = Progress(len(rates), "lr-find", unit="batches", enabled=progress)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.scales = [group["lr"] / self.base_lr for group in trainer.optimizers[0].param_groups]

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        for group, scale in zip(trainer.optimizers[0].param_groups, self.scales):
            group["lr"] = self.rates[len(self.losses)] * scale

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        loss = float(outputs["loss"])
        self.lrs.append(self.rates[len(self.losses)])
        self.losses.append(loss)
        self.smoothed.append(self.running.add(loss))
        self.bar.update(1)
        current, lowest = self.smoothed[-1], min(self.smoothed)
        if not math.isfinite(current) or (len(self.smoothed) > 1 and current > DIVERGENCE * lowest):
            self.diverged_at = len(self.losses) - 1
            trainer.should_stop = True


def _refuse(config: TrainConfig, data_dir: str | Path, out_dir: str | Path | None) -> None:
    """Settings the sweep cannot serve, refused before any image is decoded."""
    if config.strategy == "finetune":
        raise ConfigError("lr-find sweeps the rate of one phase; `strategy` finetune trains two (the head, then the "
                          "backbone at `finetune_lr`). Sweep the head's rate with `strategy` transfer.")
    if config.head_solver == "lbfgs":
        raise ConfigError("`head_solver` lbfgs fits the head without a learning rate: there is no rate to find. "
                          "Sweep a head trained by epochs with `head_solver` epochs.")
    if config.devices > 1 or config.num_nodes > 1:
        raise ConfigError("lr-find runs in one process; leave `devices` and `num_nodes` at 1 (the rate found is "
                          "that of the whole step's `batch_size`, which distributed training keeps).")
    data = Path(data_dir).resolve()
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise ConfigError(f"`out` {out_dir} is a file; lr-find writes a folder (lr_find.json, lr_find.png). Choose "
                          "a folder.")
    if out_dir is not None and data.is_dir() and Path(out_dir).resolve().is_relative_to(data):
        raise ConfigError(f"`out` {out_dir} lies inside the data folder {data_dir}, whose images lr-find only "
                          "reads (its plot would become a training image). Choose a folder outside it.")


def _module_and_batches(prepared, config: TrainConfig, pretrained: tuple[dict, str] | None, progress: bool):
    """The network as ``train`` starts it, in the ``ClassifierModule`` training uses, and the training batches:
    images, or a frozen backbone's cached features where training would use them."""

    L.seed_everything(config.seed, workers=True, verbose=False)
    pre, train = prepared.preprocessing, prepared.splits["train"]
    model = init_weights(create_model(config.model, len(prepared.classes), pre.channels, pre.image_size,
                                      **config.model_options), config.init)
    if pretrained is not None:
        model.load_backbone_state_dict(pretrained[0])
    if model.has_backbone:
        model.set_trainable_stages(0)  # transfer: the head on a frozen backbone (fine-tuning is refused)
    weights = balance_record(config.balance, split_counts(prepared.splits, prepared.classes)["train"])
    weights = weights.get("class_weights")
    sampler = (oversampler(train.labels, len(prepared.classes), config.seed) if config.balance == "oversample"
               else None)
    features = None
    if model.frozen and cache_refusal(config) is None:
        from cnnkit.feature_cache import cached_features

        features = cached_features(model, train.images, pre, config.cache_views or 1, config.augment,
                                   progress=progress)[0]
        batches = tensor_loader(features, train.labels, config.batch_size, True, config.seed, sampler)
    else:
        batches = image_loader(train, config.batch_size, True, config.seed, sampler, config.workers)
    model.train()
    module = ClassifierModule(model, config.replace(scheduler="none"), pre,
                              class_weights=list(weights.values()) if weights else None,
                              features=features is not None, multi_label=prepared.multi_label)
    return module, batches


def _sweep(module, batches, config: TrainConfig, rates: list[float], progress: bool) -> RateSweep:
    """Train ``module`` one batch per rate (epochs repeat as needed) until the rates end or the loss diverges."""
    import tempfile
    import warnings

    quiet_lightning()
    sweep = RateSweep(rates, config.lr, progress)
    with tempfile.TemporaryDirectory(prefix="cnnkit-lr-find-") as scratch, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*no `val_dataloader`.*")  # no validation, on purpose
        trainer = L.Trainer(max_steps=len(rates), max_epochs=-1, accelerator=config.accelerator, devices=1,
                            deterministic=True, precision="32-true", enable_checkpointing=False, logger=False,
                            callbacks=[sweep], enable_progress_bar=False, enable_model_summary=False,
                            num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=scratch)
        trainer.fit(module, batches)
    sweep.bar.close()
    return sweep


def _suggest(sweep: RateSweep, settings: LrFindConfig) -> dict[str, float]:
    """Every rule's rate (``candidate_rates``) from the batches before any divergence; RunError when the sweep gives
    nothing to suggest."""
    usable = len(sweep.losses) if sweep.diverged_at is None else sweep.diverged_at
    if usable < 5:
        raise RunError(f"The loss diverged after {usable + 1} batches, at lr {sweep.lrs[-1]:.3g}: the sweep starts "
                       f"too high. Lower `start_lr` (now {settings.start_lr:g}).")
    if min(range(usable), key=sweep.smoothed.__getitem__) == 0:
        raise RunError(f"The smoothed loss never fell between lr {sweep.lrs[0]:.3g} and {sweep.lrs[usable - 1]:.3g}"
                       ": lower `start_lr`, raise `steps`, or check the data and labels.")
    if sweep.diverged_at is None:
        log.warning("The loss did not diverge up to end_lr=%g: raise `end_lr` to see where the rates stop "
                    "working; the suggestion stands.", sweep.lrs[-1])
    return candidate_rates(sweep.lrs[:usable], sweep.smoothed[:usable])


@with_options(TrainConfig)
@with_options(LrFindConfig, "sweep")
def lr_find(data_dir: str | Path, out_dir: str | Path | None = None, config: TrainConfig | None = None,
            sweep: LrFindConfig | None = None, progress: bool = True) -> LrFindResult:
    """Sweep the learning rate of ``config``'s training on ``data_dir`` (see the module) and suggest one.

    ``out_dir``: where ``lr_find.json`` (every batch's rate and losses, the suggestion, the settings) and
    ``lr_find.png`` go; None writes nothing. Use the rate with ``train(..., lr=result.suggestion)``, or with every
    change in ``result.train_changes`` (a transfer head is then trained by epochs: the default solver fits it
    without any rate).
    """
    config, sweep = config or TrainConfig(), sweep or LrFindConfig()
    _refuse(config, data_dir, out_dir)
    start = time.perf_counter()
    check_accelerator(config.accelerator)
    config = choose_model(data_dir, config)
    probe = probe_model(config)
    if probe.reconstructs:
        raise ConfigError(f"lr-find sweeps a classifier's rate on its labels; {config.model!r} is an autoencoder, "
                          "trained without labels. Choose a classifier `model`.")
    pretrained = pretrained_backbone(config) if config.pretrained else None  # missing weights fail now, too
    prepared, config = prepare_data(data_dir, config, probe, progress)
    module, batches = _module_and_batches(prepared, config, pretrained, progress)
    done = _sweep(module, batches, config, sweep_rates(sweep), progress)
    candidates = _suggest(done, sweep)
    changes = {"lr": candidates[RULE], **({"head_solver": "epochs"} if config.strategy == "transfer" else {})}
    result = LrFindResult(tuple(done.lrs), tuple(done.losses), tuple(done.smoothed), candidates, done.diverged_at,
                          tuple(prepared.classes), prepared.multi_label, config, sweep,
                          round(time.perf_counter() - start, 2), changes)
    log.info("lr-find: %d batches from lr %.3g to %.3g%s; suggested lr %g.", len(done.losses), done.lrs[0],
             done.lrs[-1], "" if done.diverged_at is None else " (stopped: the loss diverged)", result.suggestion)
    if out_dir is not None:
        write_outputs(result, out_dir)
    return result


def write_outputs(result: LrFindResult, out_dir: str | Path) -> Path:
    """``lr_find.json`` and ``lr_find.png`` in ``out_dir``, each written atomically."""

    out = Path(out_dir)
    write_json(out / "lr_find.json", result.to_dict())
    write_bytes(out / "lr_find.png", lr_find_png(result.lrs, result.losses, result.smoothed_losses,
                                                 result.candidates, RULE, result.diverged_at))
    return out
