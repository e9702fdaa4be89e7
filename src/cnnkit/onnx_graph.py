"""A network's output on decoded images as an ONNX graph, run by ONNX Runtime: exported once per weights and input
setting, checked against torch when exported, and kept on disk.

On the CPU, ONNX Runtime runs a frozen backbone several times faster than eager torch in float32, with the same
numbers (BENCHMARKS.md, features). The feature cache (pooled backbone features) and the latent space (a run's vectors)
use it there; torch stays the fallback: without onnxruntime, on a GPU, or where an export fails or differs from torch.

A graph takes (batch, height, width, channels) uint8, as images are decoded, and scales and standardises them itself,
as ``cnnkit export``'s graph does; ``export_program`` is the exporter both use.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import warnings
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnkit._io import atomic_write, sha256_file, write_text
from cnnkit.data.preprocess import Preprocessing
from cnnkit.errors import ModelError

log = logging.getLogger("cnnkit")
OPSET = 18  # pinned: the same graph whatever torch's default becomes
GRAPH_VERSION = 1  # in every graph's file name: graphs made another way are never reused
MAX_DIFFERENCE = 1e-4  # the largest |ONNX Runtime - torch| kept, relative to the largest |torch| on the check images
CHECK_IMAGES = 8
INPUT, OUTPUT = "images", "outputs"


def onnxruntime_installed() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """torch's exporters without their progress lines and warnings (an export that fails still raises)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [q.level for q in loggers]
    try:
        for q in loggers:
            q.setLevel(logging.ERROR)
        with warnings.catch_warnings(), torch.inference_mode(False):
            warnings.simplefilter("ignore")
            yield
    finally:
        for q, level in zip(loggers, levels):
            q.setLevel(level)


def export_program(module: nn.Module, sample: torch.Tensor, path: Path, input_name: str,
                   output_names: list[str]) -> None:
    """torch.export's exporter: ``module`` with a dynamic batch size (opset ``OPSET``, weights inside the one file).
    The exporter's own exceptions propagate (many types); quiet_exporter() silences its chatter."""
    batch = torch.export.Dim("batch", min=1, max=65536)
    program = torch.onnx.export(module, (sample,), dynamo=True, input_names=[input_name], output_names=output_names,
                                opset_version=OPSET, dynamic_shapes=({0: batch},), verbose=False)
    program.save(str(path), external_data=False)


def _export_fast(module: nn.Module, sample: torch.Tensor, path: Path) -> None:
    """The TorchScript exporter: 15 times faster than torch.export's on EfficientNet-Lite0 (3 s against 47 s on 2
    cores), which decides whether the graph pays on a first run of a few hundred images. Deprecated by torch, so
    torch.export's exporter takes over wherever it fails or is gone; either graph is checked against torch."""
    try:
        torch.onnx.export(module, (sample,), str(path), dynamo=False, input_names=[INPUT], output_names=[OUTPUT],
                          opset_version=OPSET, dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})
    except Exception as e:  # the exporter raises many types; torch.export's exporter is the second chance
        log.debug("TorchScript export failed (%s); using torch.export.", str(e).splitlines()[0] if str(e) else e)
        export_program(module, sample, path, INPUT, [OUTPUT])


class OnDecodedImages(nn.Module):
    """(N, H, W, C) uint8 -> ``module`` of the standardised (N, C, H, W) float32 images (``data.preprocess.normalize``
    with the mean and std as buffers: constants of the graph)."""

    def __init__(self, module: nn.Module, preprocessing: Preprocessing):
        super().__init__()
        self.module = module
        self.register_buffer("mean", torch.tensor(preprocessing.mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(preprocessing.std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.module((images.permute(0, 3, 1, 2).float() / 255.0 - self.mean) / self.std)


def weights_digest(module: nn.Module, *setting) -> str:
    """A digest of every tensor of ``module`` and of ``setting`` (reprs: the preprocessing, what is computed)."""
    digest = hashlib.sha256(repr(setting).encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def session_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@lru_cache(maxsize=4)
def _cached_session(path: str, modified: int):
    return _session(path)


def _session(path: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = session_threads()
    options.log_severity_level = 3
    # no busy-waiting between operators: threads decoding the next images get those cycles
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


class ImageGraph:
    """An exported graph in an ONNX Runtime session on the CPU: ``graph(images)`` gives float32 outputs of (N, H, W,
    C) uint8 images."""

    def __init__(self, path: Path, cached: bool = True):
        self.path = Path(path)
        self.session = (_cached_session(str(self.path), self.path.stat().st_mtime_ns) if cached
                        else _session(str(self.path)))

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(images, dtype=np.uint8)})[0]


def graph_path(folder: Path, key: str) -> Path:
    return Path(folder) / f"{key}-g{GRAPH_VERSION}.onnx"


def _refusal_path(folder: Path, key: str) -> Path:
    """A failed export's note: tried again with another torch (whose exporters may do better), or once deleted."""
    return Path(folder) / f"{key}-g{GRAPH_VERSION}-torch{torch.__version__.split('+')[0]}.refused"


def digest_path(graph: Path) -> Path:
    """Where the SHA-256 of ``graph``'s bytes is kept, written when it was exported and checked before each use."""
    return graph.with_name(f"{graph.name}.sha256")


def usable_graph(folder: Path, key: str) -> bool:
    """Whether the graph ``key`` is on disk with its digest (then it costs nothing to use it) and onnxruntime can
    run it."""
    path = graph_path(folder, key)
    return path.is_file() and digest_path(path).is_file() and onnxruntime_installed()


def _unbound(path: Path) -> str | None:
    """Why the graph at ``path`` is not the one exported there (no digest, or its bytes differ from the digest:
    replaced, truncated or changed since), or None when it is."""
    try:
        recorded = digest_path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return "no SHA-256 was recorded for it (exported by an older cnnkit, or the export was stopped)"
    except (OSError, UnicodeDecodeError) as e:
        return f"its recorded SHA-256 cannot be read ({getattr(e, 'strerror', None) or e})"
    try:
        found = sha256_file(path)
    except OSError as e:
        return f"it cannot be read ({e.strerror or e})"
    if found != recorded:
        return "its bytes differ from the SHA-256 recorded when it was exported (replaced, truncated or changed since)"
    return None


def _trusted(path: Path, export: bool) -> bool:
    """Whether the graph at ``path`` may be used: it is the one exported there. One that is not is never run: it is
    removed with its digest, in a one-line warning, and exported again (with ``export``; else torch computes)."""
    reason = _unbound(path)
    if reason is None:
        return True
    log.warning("The cached graph %s is not the one exported there: %s; removed, %s.", path, reason,
                "exporting it again" if export else "computing with torch")
    for stale in (path, digest_path(path)):
        try:
            stale.unlink(missing_ok=True)
        except OSError as e:  # a read-only cache: torch does the work
            log.warning("Cannot remove %s (%s); computing with torch.", stale, e.strerror or e)
    return False


def cached_graph(module: nn.Module, preprocessing: Preprocessing, key: str, folder: Path,
                 check_images: np.ndarray, export: bool = True) -> ImageGraph | None:
    """``module`` (standardised (N, C, H, W) float32 -> (N, ...) outputs, in eval mode, on the CPU) as a graph on
    decoded images: ``folder/KEY-gV.onnx`` when it is there, else exported there (with ``export``) and checked on
    ``check_images`` ((N, H, W, C) uint8, the first ``CHECK_IMAGES`` of them). None, for torch to do the work, when
    onnxruntime is missing, nothing may be written, or the export fails or differs from torch by more than
    ``MAX_DIFFERENCE``; a failed export is remembered (``KEY-gV-torchX.refused``, which says why) and not tried again
    with the same torch."""
    path = graph_path(folder, key)
    if not onnxruntime_installed():
        return None
    if path.is_file() and _trusted(path, export):
        try:
            return ImageGraph(path)
        except Exception as e:  # a damaged file: onnxruntime raises its own types; torch does the work
            log.warning("Cannot load %s (%s); computing with torch.", path, str(e).splitlines()[0] if str(e) else e)
            return None
    if path.is_file() or not export or _refusal_path(folder, key).exists():  # on disk still: a cache not writable
        return None

    def checked(tmp: Path) -> None:  # the digest of the very bytes checked against torch, in place before the graph
        _export_checked(module, preprocessing, tmp, check_images[:CHECK_IMAGES])
        write_text(digest_path(path), f"{sha256_file(tmp)}\n")

    try:
        atomic_write(path, checked)
    except ModelError as e:
        write_text(_refusal_path(folder, key), f"{e}\n")
        log.warning("%s Computing with torch instead.", e)
        return None
    return ImageGraph(path)


def _export_checked(module: nn.Module, preprocessing: Preprocessing, path: Path, images: np.ndarray) -> None:
    """Export to ``path``; ModelError when the exporter fails or the graph differs from torch on ``images``."""
    wrapped = OnDecodedImages(module, preprocessing).eval()
    sample = torch.zeros((2, *images.shape[1:]), dtype=torch.uint8)
    try:
        with quiet_exporter():
            _export_fast(wrapped, sample, path)
        with torch.no_grad():
            expected = wrapped(torch.from_numpy(np.ascontiguousarray(images))).float().numpy()
        found = ImageGraph(path, cached=False)(images)
    except Exception as e:  # the exporters and onnxruntime raise many types: name the network and the first line
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelError(f"Cannot run {type(module).__name__} through ONNX Runtime: {first}.") from None
    if found.shape != expected.shape:
        raise ModelError(f"ONNX Runtime's {type(module).__name__} gives {found.shape} where torch's gives "
                         f"{expected.shape}; not kept.")
    difference = float(np.abs(found - expected).max()) / max(float(np.abs(expected).max()), 1e-12)
    if not difference <= MAX_DIFFERENCE:  # NaN included
        raise ModelError(f"ONNX Runtime's {type(module).__name__} differs from torch's by {difference:.2g} of the "
                         f"largest value (more than {MAX_DIFFERENCE}) on {len(images)} images; not kept.")
    log.info("Exported %s for ONNX Runtime (largest difference from torch: %.1e of the largest value).",
             type(module).__name__, difference)
