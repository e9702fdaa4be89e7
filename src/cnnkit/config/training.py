"""Settings of training and baselines as frozen dataclasses: every option declared once, with its default, allowed
values and help; written into every run folder."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from cnnkit.config.augment import AugmentSpec
from cnnkit.config.parse import parse_options, parse_size
from cnnkit.config.reading import ReadConfig
from cnnkit.errors import ConfigError
from cnnkit.options import check_declared, check_range, option

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULERS = ("none", "cosine", "step", "plateau")
BALANCE = ("none", "oversample", "weights")
STRATEGIES = ("auto", "scratch", "transfer", "finetune")
INIT_SCHEMES = ("default", "kaiming", "xavier")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
BASELINE_METHODS = ("knn", "linear", "handcrafted", "probe")
HEAD_SOLVERS = ("auto", "lbfgs", "epochs")
PRECISIONS = ("auto", "32", "bf16")
DATA_IN = ("auto", "memory", "disk")
VAL_FOLDER_ROLES = ("test", "validation")

SCALE = "several processes or machines (Lightning DDP)"
DATA, MODEL, BACKBONE, AUGMENT = ("data", "model and training", "pretrained backbones (any timm model; "
                                  "efficientnet_lite0 works offline)", "augmentation and imbalance")


def _from_dict(cls, data: dict):
    """The dataclass ``cls`` from a JSON dict: unknown keys ignored, lists back to tuples where declared."""
    known = {f.name for f in fields(cls)}
    values = {k: v for k, v in data.items() if k in known}
    if values.get("image_size") is not None:
        values["image_size"] = tuple(values["image_size"])
    return cls(**values)


@dataclass(frozen=True)
class DataConfig(ReadConfig):
    """How a data folder becomes decoded, split images: shared by network training and baselines."""

    image_size: tuple[int, int] | None = option(
        None, "HxW or one side; default: the model's own, else the data's median aspect and side (16..64; "
        "up to 96 from 1,000 images, 128 from 5,000)", group=DATA,
        parse=parse_size, metavar="SIZE")
    channels: int | None = option(None, "1 or 3; default: 1 if every image is grayscale, else 3", group=DATA,
                                  choices=(None, 1, 3))
    val_fraction: float = option(0.15, "share of each class held out for validation (flat folders)", group=DATA)
    test_fraction: float = option(0.15, "share of each class held out for the test (flat folders)", group=DATA)
    seed: int = option(0, "seed of the split, the initial weights and the batches: the same seed gives the same "
                          "split", group=DATA)
    val_folder: str = option("test", "train/ and val/ without test/: 'test' scores val/ once as the test split "
                                     "and carves validation out of train/; 'validation' lets val/ choose the "
                                     "weights (the run then has no test split)", choices=VAL_FOLDER_ROLES,
                             group=DATA, metavar="ROLE")
    dedupe: bool = option(False, "leave out copies of identical files before the split: one copy of each is kept, "
                                 "none of copies labelled differently (what is left out is recorded); without it, "
                                 "copies are kept together in one split", group=DATA)

    def __post_init__(self) -> None:
        check_declared(self)
        check_range(self, "seed", 0, 2**32 - 1)
        for name in ("val_fraction", "test_fraction"):
            check_range(self, name, 0.0, None)
            if not getattr(self, name) < 1:
                raise ConfigError(f"Expected `{name}` in [0, 1). Received: {name}={getattr(self, name)}")
        if self.image_size is not None:
            size = tuple(int(s) for s in self.image_size)
            if len(size) != 2 or min(size) < 1:
                raise ConfigError(f"Expected `image_size` as (height, width). Received: image_size={self.image_size}")
            object.__setattr__(self, "image_size", size)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        return _from_dict(cls, data)


@dataclass(frozen=True)
class TrainConfig(DataConfig):
    """Everything that decides how a network is trained; defaults suit small from-scratch CNNs."""

    model: str | None = option(None, "registered model name or any timm architecture (see `cnnkit models`); "
                                      "default: chosen from the data (photos: efficientnet_lite0, pretrained, with a "
                                      "solved head; small grayscale images: simple_cnn)", group=MODEL)
    model_options: dict = option(default_factory=dict, help="model option, repeatable (e.g. batch_norm=false, "
                                 "filters=16,32); for backbones the head's dropout and hidden, feature_stages=3 "
                                 "(earlier stages' features too), concat_backbones=efficientnet_lite1,"
                                 "efficientnet_lite2 (those backbones' features beside the model's)", group=MODEL,
                                 flag="--option", metavar="NAME=VALUE", repeat=True, parse=parse_options)
    init: str = option("default", "weight initialisation of cnnkit's own networks", choices=INIT_SCHEMES,
                       group=MODEL)
    code_size: int | None = option(None, "autoencoders (conv_autoencoder, denoising_autoencoder): numbers in the "
                                         "code each image is squeezed into (default 32)", group=MODEL, metavar="N")
    epochs: int = option(20, "maximum epochs (of the head, for pretrained backbones); with resume, the new total",
                         group=MODEL)
    batch_size: int = option(32, "images per batch (per step: with several processes, each takes its share)",
                             group=MODEL)
    optimizer: str = option("adam", "optimiser", choices=OPTIMIZERS, group=MODEL)
    lr: float = option(1e-3, "learning rate", group=MODEL)
    momentum: float = option(0.9, "momentum of sgd and rmsprop", group=MODEL)
    weight_decay: float = option(0.0, "L2 weight decay", group=MODEL)
    scheduler: str = option("cosine", "learning-rate schedule over the epochs", choices=SCHEDULERS, group=MODEL)
    early_stopping: int = option(10, "epochs without a lower validation loss before stopping; 0 turns it off",
                                 group=MODEL, metavar="PATIENCE")
    accelerator: str = option("auto", "Lightning accelerator", choices=ACCELERATORS, group=MODEL)
    augment: str | None = option(None, 'random transforms while training, e.g. "flip,rotate=15,translate=0.1,'
                                       'noise=0.05" (see the README for names and ranges)', group=AUGMENT,
                                 metavar="SPEC")
    mixup: float = option(0.0, "mixup with Beta(ALPHA, ALPHA); 0 turns it off", group=AUGMENT, metavar="ALPHA")
    cutmix: float = option(0.0, "CutMix with Beta(ALPHA, ALPHA); 0 turns it off", group=AUGMENT, metavar="ALPHA")
    balance: str = option("none", "imbalanced classes: oversample rare ones, or weight the loss by class",
                          choices=BALANCE, group=AUGMENT)
    pretrained: bool = option(False, "start a timm backbone from ImageNet weights", group=BACKBONE)
    weights: str | None = option(None, "backbone weights from a local safetensors or state-dict file (implies "
                                       "pretrained)", group=BACKBONE, metavar="FILE")
    strategy: str = option("auto", "transfer: frozen backbone, new head; finetune: then unfreeze; auto: transfer "
                                   "when pretrained, else scratch", choices=STRATEGIES, group=BACKBONE)
    unfreeze: int | None = option(None, "finetune: the last N backbone stages (default: all)", group=BACKBONE,
                                  metavar="N")
    head_solver: str = option("auto", "frozen backbone, linear head: 'lbfgs' fits it to the optimum of the "
                                      "regularised cross-entropy (L2 by cross-validation on train+val), 'epochs' "
                                      "trains it epoch by epoch; auto: lbfgs where it applies (cached features, no "
                                      "hidden layer, no mixing)", choices=HEAD_SOLVERS, group=BACKBONE)
    unlabelled: str | None = option(None, "a folder of images nobody labelled (searched recursively): the solved "
                                          "head labels them, confident pseudo-labels (class-balanced) join training "
                                          "for up to 3 rounds, kept only if better on validation (transfer only)",
                                    group=BACKBONE, metavar="FOLDER")
    finetune_epochs: int = option(5, "finetune: epochs after the head's", group=BACKBONE)
    finetune_lr: float | None = option(None, "finetune: learning rate of the backbone's last stage, falling "
                                             "geometrically to a tenth of it at the stem; the head keeps lr (default: "
                                             "lr / 10)", group=BACKBONE)
    precision: str = option("auto", "finetune: bf16 autocast for the trainable backbone (auto: where the CPU or GPU "
                                    "supports bf16) or 32 (float32)", choices=PRECISIONS, group=BACKBONE)
    feature_cache: bool = option(True, "frozen backbone: run it every epoch instead of caching its features",
                                 group=BACKBONE, flag="--no-cache", negate=True)
    cache_views: int | None = option(None, "with augment and a frozen backbone: cache K views per image (default: "
                                           "no cache)", group=BACKBONE, metavar="K")
    data_in: str = option("auto", "where decoded images live while training: memory, or disk (decoded once into a "
                                  "memory-mapped cache, read back in DataLoader workers: data larger than memory); "
                                  "auto: disk above 1 GiB of decoded pixels", choices=DATA_IN, group=DATA)
    workers: int | None = option(None, "DataLoader worker processes reading images from the disk cache (default: "
                                       "one per CPU, at most 4)", group=DATA, metavar="N")
    devices: int = option(1, "processes per machine, one per GPU (or CPU processes); above 1 trains with DDP",
                          group=SCALE, metavar="N")
    num_nodes: int = option(1, "machines, each running `devices` processes (torchrun or SLURM: see the README)",
                            group=SCALE, metavar="M")
    distributed: str = option("auto", "Lightning's strategy when several processes train (auto: ddp; or ddp_spawn, "
                                      "fsdp, deepspeed: whatever Lightning's Trainer accepts)", group=SCALE,
                              metavar="STRATEGY")

    def __post_init__(self) -> None:
        super().__post_init__()
        derived = set()  # settings resolved from others: replace() resolves them again
        if self.weights is not None and not self.pretrained:
            object.__setattr__(self, "pretrained", True)
            derived.add("pretrained")
        if self.strategy == "auto":
            object.__setattr__(self, "strategy", "transfer" if self.pretrained else "scratch")
            derived.add("strategy")
        if self.strategy in ("transfer", "finetune") and not self.pretrained:
            raise ConfigError(f"strategy={self.strategy!r} starts from a pretrained backbone: set `pretrained` "
                              "(or `weights`).")
        if self.finetune_lr is None:
            object.__setattr__(self, "finetune_lr", self.lr / 10)
            derived.add("finetune_lr")
        object.__setattr__(self, "_derived", frozenset(derived))
        self._check_numbers()
        if self.head_solver == "lbfgs" and (self.strategy == "scratch" or self.mixup or self.cutmix
                                            or self.model_options.get("hidden") or not self.feature_cache
                                            or (self.augment and (self.cache_views or 0) != 1)):
            raise ConfigError("head_solver='lbfgs' solves a linear head on cached features of a frozen backbone: it "
                              "needs a pretrained backbone, no hidden layer, no mixup or CutMix, and the feature "
                              "cache with one view per image. Use head_solver='epochs' otherwise.")
        if self.augment is not None:
            object.__setattr__(self, "augment", str(AugmentSpec.parse(self.augment)) or None)
        if self.unlabelled is not None:
            self._check_unlabelled(derived)

    def _check_unlabelled(self, derived: set) -> None:
        """A pool is pseudo-labelled by the solved head of a transfer run; refused elsewhere, in one line. A default
        model (none named) gets the pretrained backbone: ``training.defaults.choose_model``."""
        scratch = self.strategy == "scratch" and ("strategy" not in derived or self.model is not None)
        refusals = [(scratch, "with a model trained from scratch" + (f" ({self.model})" if self.model else "")),
                    (self.strategy == "finetune", "with strategy='finetune'"),
                    (self.head_solver == "epochs", "with head_solver='epochs'"),
                    (bool(self.mixup or self.cutmix), "with mixup or CutMix"),
                    (bool(self.model_options.get("hidden")), "with a hidden layer in the head"),
                    (not self.feature_cache, "without the feature cache"),
                    (bool(self.augment), "with augment (cached views)"),
                    (self.balance == "oversample", "with balance='oversample' (balance='weights' works)")]
        why = next((text for refused, text in refusals if refused), None)
        if why:
            raise ConfigError(f"`unlabelled` (self-training on a pool) is not supported {why}: it needs the solved "
                              "head on a pretrained backbone's cached features (`pretrained`, strategy='transfer', "
                              "no hidden layer, mixup, CutMix or augment).")

    def _check_numbers(self) -> None:
        for name in ("epochs", "batch_size", "finetune_epochs", "unfreeze", "cache_views", "code_size"):
            check_range(self, name, 1)
        check_range(self, "workers", 0)
        check_range(self, "devices", 1)
        check_range(self, "num_nodes", 1)
        for name in ("lr", "finetune_lr"):
            check_range(self, name, 0.0, 10.0, strict_low=True)
        for name in ("mixup", "cutmix", "weight_decay", "early_stopping"):
            check_range(self, name, 0.0)
        check_range(self, "momentum", 0.0, 1.0)

    @property
    def network_options(self) -> dict:
        """The builder's options: ``model_options``, with ``code_size`` when it is set."""
        return {**self.model_options, **({"code_size": self.code_size} if self.code_size is not None else {})}

    def replace(self, **changes) -> TrainConfig:
        """A copy with ``changes``; settings that were derived (``finetune_lr`` from ``lr``, ``strategy`` from
        ``pretrained``) are derived again from the new values."""
        undo = {"pretrained": False, "strategy": "auto", "finetune_lr": None}
        resolved = {k: undo[k] for k in getattr(self, "_derived", ()) if k not in changes}
        return replace(self, **{**resolved, **changes})


@dataclass(frozen=True)
class BaselineConfig(DataConfig):
    """A classical baseline on the same split as a network run (same data settings, same seed)."""

    method: str = option("knn", "k-NN or softmax on pixels, hand-crafted features, or probe: a logistic regression "
                                "on a pretrained backbone's frozen features", choices=BASELINE_METHODS)
    backbone: str = option("efficientnet_lite0", "probe: the pretrained backbone whose features it classifies")
    folds: int = option(5, "cross-validation folds on train+val (at most the smallest class's count)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range(self, "folds", 2)
