"""``auto_train``: the recipe chooser for people who do not want to choose (``cnnkit train DATA --auto``).

Within a time budget it trains, each into ``OUT/candidates/NAME`` on the same split (same seed and fractions): the
linear probe and the transfer run on the first backbone (a frozen backbone, the head solved to the optimum: the cheap
floor, always run), with a pool of unlabelled images (``unlabelled``) that run self-training on it (``pool-NAME``), the
same with the features of the backbone's last three stages (``stages-NAME``: seconds once the
features are cached, since every backbone pass caches every stage's), transfer runs on the other offline backbones
(EfficientNet-Lite1 and Lite2 when installed) while each is estimated to take at most a quarter of the budget left,
every backbone that ran in one network with their features concatenated (``concat``: the solved head on the union of
their features), a scratch CNN (first, before the probe) when the images are small and grayscale (digits, wafer maps),
and fine-tuning of the best transfer run's backbone with as many epochs as the rest of the budget holds (estimated from
a timed training step, capped by Lightning's ``max_time``). It ranks them by validation accuracy (cross-validated on
train+val for the probe and the solved heads, the validation split for epoch-trained runs), then validation loss, then
the order tried, copies the best into ``OUT`` with the leaderboard in its record, and never looks at the test split:
scoring it once, for the kept run, is the caller's work (the ``train`` command does it).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import fields
from pathlib import Path

from cnnkit.config import BaselineConfig, TrainConfig
from cnnkit.config.training import DataConfig
from cnnkit.data.files import scan_folder
from cnnkit.errors import CnnkitError, ConfigError, Interrupted, RunError
from cnnkit.run import RunFolder, TrainedRun
from cnnkit.run.lifecycle import RUN_OUTPUTS, refuse_occupied, remove_outputs
from cnnkit.run.lock import locked
from cnnkit.run.results import Candidate, Recipe
from cnnkit.run.tasks import KINDS, require_of_data

log = logging.getLogger("cnnkit")

CANDIDATES = ("probe", "transfer", "pool", "stages", "concat", "scratch", "finetune")  # "transfer-NAME", ...
STAGES = 3  # the stages candidate's feature_stages: the last stage and the two before it
DEFAULT_BACKBONE = "efficientnet_lite0"
MAX_FINETUNE_EPOCHS = 8
MIN_SCRATCH_SECONDS = 10
# The scratch candidate's recipe (benchmarks/scratch_digits.py): simple_cnn at least 60 epochs with mild geometric
# augmentation gained 2-3 points on digits at 10-30 labels per class over 20 plain epochs; neither a wider network
# nor vgg_small was better at both sizes.
SCRATCH_MODEL = "simple_cnn"
SCRATCH_EPOCHS = 60  # a small training set takes few steps per epoch (80 images: 3 batches)
SCRATCH_PATIENCE = 20
SCRATCH_AUGMENT = "rotate=10,translate=0.1,zoom=0.1,shear=5"  # no flips: a mirrored digit or letter is another
KEPT_FILES = ("config.json", "split.json", "model.safetensors", "logs", "checkpoints")


def _data_settings(config: TrainConfig) -> dict:
    return {f.name: getattr(config, f.name) for f in fields(DataConfig)}


def _backbones(config: TrainConfig) -> list[str]:
    """The backbone asked for, or every backbone whose ImageNet weights are installed offline (Lite0 first)."""
    from cnnkit.models import list_models
    from cnnkit.models.pretrained import offline_backbones

    if config.model is not None and config.model not in list_models():
        return [config.model]
    return [DEFAULT_BACKBONE] + [name for name, here in offline_backbones().items()
                                 if here and name != DEFAULT_BACKBONE]


def small_grayscale(data_dir: str | Path) -> bool:
    """Whether the images are grayscale by their pixels (R = G = B, whatever the file's mode: RGBA digits too) and
    small (median longer side at most 64 px): a scratch CNN's kind of data."""
    from cnnkit.data.look import look_at

    return not look_at(scan_folder(data_dir)).photos


def seconds_per_training_image(backbone: str, image_size: tuple[int, int], precision: str,
                               accelerator: str = "auto") -> float:
    """A fine-tuning step's time per image here (on the GPU the runs will use, else the CPU; channels_last,
    ``precision``), from the faster of two timed steps after a warm-up."""
    import torch

    from cnnkit.models import create_model

    cuda = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    model = create_model(backbone, 2, 3).to(device, memory_format=torch.channels_last)
    model.set_trainable_stages(-1)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    x = torch.randn(8, 3, *image_size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.tensor([0, 1] * 4, device=device)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times[1:]) / len(x)


def backbone_stages(backbone: str) -> tuple[int, ...]:
    """The widths of the pooled features of the backbone's last stages (``TransferNet.stage_widths``), built on the
    meta device: no memory, no time."""
    import torch

    from cnnkit.models import create_model

    with torch.device("meta"):
        return create_model(backbone, 2, 3).stage_widths


class Chooser:
    """The candidates' runs, their scores and the time left."""

    def __init__(self, data_dir, out: RunFolder, config: TrainConfig, budget: float, progress: bool,
                 clock=time.monotonic):
        self.data_dir, self.out, self.config, self.budget, self.progress = data_dir, out, config, budget, progress
        self.clock = clock  # a fake clock in tests of the budget
        self.start = clock()
        self.pool = config.unlabelled  # only the pool candidate self-trains: the others are what it is compared with
        self.config = config.replace(unlabelled=None) if self.pool else config
        self.backbones = _backbones(config)
        self.backbone = self.backbones[0]
        self.board: list[dict] = []
        self.runs: dict[str, TrainedRun] = {}
        self.timed: dict[tuple, float] = {}

    def run_all(self) -> list[dict]:
        """Every candidate in turn, each only when its estimate fits the time left; the leaderboard, best first.
        On small grayscale images the scratch CNN goes first: it beat the pretrained route there by 14-21 points on
        digits and costs a minute or two, where the probe's and transfer's upscaled features could take the budget."""
        small = small_grayscale(self.data_dir)
        if small:
            self.scratch()
        self.probe()
        self.transfers()
        if not small:
            self.skip("scratch", "not small grayscale images (a scratch CNN is tried on those up to 64 px)")
        self.finetune()
        return self.ranked()

    def left(self) -> float:
        return self.budget - (self.clock() - self.start)

    def seconds_of(self, name: str) -> float:
        return next((e["seconds"] for e in self.board if e["name"] == name and e.get("seconds") is not None), 0.0)

    def reserve(self) -> float:
        """Seconds kept for scoring the test split once the kept run is chosen: at the probe's pace per image
        (features and head, an upper bound), twice over for mirror images, and a few seconds to copy and report."""
        probe = self.runs.get("probe")
        if probe is None:
            return 5.0
        counts = {split: sum(c.values()) for split, c in probe.record.data.counts.items()}
        per_image = self.seconds_of("probe") / max(1, counts.get("train", 0) + counts.get("val", 0))
        return 2 * per_image * counts.get("test", 0) + 5.0

    def room_left(self, name: str) -> bool:
        """Whether any time is left after the reserve; a skip says so if not. Asked before an estimate that costs
        time itself (timed training steps take a minute on a loaded machine)."""
        if self.left() - self.reserve() > 0:
            return True
        self.skip(name, f"no time left of the budget (the budget less {self.reserve():.0f} s kept to score the test "
                        "split)")
        return False

    def step_seconds(self, backbone: str, image_size: tuple[int, int], precision: str) -> float:
        """``seconds_per_training_image``, timed once per backbone, size and precision."""
        key = (backbone, tuple(image_size), precision)
        if key not in self.timed:
            self.timed[key] = seconds_per_training_image(backbone, image_size, precision, self.config.accelerator)
        return self.timed[key]

    def fits(self, name: str, cost: float, share: float = 1.0) -> bool:
        """Whether ``cost`` seconds fit in ``share`` of the time left after the reserve; a skip says why if not."""
        room = (self.left() - self.reserve()) * share
        if cost <= room:
            return True
        part = "" if share == 1.0 else f"{share:.0%} of "
        self.skip(name, f"about {cost:.0f} s estimated, more than {part}the {max(0.0, room / share):.0f} s left "
                        f"(the budget less {self.reserve():.0f} s kept to score the test split)")
        return False

    def folder(self, name: str) -> Path:
        return self.out.path / "candidates" / name

    def attempt(self, name: str, fit, validated_by: str, note: str | None = None) -> None:
        """Train one candidate, and enter it in the leaderboard (failed ones too, with the reason)."""
        log.info("--auto: candidate %s (%.0f s of the budget left)", name, self.left())
        start = self.clock()
        entry = {"name": name, "folder": f"candidates/{name}", "validated_by": validated_by, "note": note}
        try:
            trained = fit(self.folder(name))
        except Interrupted:
            raise  # Ctrl-C or SIGTERM stops the whole chooser, not one candidate
        except Exception as e:  # one candidate's failure (a bad setting, memory) must not lose the others
            reason = str(e) if isinstance(e, CnnkitError) else f"{type(e).__name__}: {e}"
            self.board.append({**entry, "status": "failed", "note": reason[:300],
                               "seconds": round(self.clock() - start, 1)})
            log.warning("--auto: candidate %s failed: %s", name, reason, exc_info=not isinstance(e, CnnkitError))
            return
        result = trained.record.result
        accuracy = (trained.record.cross_validation.cv_accuracy if trained.record.cross_validation
                    else result.best_val_acc)
        self.runs[name] = trained
        self.board.append({**entry, "status": "ranked", "val_accuracy": accuracy,
                           "val_loss": None if trained.record.cross_validation else result.best_val_loss,
                           "seconds": round(self.clock() - start, 1)})

    def skip(self, name: str, why: str) -> None:
        self.board.append({"name": name, "status": "skipped", "note": why, "folder": None})
        log.info("--auto: candidate %s skipped: %s", name, why)

    def probe(self) -> None:
        from cnnkit.baselines.fit import train_baseline

        settings = BaselineConfig(**_data_settings(self.config), method="probe", backbone=self.backbone)
        self.attempt("probe", lambda out: train_baseline(self.data_dir, out, settings),
                     "cross-validation on train+val")

    def network(self, name: str, config: TrainConfig, validated_by: str, time_limit: float | None = None,
                note: str | None = None) -> None:
        from cnnkit.training.fit import train

        self.attempt(name, lambda out: train(self.data_dir, out, config, progress=self.progress,
                                             time_limit=time_limit), validated_by, note)

    def pretrained(self, **changes) -> TrainConfig:
        return self.config.replace(**{"model": self.backbone, "pretrained": True, **changes})

    def transfers(self) -> None:
        """A transfer run per backbone: the first when it fits the budget (about twice the probe: the mirror images'
        features and a second cross-validation), the others while one is estimated to take at most a quarter of
        the time left (its features of train+val and their mirror images, scaled by the backbones' speeds)."""
        name = f"transfer-{self.backbone}"
        if "probe" not in self.runs:
            self.network(name, self.pretrained(strategy="transfer"), "cross-validation on train+val")
        elif self.fits(name, 2 * self.seconds_of("probe")):
            self.network(name, self.pretrained(strategy="transfer"), "cross-validation on train+val")
        first = self.runs.get(name)
        self.pooled(first)
        self.stages(first)
        for backbone in self.backbones[1:]:
            if first is None:
                break
            if not self.room_left(f"transfer-{backbone}"):
                continue
            from cnnkit.models import default_image_size

            side = self.config.image_size or default_image_size(backbone)
            first_side = first.record.preprocessing.image_size
            ratio = self.step_seconds(backbone, side, "32") / self.step_seconds(self.backbone, first_side, "32")
            cost = ratio * (self.seconds_of("probe") + self.seconds_of(name)) + 5
            if self.fits(f"transfer-{backbone}", cost, share=0.25):
                self.network(f"transfer-{backbone}", self.pretrained(model=backbone, strategy="transfer"),
                             "cross-validation on train+val")
        if first is not None and len(self.backbones) > 1:
            self.concat()

    def pooled(self, first: TrainedRun | None) -> None:
        """With a pool (``unlabelled``): the first transfer run's recipe self-training on it, ranked by the same
        cross-validation on the labelled train+val (its pseudo-labels kept only where they win there, else it is the
        transfer run again and ranks after it). Estimated as the transfer run's time and the pool's features with
        their mirror images' at the probe's pace per image."""
        if self.pool is None:
            return None
        name = f"pool-{self.backbone}"
        if first is None:
            return self.skip(name, "no transfer run on the first backbone to add the pool to")
        from cnnkit.data.pool import pool_files

        images = len(pool_files(self.pool))
        counts = {split: sum(c.values()) for split, c in first.record.data.counts.items()}
        per_image = self.seconds_of("probe") / max(1, counts.get("train", 0) + counts.get("val", 0))
        if self.fits(name, self.seconds_of(f"transfer-{self.backbone}") + 2 * per_image * images):
            self.network(name, self.pretrained(strategy="transfer", unlabelled=str(self.pool)),
                         "cross-validation on train+val", note=f"self-training on {images} unlabelled images")
        return None

    def concat(self) -> None:
        """One network of every backbone whose transfer run finished, their features concatenated (the option
        ``concat_backbones``) at the first backbone's input setting, the solved head on top. The first backbone's
        features are cached; the others' are computed once at that setting (their own runs decoded other sizes and
        crops), estimated from their timed steps scaled by pixels, with their share of scoring the test split."""
        ran = [b for b in self.backbones if f"transfer-{b}" in self.runs]
        if len(ran) < 2:
            return self.skip("concat", "fewer than two backbones' transfer runs finished to concatenate")
        first = self.runs[f"transfer-{ran[0]}"].record
        if first.model.options.get("concat_backbones"):
            return self.skip("concat", "the transfer runs already concatenate backbones (`--option concat_backbones`)")
        side = first.preprocessing.image_size
        counts = {split: sum(c.values()) for split, c in first.data.counts.items()}
        per_image = self.seconds_of("probe") / max(1, counts.get("train", 0) + counts.get("val", 0))
        cost = self.seconds_of(f"transfer-{ran[0]}")
        for backbone in ran[1:]:
            own = self.runs[f"transfer-{backbone}"].record.preprocessing.image_size
            ratio = (self.step_seconds(backbone, own, "32") * (side[0] * side[1]) / (own[0] * own[1])
                     / self.step_seconds(ran[0], side, "32"))
            cost += ratio * 2 * per_image * sum(counts.values())  # train, val, test and their mirror images
        if self.fits("concat", cost):
            options = {**self.config.model_options, "concat_backbones": ran[1:]}  # a list, as the record reads back
            self.network("concat", self.pretrained(strategy="transfer", model_options=options),
                         "cross-validation on train+val", note=" + ".join(ran) + " features concatenated")
        return None

    def stages(self, first: TrainedRun | None) -> None:
        """The first transfer run with the features of the backbone's last ``STAGES`` stages, pooled and
        concatenated (the solved head standardises them): textures an earlier stage sees and the last pools away.
        Its features were cached by the probe's and the transfer's backbone passes, so it costs about the transfer's
        head fitting, estimated by the transfer's whole time (an upper bound: that included the mirror images'
        features)."""
        name = f"stages-{self.backbone}"
        if first is None:
            return self.skip(name, "no transfer run on the first backbone to compare it with")
        if first.record.model.options.get("feature_stages", 1) != 1:
            return self.skip(name, "the transfer run already uses several stages (`--option feature_stages`)")
        if len(backbone_stages(self.backbone)) < STAGES:
            return self.skip(name, f"{self.backbone} gives no intermediate stages (timm's forward_intermediates)")
        if self.fits(name, self.seconds_of(f"transfer-{self.backbone}")):
            options = {**self.config.model_options, "feature_stages": STAGES}
            self.network(name, self.pretrained(strategy="transfer", model_options=options),
                         "cross-validation on train+val", note=f"the last {STAGES} stages' features")
        return None

    def finetune(self) -> None:
        """Fine-tuning of the best transfer run's backbone, with the epochs the budget holds after a reserve for
        scoring the test split."""
        from cnnkit.models.precision import bf16_supported

        transfers = [e for e in self.ranked() if e["name"].startswith("transfer-")]
        if not transfers:
            held = any(e["name"].startswith("transfer-") and e["status"] == "skipped" for e in self.board)
            return self.skip("finetune", "no transfer run to start from: the budget held none" if held
                             else "no transfer candidate finished")
        transfer = self.runs[transfers[0]["name"]]
        backbone = transfer.record.model.name
        counts = {split: sum(c.values()) for split, c in transfer.record.data.counts.items()}
        precision = "bf16" if self.config.precision == "bf16" or (
            self.config.precision == "auto" and bf16_supported(self.config.accelerator)) else "32"
        if not self.room_left("finetune"):
            return None
        per_image = self.step_seconds(backbone, transfer.record.preprocessing.image_size, precision)
        epoch = per_image * (counts.get("train", 0) + counts.get("val", 0) / 3)
        reserve = max(self.reserve(), per_image * counts.get("test", 0) / 3 * 2 + 5) + 0.01 * sum(counts.values())
        epochs = min(MAX_FINETUNE_EPOCHS, math.floor((self.left() - reserve) / max(epoch, 1e-9)))
        if epochs < 2:
            return self.skip("finetune", f"the budget left ({max(0.0, self.left()):.0f} s) holds fewer than 2 epochs "
                                         f"of about {epoch:.0f} s each")
        self.network("finetune", self.pretrained(model=backbone, strategy="finetune", finetune_epochs=epochs),
                     "validation split", time_limit=self.left() - reserve,
                     note=f"{backbone}, {epochs} epochs of about {epoch:.0f} s planned")
        return None

    def scratch(self) -> None:
        """``SCRATCH_MODEL`` from scratch with its recipe (the augmentation asked for, else ``SCRATCH_AUGMENT``; at
        least ``SCRATCH_EPOCHS``), stopped at 40% of the time left."""
        if self.left() - self.reserve() < MIN_SCRATCH_SECONDS:
            return self.skip("scratch", f"the budget left ({max(0.0, self.left()):.0f} s, less "
                                        f"{self.reserve():.0f} s kept to score the test split) is under "
                                        f"{MIN_SCRATCH_SECONDS} s")
        config = TrainConfig(**_data_settings(self.config), model=SCRATCH_MODEL,
                             epochs=max(self.config.epochs, SCRATCH_EPOCHS),
                             early_stopping=self.config.early_stopping and max(self.config.early_stopping,
                                                                               SCRATCH_PATIENCE),
                             augment=self.config.augment or SCRATCH_AUGMENT, accelerator=self.config.accelerator)
        self.network("scratch", config, "validation split",
                     time_limit=min(self.left() * 0.4, self.left() - self.reserve()))
        return None

    def ranked(self) -> list[dict]:
        """Best first: validation accuracy, then validation loss (none: last), then the order tried."""
        ranked = [(i, e) for i, e in enumerate(self.board) if e["status"] == "ranked"]
        ranked.sort(key=lambda pair: (-(pair[1]["val_accuracy"] or 0.0), pair[1]["val_loss"] if pair[1][
            "val_loss"] is not None else math.inf, pair[0]))
        return [e for _, e in ranked]


def parse_budget(text: str | float | int) -> float:
    """Seconds from "600", "90s", "10m" or "1.5h"; ConfigError naming ``budget`` otherwise."""
    units = {"s": 1, "m": 60, "h": 3600}
    value = str(text).strip().lower()
    scale = units.get(value[-1:], None)
    try:
        seconds = float(value[:-1] if scale else value) * (scale or 1)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 7 * 86400 or seconds != seconds:
        raise ConfigError(f"Expected `budget` as seconds or a duration such as 90s, 10m or 1h (more than 0). "
                          f"Received: budget={text!r}")
    return seconds


def _keep(out: RunFolder, best: TrainedRun, recipe: Recipe) -> TrainedRun:
    """Copy the best candidate's run files into ``out`` and write its record with the leaderboard."""
    for name in KEPT_FILES:
        source = best.run_dir / name
        if source.is_dir():
            shutil.copytree(source, out.path / name, dirs_exist_ok=True)
        elif source.exists():
            shutil.copy2(source, out.path / name)
    record = best.record.replace(recipe=recipe)
    out.write_record(record)
    return TrainedRun(out.path, record)


def auto_train(data_dir: str | Path, out_dir: str | Path, config: TrainConfig | None = None,
               budget: float | str = 600, progress: bool = True, overwrite: bool = False) -> TrainedRun:
    """Try the recipes within ``budget`` seconds (or "10m"), keep the best on validation data as the run in
    ``out_dir`` (every candidate stays in ``out_dir/candidates``); the data settings, seed, ``model`` (a backbone;
    default efficientnet_lite0) and ``precision`` of ``config`` apply to every candidate."""
    config = config or TrainConfig()
    seconds = parse_budget(budget)
    from cnnkit.models import is_autoencoder

    if config.model is not None and is_autoencoder(config.model):
        raise ConfigError(f"{config.model!r} is an autoencoder; `auto` ranks classifiers by validation accuracy. "
                          "Train the autoencoder alone (without `auto`).")

    if scan_folder(data_dir).multi_label:
        require_of_data(KINDS["multi-label"], "auto", data_dir)
    if config.unlabelled is not None:  # a bad pool is refused before any candidate's work, not after them
        from cnnkit.data.pool import pool_files

        pool_files(config.unlabelled)
    out = RunFolder(out_dir)
    refuse_occupied(out, overwrite)
    with locked(out.path):
        remove_outputs(out, (*RUN_OUTPUTS, "candidates"))  # an earlier run's files and candidates: other weights
        chooser = Chooser(data_dir, out, config, seconds, progress)
        ranked = chooser.run_all()
        if not ranked:
            raise RunError(f"No candidate of the recipe chooser finished: {[e.get('note') for e in chooser.board]}")
        kept = ranked[0]["name"]
        for entry in chooser.board:
            entry["status"] = "kept" if entry["name"] == kept else entry["status"]
        recipe = Recipe(budget_seconds=seconds, seconds=round(chooser.clock() - chooser.start, 1), kept=kept,
                        candidates=tuple(Candidate(**entry) for entry in chooser.board),
                        backbones=tuple(chooser.backbones))
        log.info("--auto: kept %s (validation accuracy %.4f) after %.0f s of %.0f", kept, ranked[0]["val_accuracy"],
                 recipe.seconds, seconds)
        return _keep(out, chooser.runs[kept], recipe)

