"""``--augment "flip,rotate=15,zoom=0.1"``: a readable augmentation spec, parsed and checked once."""

from __future__ import annotations

from dataclasses import dataclass

from cnnkit.errors import ConfigError


@dataclass(frozen=True)
class Transform:
    """One spec entry: its value range, what it does, and when it keeps labels."""

    kind: str  # "geometric" or "photometric"
    default: float | None
    low: float
    high: float
    meaning: str


TRANSFORMS: dict[str, Transform] = {
    "flip": Transform("geometric", None, 0, 0, "mirror left-right with probability 0.5 (flip=v: up-down; flip=hv: both)"),
    "vflip": Transform("geometric", None, 0, 0, "mirror up-down with probability 0.5"),
    "rotate": Transform("geometric", 15, 0, 180, "rotate by a uniform angle in [-D, D] degrees"),
    "translate": Transform("geometric", 0.1, 0, 0.5, "shift by up to F of the width and height"),
    "zoom": Transform("geometric", 0.1, 0, 0.9, "scale by a factor in [1-F, 1+F]"),
    "shear": Transform("geometric", 5, 0, 45, "shear by up to D degrees"),
    "perspective": Transform("geometric", 0.2, 0, 1, "perspective distortion of strength S, probability 0.5"),
    "crop": Transform("geometric", 0.2, 0, 0.9, "random crop keeping 1-F to all of the area, resized back"),
    "brightness": Transform("photometric", 0.2, 0, 1, "add a uniform offset in [-B, B]"),
    "contrast": Transform("photometric", 0.2, 0, 1, "multiply contrast by a factor in [1-C, 1+C]"),
    "saturation": Transform("photometric", 0.5, 0, 1, "multiply colour saturation by a factor in [1-S, 1+S] "
                                                      "(colour images; grey ones pass unchanged)"),
    "noise": Transform("photometric", 0.05, 0, 1, "add Gaussian noise of standard deviation S (image in [0, 1])"),
    "blur": Transform("photometric", 1.0, 0, 5, "Gaussian blur, sigma up to S pixels, probability 0.5"),
}
FLIP_MODES = ("h", "v", "hv")
OVERSAMPLE_DEFAULT = "brightness=0.1,contrast=0.1,noise=0.02"  # keeps labels of almost any image data
PHOTOMETRIC = tuple(name for name, t in TRANSFORMS.items() if t.kind == "photometric")  # they move no pixel
ORDER = tuple(TRANSFORMS)  # applied in this order whatever order the spec lists them in


@dataclass(frozen=True)
class AugmentSpec:
    """Parsed transforms: ``{"flip": "h", "rotate": 15.0, ...}`` in application order."""

    values: tuple[tuple[str, float | str], ...]

    @classmethod
    def parse(cls, text: str | None) -> AugmentSpec:
        """``"flip,rotate=15,noise=0.05"``; a name without a value takes its default (see ``TRANSFORMS``)."""
        values: dict[str, float | str] = {}
        for item in (text or "").split(","):
            item = item.strip()
            if not item or item.lower() == "none":
                continue
            name, sep, raw = (part.strip() for part in item.partition("="))
            name = name.lower()
            if name not in TRANSFORMS:
                raise ConfigError(f"Unknown augmentation {name!r} in {text!r}. Known: {', '.join(TRANSFORMS)}.")
            if name in values:
                raise ConfigError(f"Augmentation {name!r} is given twice in {text!r}.")
            values[name] = _value(name, raw if sep else None, text)
        if "vflip" in values:  # one way to say it: vflip is flip=v
            del values["vflip"]
            values["flip"] = {"h": "hv", "v": "v", "hv": "hv"}[values.get("flip", "v")]
        return cls(tuple((name, values[name]) for name in ORDER if name in values))

    def __bool__(self) -> bool:
        return bool(self.values)

    def __str__(self) -> str:
        return ",".join(name if value == "h" else f"{name}={value}" if isinstance(value, str) else f"{name}={value:g}"
                        for name, value in self.values)

    def get(self, name: str, default=None):
        return dict(self.values).get(name, default)

    @property
    def flips(self) -> str:
        """"", "h", "v" or "hv"."""
        return str(self.get("flip", ""))


def _value(name: str, raw: str | None, text: str) -> float | str:
    if name in ("flip", "vflip"):
        mode = (raw or ("v" if name == "vflip" else "h")).lower()
        if mode not in FLIP_MODES or (name == "vflip" and raw):
            raise ConfigError(f"Expected flip, flip=v or flip=hv (or vflip). Received: {name}={raw} in {text!r}")
        return mode
    t = TRANSFORMS[name]
    try:
        value = t.default if raw is None else float(raw)
    except ValueError:
        raise ConfigError(f"Expected a number for {name!r}. Received: {name}={raw} in {text!r}") from None
    if not t.low < value <= t.high:
        raise ConfigError(f"Expected {name} in ({t.low:g}, {t.high:g}]. Received: {name}={raw}")
    return float(value)
