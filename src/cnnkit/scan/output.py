"""What ``cnnkit scan`` writes: heatmaps (PNG overlay and .npy), counts.json, detections.csv and an overlay."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cnnkit._io import write_bytes, write_json, write_text
from cnnkit.scan.detect import Detection
from cnnkit.scan.windows import ScanResult

PREVIEW_SIDE = 1600
COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "class"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def preview(photo: np.ndarray) -> tuple[Image.Image, float]:
    """A reduced RGB copy of the photo (longest side at most PREVIEW_SIDE) and its scale."""
    image = Image.fromarray(photo[..., 0] if photo.shape[-1] == 1 else photo).convert("RGB")
    factor = min(1.0, PREVIEW_SIDE / max(image.size))
    if factor < 1.0:
        image = image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.BILINEAR)
    return image, factor


def heatmap_overlay(base: Image.Image, factor: float, result: ScanResult, k: int, name: str = "") -> Image.Image:
    """The class's probability in colour over the photo (each window's value painted at its centre cell), under a
    band with the class name and the colour scale."""
    from matplotlib import colormaps

    heat = painted_heat(result, k, factor, (base.height, base.width))
    colour = colormaps["inferno"](heat)[..., :3] * 255.0
    alpha = (0.65 * heat)[..., None]
    blended = np.asarray(base, dtype=np.float32) * (1 - alpha) + colour * alpha
    return with_colour_bar(Image.fromarray(blended.round().astype(np.uint8)), name)


def painted_heat(result: ScanResult, k: int, factor: float, shape: tuple[int, int]) -> np.ndarray:
    """Class ``k``'s probability over a picture of ``shape`` (the photo times ``factor``): each window's value above
    0.02 painted over a square a stride wide at its centre, a later window (row by row) over an earlier one where two
    squares meet. Array operations that give what painting window by window gives, at a cost bounded by the picture
    (a loop over the windows took minutes for a large photo: millions of windows)."""
    p = result.probabilities[k]
    half = result.stride * factor / 2.0

    def covering(count: int, window: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """For each pixel along one axis: the first and the last window whose square covers it (first > last:
        none)."""
        centre = (np.arange(count) * result.stride + window / 2.0) * factor
        low = np.maximum(0, centre - half).astype(np.int64)
        high = np.minimum(length, centre + half + 1).astype(np.int64)
        pixels = np.arange(length)
        return np.searchsorted(high, pixels, "right"), np.searchsorted(low, pixels, "right") - 1

    first_col, last_col = covering(p.shape[1], result.window[1], shape[1])
    first_row, last_row = covering(p.shape[0], result.window[0], shape[0])
    # per window row and picture column: the last window of that row painted there (-1: none)
    latest = np.maximum.accumulate(np.where(p > 0.02, np.arange(p.shape[1]), -1), axis=1)[:, np.maximum(last_col, 0)]
    in_row = (last_col >= 0) & (latest >= first_col)
    values = np.take_along_axis(p, np.maximum(latest, 0), axis=1)
    # per picture pixel: the last window row that painted its column and covers its row
    rows = np.maximum.accumulate(np.where(in_row, np.arange(p.shape[0])[:, None], -1), axis=0)
    rows = rows[np.maximum(last_row, 0)]
    shown = (last_row >= 0)[:, None] & (rows >= first_row[:, None])
    heat = np.take_along_axis(values, np.maximum(rows, 0), axis=0)
    return np.where(shown, heat, 0.0).astype(np.float32)


def with_colour_bar(image: Image.Image, title: str, band: int = 34) -> Image.Image:
    """``image`` under a band holding ``title`` and the colour scale (inferno, probability 0 to 1)."""
    from matplotlib import colormaps

    out = Image.new("RGB", (image.width, image.height + band), (255, 255, 255))
    out.paste(image, (0, band))
    draw = ImageDraw.Draw(out)
    draw.text((6, 10), title, fill=(0, 0, 0))
    width = max(60, min(300, image.width // 3))
    left = image.width - width - 36
    ramp = (colormaps["inferno"](np.linspace(0, 1, width))[:, :3] * 255).astype(np.uint8)
    out.paste(Image.fromarray(np.repeat(ramp[None], 12, axis=0)), (left, 4))
    draw.text((left - 8, 18), "0", fill=(0, 0, 0))
    draw.text((left + width // 2 - 28, 18), "probability", fill=(0, 0, 0))
    draw.text((left + width + 3, 18), "1", fill=(0, 0, 0))
    return out


def detections_overlay(base: Image.Image, factor: float, detections: list[Detection], classes: list[str],
                       radius: float) -> Image.Image:
    """A circle of ``radius`` photo pixels around each detection, coloured by class, with a legend."""
    image = base.copy()
    draw = ImageDraw.Draw(image)
    radius = max(3.0, radius * factor)
    for d in detections:
        colour = COLOURS[classes.index(d.label) % len(COLOURS)] if d.label in classes else (255, 255, 255)
        row, col = d.row * factor, d.col * factor
        draw.ellipse((col - radius, row - radius, col + radius, row + radius), outline=colour, width=2)
    y = 5
    for name in classes:
        if any(d.label == name for d in detections):
            draw.rectangle((5, y, 17, y + 12), fill=COLOURS[classes.index(name) % len(COLOURS)])
            draw.text((22, y), name, fill=(255, 255, 255))
            y += 16
    return image


def write_outputs(out: Path, photo: np.ndarray, result: ScanResult, classes: list[str], detections: list[Detection],
                  ignore: tuple[str, ...], radius: float, scale: float, settings: dict,
                  dots_report: dict | None = None, labels: list[str] | None = None,
                  offset: tuple[int, int] = (0, 0)) -> dict:
    """Every output file, written atomically; returns the counts per class. ``photo`` is the scanned (scaled)
    photo; detections and ``radius`` are in original pixels. ``labels``: the classes detections may have (default
    the scanning run's; a verifying run may add its own). ``offset``: where the scanned region starts in the photo
    (detections.csv gives the photo's pixels; the pictures show the region)."""
    labels = labels or classes
    out = Path(out)
    base, factor = preview(photo)
    for k, name in enumerate(classes):
        write_bytes(out / f"heatmap_{safe_name(name)}.npy", _npy(result.probabilities[k]))
        write_bytes(out / f"heatmap_{safe_name(name)}.png", _png(heatmap_overlay(base, factor, result, k,
                                                                                    f"probability of {name}")))
    counts = {name: sum(d.label == name for d in detections) for name in labels if name not in ignore}
    write_json(out / "counts.json", counts)
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    verified_by = (settings.get("verify") or {}).get("run")
    writer.writerow(["class", "row", "col", "score"] + (["verified_by", "first_class", "first_score"]
                                                        if verified_by else []))
    writer.writerows([d.label, f"{d.row + offset[0]:.1f}", f"{d.col + offset[1]:.1f}", f"{d.score:.4f}"]
                     + ([verified_by, d.first_label, f"{d.first_score:.4f}"] if verified_by else [])
                     for d in detections)
    write_text(out / "detections.csv", rows.getvalue())
    write_bytes(out / "detections.png", _png(detections_overlay(base, factor * scale, detections, labels, radius)))
    if dots_report is not None:
        write_json(out / "dots.json", dots_report)
    write_json(out / "scan.json", {**settings, "counts": counts})
    return counts
