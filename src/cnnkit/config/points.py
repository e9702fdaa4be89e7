"""How ``cnnkit points`` trains a point detector on dotted photographs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cnnkit.config.augment import PHOTOMETRIC, AugmentSpec
from cnnkit.config.commands import check_region, region_option
from cnnkit.config.parse import Region
from cnnkit.config.training import ACCELERATORS
from cnnkit.errors import ConfigError
from cnnkit.options import check_declared, check_range, option, renamed

POINT_BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


@dataclass(frozen=True)
class PointsConfig:
    """A point detector's training: crops of the dotted photos (and, optionally, patches), a one-cycle schedule."""

    backbone: str = option("efficientnet_lite0", "pretrained backbone (packaged ImageNet weights, offline)",
                           choices=POINT_BACKBONES)
    epochs: int = option(6, "epochs; a checkpoint after each (`cnnkit train --resume RUN` continues a killed run)")
    steps_per_epoch: int = option(100, "training steps per epoch", metavar="N", renamed_from=("steps",))
    batch_size: int = option(8, "crops per step (and as many patches with `patches`)")
    crop: int = option(256, "side of the training crops in pixels, a multiple of 32", metavar="PIXELS")
    lr: float = option(1e-3, "the head's peak learning rate (one-cycle schedule); the backbone's is a fifth")
    patches: tuple[str, ...] | None = option(None, "also learn from a folder of class folders of patches at the "
                                                   "photos' scale (`cnnkit patches` output, its mined hard "
                                                   "negatives, other photos' patches), repeatable: an object's "
                                                   "patch teaches its centre, a background* folder's patch "
                                                   "background everywhere", metavar="DIR", repeat=True)
    augment: str | None = option(None, 'photometric transforms of every crop and patch while training, e.g. '
                                       '"brightness=0.2,contrast=0.3,saturation=0.8" (of `cnnkit train --augment`\'s: '
                                       f"{', '.join(PHOTOMETRIC)}; crops are always turned and flipped)",
                                 metavar="SPEC")
    by_class: bool = option(False, "also learn each dot's class (its class_name; a patch folder's name): `scan` "
                                   "then names each detection, for per-class counts without a verifier")
    detection_threshold: float = option(0.3, "the detection threshold `scan` uses unless given one or told to "
                                             "choose", metavar="T", renamed_from=("threshold",))
    label: str = option("object", "the centre map's name, and the detections' class without `by_class` (`scan "
                                  "--verify` names them with a classifier)", metavar="NAME")
    seed: int = option(0, "seed of the crops, the patches drawn and the head's weights")
    accelerator: str = option("auto", "Lightning accelerator", choices=ACCELERATORS)
    region: Region | None = region_option("the same for every photo: crops are drawn inside it, and only its dots "
                                          "teach")

    def __post_init__(self) -> None:
        if isinstance(self.patches, (str, Path)):  # one folder (a record written before several were taken)
            object.__setattr__(self, "patches", (str(self.patches),))
        elif self.patches is not None:
            object.__setattr__(self, "patches", tuple(str(p) for p in self.patches) or None)
        check_declared(self)
        check_region(self)
        check_photometric(self)
        check_range(self, "epochs", 1, 10000)
        check_range(self, "steps_per_epoch", 1, 10**6)
        check_range(self, "batch_size", 1, 4096)
        check_range(self, "crop", 64, 4096)
        check_range(self, "lr", 0.0, 10.0, strict_low=True)
        check_range(self, "detection_threshold", 0.0, 1.0, strict_low=True)
        check_range(self, "seed", 0, 2**32 - 1)
        if self.epochs * self.steps_per_epoch < 4:
            raise ConfigError(f"Expected at least 4 training steps in all (`epochs` x `steps_per_epoch`). Received: "
                              f"epochs={self.epochs}, steps_per_epoch={self.steps_per_epoch}")
        if self.crop % 32:
            raise ConfigError(f"Expected `crop` a multiple of 32 pixels. Received: crop={self.crop}")
        if not self.label or self.label.lower().startswith("background") or any(c in self.label for c in '/\\:*?"<>|'):
            raise ConfigError(f"Expected `label` a class name, not background*. Received: {self.label!r}")

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return {**asdict(self), "patches": None if self.patches is None else list(self.patches),
                "region": None if self.region is None else str(self.region)}

    @classmethod
    def from_dict(cls, data: dict) -> PointsConfig:
        from dataclasses import fields

        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in renamed(cls, data, warn=False).items() if k in known})  # older records too


def check_photometric(config: PointsConfig) -> None:
    """``augment`` parsed to its canonical text; geometric transforms refused (they would move the centres)."""
    if config.augment is None:
        return
    try:
        spec = AugmentSpec.parse(config.augment)
    except ConfigError as e:
        raise ConfigError(f"`augment`: {e}") from None
    moving = [name for name, _ in spec.values if name not in PHOTOMETRIC]
    if moving:
        raise ConfigError(f"`augment` of a point detector takes photometric transforms only "
                          f"({', '.join(PHOTOMETRIC)}): {', '.join(moving)} would move the objects' centres, and "
                          f"every crop is already turned and flipped. Received: augment={config.augment!r}")
    object.__setattr__(config, "augment", str(spec) or None)
