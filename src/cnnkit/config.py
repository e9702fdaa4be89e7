"""Training settings as one frozen dataclass: the single source of truth, written into every run folder."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from cnnkit.errors import ConfigError, check_choice

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULERS = ("none", "cosine", "step", "plateau")
BALANCE = ("none", "oversample", "weights")
STRATEGIES = ("auto", "scratch", "transfer", "finetune")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides how a model is trained; defaults suit small from-scratch CNNs."""

    model: str = "simple_cnn"
    model_options: dict = field(default_factory=dict)
    init: str = "default"
    image_size: tuple[int, int] | None = None  # None: the model's input size, else from the data (16..64)
    channels: int | None = None  # None: 1 if every image is grayscale, else 3
    epochs: int = 20
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # SGD and RMSProp
    weight_decay: float = 0.0
    scheduler: str = "cosine"
    early_stopping: int = 10  # patience in epochs without a lower validation loss; 0 turns it off
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    skip_bad: bool = False
    accelerator: str = "auto"
    augment: str | None = None  # spec such as "flip,rotate=15,noise=0.05" (cnnkit.augment.spec); None: no augmentation
    mixup: float = 0.0  # Beta(alpha, alpha) of mixup; 0 turns it off
    cutmix: float = 0.0  # Beta(alpha, alpha) of CutMix; 0 turns it off
    balance: str = "none"  # "oversample" (each class seen about equally often) or "weights" (class-weighted loss)
    pretrained: bool = False  # start a timm backbone from ImageNet weights (or from ``weights``)
    weights: str | None = None  # a local safetensors file or state dict for the backbone; implies pretrained
    strategy: str = "auto"  # scratch: train everything; transfer: frozen backbone, new head; finetune: then unfreeze
    unfreeze: int | None = None  # finetune: the last N backbone stages; None: all of it
    finetune_epochs: int = 5  # finetune: epochs of the second phase
    finetune_lr: float | None = None  # finetune: learning rate of the unfrozen backbone; None: lr / 10
    feature_cache: bool = True  # frozen backbone: compute pooled features once, train the head on them
    cache_views: int | None = None  # with --augment: cache this many views per image; None: no cache

    def __post_init__(self) -> None:
        check_choice("optimizer", self.optimizer, OPTIMIZERS, "TrainConfig")
        check_choice("scheduler", self.scheduler, SCHEDULERS, "TrainConfig")
        check_choice("balance", self.balance, BALANCE, "TrainConfig")
        check_choice("strategy", self.strategy, STRATEGIES, "TrainConfig")
        if self.weights is not None:
            object.__setattr__(self, "pretrained", True)
        if self.strategy == "auto":
            object.__setattr__(self, "strategy", "transfer" if self.pretrained else "scratch")
        if self.strategy in ("transfer", "finetune") and not self.pretrained:
            raise ConfigError(f"--strategy {self.strategy} starts from a pretrained backbone: add --pretrained "
                              "(or --weights FILE).")
        if self.finetune_lr is None:
            object.__setattr__(self, "finetune_lr", self.lr / 10)
        if self.finetune_lr <= 0 or self.finetune_epochs < 1 or (self.unfreeze is not None and self.unfreeze < 1):
            raise ConfigError("Expected --finetune-lr > 0, --finetune-epochs >= 1 and --unfreeze >= 1.")
        if self.cache_views is not None and self.cache_views < 1:
            raise ConfigError(f"Expected --cache-views >= 1. Received: {self.cache_views}")
        for name in ("mixup", "cutmix"):
            if getattr(self, name) < 0:
                raise ConfigError(f"Expected {name} >= 0 (0 turns it off). Received: {name}={getattr(self, name)}")
        if self.augment is not None:
            from cnnkit.augment.spec import AugmentSpec

            object.__setattr__(self, "augment", str(AugmentSpec.parse(self.augment)) or None)
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"Expected {name} >= 1. Received: {name}={getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"Expected a positive learning rate. Received: lr={self.lr}")
        if self.channels not in (None, 1, 3):
            raise ConfigError(f"Expected channels to be 1 or 3. Received: channels={self.channels}")
        if self.image_size is not None:
            size = tuple(int(s) for s in self.image_size)
            if len(size) != 2 or min(size) < 1:
                raise ConfigError(f"Expected image_size as (height, width). Received: image_size={self.image_size}")
            object.__setattr__(self, "image_size", size)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("image_size") is not None:
            values["image_size"] = tuple(values["image_size"])
        return cls(**values)


def parse_size(text: str) -> tuple[int, ...]:
    """'32' -> (32, 32); '48x64' -> (48, 64); '1x32x32' -> (1, 32, 32)."""
    try:
        parts = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"Expected a size like 32, 48x64 or 1x32x32. Received: {text!r}") from None
    if any(p < 1 for p in parts):
        raise ConfigError(f"Sizes must be positive. Received: {text!r}")
    return parts * 2 if len(parts) == 1 else parts


def parse_options(items: list[str] | None) -> dict:
    """``["batch_norm=false", "filters=16,32", "dropout=0.1"]`` -> typed model options."""

    def value(text: str):
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if "," in text:
            return tuple(value(part) for part in text.split(",") if part)
        for cast in (int, float):
            try:
                return cast(text)
            except ValueError:
                pass
        return text

    options = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"Expected a model option as name=value. Received: {item!r}")
        options[key.strip().replace("-", "_")] = value(raw.strip())
    return options
