"""A point detector's run over a photograph: its centre map, in tiles, as a ``ScanResult`` of one class whose
"windows" are the map's cells (``window`` = ``stride`` = the cell), so that detection, thresholds, the comparison
with dots, verification and the outputs are those of any scan; a detector that names classes also gives each cell's
class probabilities, which name its detections."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from cnnkit.errors import ConfigError, check_choice
from cnnkit.models.precision import bf16_supported
from cnnkit.progress import Progress
from cnnkit.run import RunFolder, RunRecord
from cnnkit.scan.detect import Detection
from cnnkit.scan.windows import ScanResult, check_stop, to_input

MARGIN = 128  # context each side of a tile (pixels, a multiple of 32 so that the tiles' cells are the photo's)
TILE = 2048  # least tile side for a point detector: its margins cost less on larger tiles


def load_point_detector(run_dir: str | Path) -> tuple[torch.nn.Module, RunRecord]:
    from cnnkit.weights import load_weights

    run = RunFolder(run_dir)
    record = run.read_record()
    note = run.status_note(record)  # a killed or unfinished training: its weights are those of its last epoch
    if note:
        logging.getLogger("cnnkit").warning(note)
    net = load_weights(run.point_network(record), run.weights_path).eval()
    return net.to(memory_format=torch.channels_last), record  # channels_last: about twice as fast on this CPU


def _input(tile: np.ndarray, record: RunRecord) -> torch.Tensor:
    return to_input(tile, record.preprocessing).contiguous(memory_format=torch.channels_last)


def centre_map(net: torch.nn.Module, record: RunRecord, photo: np.ndarray, tile: int = TILE,
               progress: bool | None = None) -> np.ndarray:
    """The probability of an object's centre in each whole cell of ``photo`` (H // cell, W // cell)."""
    return point_maps(net, record, photo, tile, progress)[0]


@torch.no_grad()
def point_maps(net: torch.nn.Module, record: RunRecord, photo: np.ndarray, tile: int = TILE,
               progress: bool | None = None, should_stop: Callable[[], bool] | None = None
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """The probability of an object's centre in each whole cell of ``photo`` (H // cell, W // cell), and for a
    detector that names classes each cell's class probabilities (classes, H // cell, W // cell), else None;
    computed in tiles with ``MARGIN`` pixels of context each side (a tile's map near its edge differs from the whole
    photo's within the network's reach; 128 pixels keep it to about a hundredth). ``should_stop`` is asked before
    each tile (``ScanStopped`` when it says yes)."""
    cell = record.points.cell
    height, width = photo.shape[:2]
    rows, cols = height // cell, width // cell
    side = max(TILE, tile) // 32 * 32
    out = np.zeros((rows, cols), np.float32)
    names = np.zeros((len(record.classes), rows, cols), np.float32) if record.names_objects else None
    starts = [(a, b) for a in range(0, rows * cell, side) for b in range(0, cols * cell, side)]
    bar = Progress(len(starts), "scan", unit="tiles", enabled=progress if len(starts) > 4 else False)
    for done, (a, b) in enumerate(starts):
        check_stop(should_stop, done, len(starts))
        top, left = max(0, a - MARGIN), max(0, b - MARGIN)
        bottom, right = min(height, a + side + MARGIN), min(width, b + side + MARGIN)
        logits = net(_input(photo[top:bottom, left:right], record))[0].float()
        i, j = (a - top) // cell, (b - left) // cell
        h, w = min(side // cell, rows - a // cell), min(side // cell, cols - b // cell)
        out[a // cell:a // cell + h, b // cell:b // cell + w] = torch.sigmoid(logits[0, i:i + h, j:j + w]).numpy()
        if names is not None:
            names[:, a // cell:a // cell + h, b // cell:b // cell + w] = torch.softmax(
                logits[1:, i:i + h, j:j + w], 0).numpy()
        bar.update(1)
    bar.close()
    return out, names


def name_detections(detections: list[Detection], result: ScanResult, classes: tuple[str, ...],
                    scale: float = 1.0) -> list[Detection]:
    """Each detection named by the most probable class of its cell (``result.names``), its score the centre's."""
    named = []
    for d in detections:
        i, j = int(d.row * scale // result.stride), int(d.col * scale // result.stride)
        named.append(replace(d, label=classes[int(np.argmax(result.names[:, i, j]))]))
    return named


def point_scan(net: torch.nn.Module, record: RunRecord, photo: np.ndarray, stride: int | None, mode: str,
               tile: int, precision: str, should_stop: Callable[[], bool] | None = None) -> ScanResult:
    """The run's centre map of ``photo`` as a scan of one class at the cell's stride (``should_stop``: see
    ``point_maps``)."""
    cell = record.points.cell
    if stride not in (None, cell):
        raise ConfigError(f"A point detector's map has one cell every {cell} pixels; `stride` {stride} does not "
                          "apply (leave it unset).")
    if mode != "dense":
        raise ConfigError(f"A point detector reads the photo in one pass; `mode` {mode!r} does not apply "
                          "(leave it at 'dense').")
    if min(photo.shape[:2]) < 4 * cell:
        raise ConfigError(f"The photo ({photo.shape[0]}x{photo.shape[1]}) is too small for a point detector: at "
                          f"least {4 * cell} pixels each way.")
    check_choice("precision", precision, ("auto", "32", "bf16"), "scan")
    bf16 = precision == "bf16" or (precision == "auto" and bf16_supported("cpu"))
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        centres, names = point_maps(net, record, photo, tile, should_stop=should_stop)
    return ScanResult(centres[None], cell, (cell, cell), time.perf_counter() - start, False, "points",
                      "bf16" if bf16 else "32", names)
