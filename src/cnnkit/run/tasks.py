"""The kinds of run, one table (as Ultralytics' ``task_map``): what each kind is, the part of the record only it
has, and what it supports. Every command asks the table (``require``), and its refusals are written here once.

A new kind is one entry here and its own package; a command that does not list it in ``supports`` refuses it with
the entry's own words.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnkit.errors import ConfigError, RunError

# What a command asks of a run, and how a refusal names it.
CAPABILITIES = {
    "network": "this command, which needs an image network",
    "predict": "predicting classes",
    "evaluate": "evaluation by class",
    "export": "an ONNX export of a classifier",
    "threshold": "a two-class decision threshold",
    "scan": "scanning photographs",
    "verify": "verifying a scan's detections (`verify`)",
    "serve": "serving it",
    "inspect": "inspection of a classifier's decision",
    "latent": "its latent space (features, similar, tsne)",
    "knn": "a k-NN vote of the latent space (`knn`)",
    "suggest": "suggesting which images to label next (`suggest`)",
    "anomaly": "an anomaly score",
    "auto": "`auto`'s ranking of recipes",
    "balance": "balancing classes (`balance`)",
    "baseline": "the classical baselines",
    "unlabelled": "learning from a pool of images nobody labelled (`unlabelled`: self-training)",
}


@dataclass(frozen=True)
class RunKind:
    """One kind of run: its name (the record's ``task``, or "multi-label"), what it is in a sentence, the record's
    field only it fills, what it supports, and where to turn for the rest."""

    name: str
    what: str
    record_field: str | None
    supports: frozenset[str]
    instead: str

    def refusal(self, run: object, capability: str) -> str:
        return f"{run} is {self.what}, so {CAPABILITIES[capability]} does not apply.{self.instead}"

    def data_refusal(self, data: object, capability: str) -> str:
        """For a data set that would train this kind of run (multi-label labels such as a|b)."""
        return (f"{data} holds the data of {self.what}, so {CAPABILITIES[capability]} does not apply: it assumes "
                "one class per image. Leave that out and train a network on it (name the recipe: `model`, `pretrained`).")


_CLASSIFIER = frozenset(CAPABILITIES) - {"anomaly"}
_DATA = ("auto", "balance", "baseline", "unlabelled")  # asked of a data set before any run exists

KINDS: dict[str, RunKind] = {kind.name: kind for kind in (
    RunKind("classify", "a classifier (one class per image)", "decision", _CLASSIFIER,
            " Train an autoencoder (`model` conv_autoencoder) for anomaly scores."),
    RunKind("multi-label", "a multi-label classifier (any number of classes per image, a threshold for each)",
            "label_thresholds", frozenset({"network", "predict", "evaluate", "export", "serve", "inspect", "latent",
                                         "suggest"}),
            " Its per-class thresholds were chosen on the validation split when it trained (config.json, "
            "label_thresholds); train a single-label run for what assumes one class per image."),
    RunKind("reconstruct", "an autoencoder run: it reconstructs images and has no classes to predict",
            "reconstruction", frozenset({"network", "latent", "knn", "anomaly"}),
            " Use `cnnkit anomaly RUN IMAGES` (reconstruction error, error maps) or its latent space (features, "
            "similar, tsne, evaluate --knn)."),
    RunKind("points", "a point detector's run: it marks object centres in photographs and classifies no images",
            "points", frozenset({"scan"}),
            " Use `cnnkit scan RUN PHOTO` (add `verify` with a classifier run to name each object)."),
)}


def kind_named(task: str, multi_label: bool = False) -> RunKind:
    """The kind of a record's ``task`` (with ``multi_label`` for a classifier of several labels per image)."""
    name = "multi-label" if task == "classify" and multi_label else task
    if name not in KINDS:
        raise RunError(f"Unknown kind of run {task!r}; cnnkit knows {', '.join(KINDS)}.")
    return KINDS[name]


def require(kind: RunKind, capability: str, run: object) -> None:
    """RunError, in the kind's own words, unless ``kind`` supports ``capability``."""
    if capability not in CAPABILITIES:
        raise ValueError(f"{capability!r} is not a capability of the table of run kinds")
    if capability not in kind.supports:
        raise RunError(kind.refusal(run, capability))


def require_of_data(kind: RunKind, capability: str, data: object) -> None:
    """ConfigError unless the kind of run ``data`` trains supports ``capability`` (asked before training)."""
    if capability not in _DATA:
        raise ValueError(f"{capability!r} is not asked of a data set")
    if capability not in kind.supports:
        raise ConfigError(kind.data_refusal(data, capability))
