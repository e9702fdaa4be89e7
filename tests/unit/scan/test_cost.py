"""What a scan costs is bounded: its caller may stop it between tiles (``should_stop``, what a server's deadline
asks), and the steps after the tiles cost what the picture costs, not one Python step per window (the heatmap) or
per pair of maxima (plateau suppression): minutes and hours for a large photo before."""

import numpy as np
import pytest

from cnnkit.scan.dense import dense_network
from cnnkit.scan.detect import Detection, suppress_plateaus
from cnnkit.scan.output import painted_heat
from cnnkit.scan.windows import ScanResult, ScanStopped, dense_scan, scan, sliding_scan
from tests.unit.scan.test_scan import PREP, photo, random_model


def stop_after(steps: int):
    """A ``should_stop`` that says yes on its call number ``steps + 1``, and the list of its calls."""
    calls = []

    def should_stop() -> bool:
        calls.append(len(calls))
        return len(calls) > steps

    return should_stop, calls


def test_a_dense_scan_stops_before_the_tile_its_caller_refuses():
    dense = dense_network(random_model("patch_cnn"), 3, (24, 24))
    should_stop, calls = stop_after(2)
    with pytest.raises(ScanStopped, match=r"The scan was stopped after 2 of its \d+ tiles") as stopped:
        dense_scan(dense, photo(100, 90), PREP, tile=64, should_stop=should_stop)
    assert stopped.value.done == 2 and stopped.value.total > 3 and len(calls) == 3


def test_a_scan_asked_between_tiles_that_never_stops_gives_what_an_unasked_scan_gives():
    model = random_model("patch_cnn")
    image = photo(100, 90)
    with pytest.raises(ScanStopped) as refused:
        scan(model, PREP, image, tile=64, should_stop=lambda: True)
    should_stop, calls = stop_after(10**6)
    asked = scan(model, PREP, image, tile=64, should_stop=should_stop).probabilities
    assert refused.value.done == 0 and len(calls) == refused.value.total  # asked once before each tile
    assert np.array_equal(asked, scan(model, PREP, image, tile=64).probabilities)


def test_a_sliding_scan_stops_between_batches_of_windows():
    should_stop, calls = stop_after(1)
    with pytest.raises(ScanStopped) as stopped:
        sliding_scan(random_model("patch_cnn"), photo(83, 70), PREP, (24, 24), 4, batch_size=16,
                     should_stop=should_stop)
    assert stopped.value.done == 1 and stopped.value.total == -(-16 * 12 // 16) and len(calls) == 2


def test_a_point_detectors_map_stops_between_tiles(untrained_detector):
    from cnnkit.scan.points import load_point_detector, point_scan

    net, record = load_point_detector(untrained_detector)
    wide = np.zeros((64, 4200, 3), np.uint8)  # three tiles of 2048 pixels across
    with pytest.raises(ScanStopped, match=r"after 0 of its 3 tiles"):
        point_scan(net, record, wide, None, "dense", 0, "32", should_stop=lambda: True)


def painted_window_by_window(result: ScanResult, k: int, factor: float, shape: tuple[int, int]) -> np.ndarray:
    """The reference: each window's value painted in turn (the loop the heatmap was drawn with)."""
    p = result.probabilities[k]
    heat = np.zeros(shape, np.float32)
    half = result.stride * factor / 2.0
    for i, j in zip(*np.nonzero(p > 0.02)):
        row, col = (x * factor for x in result.centre(int(i), int(j)))
        r0, r1 = int(max(0, row - half)), int(min(shape[0], row + half + 1))
        c0, c1 = int(max(0, col - half)), int(min(shape[1], col + half + 1))
        heat[r0:r1, c0:c1] = p[i, j]
    return heat


@pytest.mark.parametrize("seed", range(40))
def test_the_heatmap_painted_in_arrays_is_the_one_painted_window_by_window(seed):
    rng = np.random.default_rng(seed)
    stride = int(rng.choice([1, 2, 4, 8, 16]))
    window = (int(rng.integers(4, 40)), int(rng.integers(4, 40)))
    height, width = int(rng.integers(window[0], 240)), int(rng.integers(window[1], 240))
    grid = ((height - window[0]) // stride + 1, (width - window[1]) // stride + 1)
    probabilities = rng.random((2, *grid)).astype(np.float32) ** 3  # many values at most 0.02: left unpainted
    factor = float(rng.choice([1.0, 0.9, 0.5, 0.37, 0.123]))  # the preview's scale: overlapping squares when small
    shape = (max(1, round(height * factor)), max(1, round(width * factor)))
    result = ScanResult(probabilities, stride, window, 0.0, True, "dense")
    assert np.array_equal(painted_heat(result, 1, factor, shape),
                          painted_window_by_window(result, 1, factor, shape))


def suppressed_pair_by_pair(found: list[Detection], least: float | None, per_class: dict | float) -> list[Detection]:
    """The reference: each maximum compared with every one of its class kept before it (``least`` apart, or as
    ``per_class`` says; 8 for a class it lacks)."""
    kept = []
    for d in sorted(found, key=lambda d: -d.score):
        limit = least if least is not None else per_class.get(d.label, 8.0)
        if all(k.label != d.label or (k.row - d.row) ** 2 + (k.col - d.col) ** 2 >= limit ** 2 for k in kept):
            kept.append(d)
    return kept


@pytest.mark.parametrize("seed", range(20))
def test_maxima_kept_by_cells_are_those_kept_comparing_every_pair(seed):
    rng = np.random.default_rng(seed)
    step = float(rng.choice([0.5, 1.0, 2.0, 4.0]))  # on a grid: equal distances and equal scores (plateaus) abound
    maxima = [Detection(str(rng.choice(["a", "b"])), float(rng.integers(0, 60)) * step,
                        float(rng.integers(0, 60)) * step, float(np.round(rng.random(), 1))) for _ in range(300)]
    least = rng.choice([0.0, 1e-9, 1.0, 2.5, 8.0, {"a": 4.0, "b": 0.0}])  # one for all, or per class (b: 8 for c)
    expected = suppressed_pair_by_pair(maxima, least if isinstance(least, float) else None, least)
    assert suppress_plateaus(maxima, least) == expected
