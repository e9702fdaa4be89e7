"""What ``suggest`` writes for a person: ``to_label.csv`` (one row per image, best first), ``index.html`` (a page of
thumbnails with the run's guess and why each image was chosen) and ``thumbs/``, replaced as a whole."""

from __future__ import annotations

import csv
import io
from html import escape
from pathlib import Path

from PIL import Image

from cnnkit._io import replace_folder, shown_path, write_bytes, write_text
from cnnkit.data.decode import load_image, probe_image
from cnnkit.errors import DataError, OutputError

CSV_FILE, PAGE_FILE, THUMBS = "to_label.csv", "index.html", "thumbs"
COLUMNS = ("rank", "path", "predicted", "probability", "margin", "entropy", "distance", "reason")
THUMB_SIDE = 160  # pixels of a thumbnail's longer side (smaller images are not enlarged)
STYLE = ("body{font-family:sans-serif;margin:1.5em}.grid{display:flex;flex-wrap:wrap;gap:12px}"
         ".card{width:200px;border:1px solid #ddd;padding:6px;font-size:13px;overflow-wrap:anywhere}"
         ".card img{width:160px;height:160px;object-fit:contain;image-rendering:pixelated;background:#eee;"
         "display:block;margin:auto}.rank{font-weight:bold}.why{color:#555}")


def check_out(out: Path) -> None:
    """Refuse a folder that is not an earlier suggestion's: replacing it would delete what is in it."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / CSV_FILE).exists())):
        raise OutputError(f"{out} exists and is not a suggestion folder (it has no {CSV_FILE}); choose a new `out` "
                          "so that nothing in it is replaced.")


def csv_text(rows: list) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([r.rank, r.path, r.predicted, f"{r.probability:.4f}", f"{r.margin:.4f}", f"{r.entropy:.4f}",
                         "" if r.distance is None else f"{r.distance:.4g}", r.reason])
    return buffer.getvalue()


def thumbnail_jpeg(path: Path) -> bytes | None:
    """A small JPEG of the image as a person sees it (EXIF orientation applied, aspect kept); None if unreadable."""
    try:
        info = probe_image(path)
        scale = min(1.0, THUMB_SIDE / max(info.width, info.height, 1))
        size = (max(1, round(info.height * scale)), max(1, round(info.width * scale)))
        pixels = load_image(path, size, 3)
    except DataError:
        return None
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def page_html(result, thumbs: dict[int, str]) -> str:
    cards = []
    for r in result.rows:
        image = (f"<img src='{escape(thumbs[r.rank])}' alt='{escape(r.path)}'>" if r.rank in thumbs
                 else "<p>(no thumbnail)</p>")
        guess = f"{escape(r.predicted) or '(none of the classes)'} {r.probability:.2f}"
        cards.append(f"<div class='card'>{image}<div><span class='rank'>#{r.rank}</span> {escape(r.path)}</div>"
                     f"<div>run's guess: {guess}</div><div class='why'>{escape(r.reason)}</div></div>")
    notes = [(f"{len(result.rows)} of {result.ranked} images of {escape(shown_path(result.pool))}, chosen by "
              f"<b>{escape(result.strategy)}</b>, best first; paths are relative to that folder, as in {CSV_FILE}.")]
    if result.labelled or result.copies or result.unreadable:
        notes.append(f"Left out: {result.labelled} of the run's own labelled images, {result.copies} copies of "
                     f"other pool images, {len(result.unreadable)} unreadable files.")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>cnnkit: images to label</title>"
            f"<style>{STYLE}</style></head><body><h1>Images to label next</h1>"
            + "".join(f"<p>{n}</p>" for n in notes) + f"<div class='grid'>{''.join(cards)}</div></body></html>\n")


def write_suggestions(out: Path, result, root: Path) -> Path:
    """``to_label.csv``, ``index.html`` and ``thumbs/`` into ``out``, which they replace as a whole."""
    def fill(folder: Path) -> None:
        (folder / THUMBS).mkdir()
        thumbs = {}
        for r in result.rows:
            jpeg = thumbnail_jpeg(root / r.path)
            if jpeg is not None:
                name = f"{THUMBS}/{r.rank:04d}.jpg"
                write_bytes(folder / name, jpeg)
                thumbs[r.rank] = name
        write_text(folder / CSV_FILE, csv_text(result.rows))
        write_text(folder / PAGE_FILE, page_html(result, thumbs))

    return replace_folder(out, fill)
