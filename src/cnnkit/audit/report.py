"""``audit.json`` and a self-contained ``audit.html`` (thumbnails embedded), written together into a folder of
their own."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

import numpy as np

from cnnkit._io import replace_folder, shown_path, write_json, write_text
from cnnkit.errors import OutputError

GROUPS_SHOWN = 40
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
h2{border-bottom:1px solid #ddd}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .5em}
.warn{background:#fff4e5;border-left:4px solid #e67e00;padding:.4em 1em}.ok{color:#1b8a3a}img{max-width:100%}
.wide{overflow-x:auto}"""


def _thumbs(root: Path, files: list[str], captions: list[str]) -> str:
    from cnnkit.data.decode import load_image
    from cnnkit.plots import image_grid_png

    images = []
    for f in files:
        try:
            images.append(load_image(root / f, (96, 96), 3))
        except Exception:  # noqa: BLE001 - an unreadable file is shown as a grey square
            images.append(np.full((96, 96, 3), 128, np.uint8))
    png = image_grid_png(np.stack(images), captions, columns=min(6, len(images)))
    return f'<img alt="{escape(", ".join(files[:6]))}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _number(value: float | None, decimals: int) -> str:
    """A measured number for people: ``decimals`` places, "-" where there is none."""
    return "-" if value is None else f"{value:.{decimals}f}"


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="wide"><table><tr>{head}</tr>{body}</table></div>'


def _groups(root: Path, title: str, groups: list[dict], items: dict) -> str:
    html = [f"<h2>{escape(title)} ({len(groups)} groups)</h2>"]
    if not groups:
        return html[0] + '<p class="ok">None found.</p>'
    ordered = sorted(groups, key=lambda g: (not g["crosses_splits"], not g["crosses_classes"], g["files"][0]))
    for g in ordered[:GROUPS_SHOWN]:
        flags = [w for w, on in (("crosses splits: the test score is inflated", g["crosses_splits"]),
                                 ("conflicting labels", g["crosses_classes"])) if on]
        html.append(f"<p>{escape(g['evidence'])}{': ' + escape('; '.join(flags)) if flags else ''}</p>")
        html.append(_thumbs(root, g["files"][:12], [f"{Path(f).name[:18]}\n{items[f]['label']} / {items[f]['split']}"
                                                   for f in g["files"][:12]]))
    if len(groups) > GROUPS_SHOWN:
        html.append(f"<p>... and {len(groups) - GROUPS_SHOWN} more groups in audit.json.</p>")
    return "".join(html)


def _refusals(found: list[dict]) -> str:
    """What training would refuse, first: each finding in a line."""
    if not found:
        return '<h2>What training refuses</h2><p class="ok">Nothing: training can take this data as it is.</p>'
    return (f"<h2>What training refuses ({len(found)})</h2>"
            + "".join(f'<p class="warn"><b>{escape(x["finding"])}</b>: {escape(x["detail"])}</p>' for x in found))


def render(f: dict, root: Path, items: dict) -> str:
    s, trace = f["summary"], f["metadata"]["trace"]
    suspects = f["label_suspects"][:30]
    body = [f"<h1>cnnkit audit: {escape(shown_path(f['data']))}</h1>",
            f"<p>{f['images']} images, {len(f['classes'])} classes, splits from {escape(f['split_from'])}; "
            f"features: {escape(f['features'])}; {f['seconds']} s.</p>",
            _table(["finding", "count"], [[k.replace("_", " "), v] for k, v in s.items()]),
            _refusals(f["training_refuses"]),
            _groups(root, "Exact duplicates (identical decoded pixels)", f["exact_duplicates"], items),
            _groups(root, "Near-duplicates", f["near_duplicates"], items),
            f"<h2>Suspected label errors ({s['label_suspects']} flagged)</h2><p>Images ranked by the out-of-fold "
            "probability of their own label (a logistic regression on the features, cross-validated); confident "
            "learning (cleanlab) flags those whose label is likely wrong. The most suspect first:</p>"]
    if suspects:
        body.append(_thumbs(root, [x["file"] for x in suspects],
                            [f"{'FLAGGED ' if x['flagged'] else ''}labelled {x['label']}\nbelieved {x['believed']} "
                             f"({x['probability_believed']:.2f})"
                             for x in suspects]))
    body.append("<h2>Metadata that gives the class away</h2>")
    if trace.get("flagged"):
        body.append(f'<p class="warn">Metadata alone predicts the class: balanced accuracy '
                    f"{trace['balanced_accuracy']:.2f} against chance {trace['chance']:.2f}. Best single features: "
                    + escape(", ".join(f"{x['feature']} ({x['balanced_accuracy']:.2f})"
                                       for x in trace["best_single_features"])) + ".</p>")
    elif "balanced_accuracy" in trace:
        body.append(f'<p class="ok">No trace: file metadata alone reaches balanced accuracy '
                    f'{trace["balanced_accuracy"]:.2f} (chance {trace["chance"]:.2f}).</p>')
    if "content_balanced_accuracy" in trace:
        body.append(f"<p>Brightness, contrast and file size, which follow the content, predict the class with "
                    f"balanced accuracy {trace['content_balanced_accuracy']:.2f}: expected where classes differ in "
                    "what they show, a trace where they should not (one class photographed in other light).</p>")
    per = f["metadata"]["per_class"]
    body.append(_table(["class", "images", "median size", "median JPEG quality", "median brightness", "formats",
                        "modes"], [[c, m["images"], f"{_number(m['median_width'], 0)}x{_number(m['median_height'], 0)}",
                                    _number(m["median_jpeg_quality"], 0), _number(m["median_brightness"], 1),
                                    ", ".join(f"{k} {v}" for k, v in m["format"].items()),
                                    ", ".join(f"{k} {v}" for k, v in m["mode"].items())] for c, m in per.items()]))
    body.append("<h2>Unreadable, placeholders, near-empty</h2>" + _table(
        ["file", "finding"], [[u["file"], u["error"]] for u in f["unreadable"]]
        + [[", ".join(g["files"][:3]) + " ...", f"placeholder: {len(g['files'])} copies"] for g in f["placeholders"]]
        + [[e["file"], f"near-empty (contrast {_number(e['contrast'], 1)})"] for e in f["near_empty"]]))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width='
            f'device-width, initial-scale=1"><title>cnnkit audit</title><style>{STYLE}</style></head><body>'
            + "".join(body) + "</body></html>\n")


def write_audit(out: Path, findings: dict, root: Path) -> None:
    """Write both files into ``out`` at once; refuse a folder that holds something else."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "audit.json").exists())):
        raise OutputError(f"{out} exists and is not an audit folder (it has no audit.json); choose a new `out`.")
    html = render(findings, root, {e["file"]: e for e in findings.get("_items", [])})

    def fill(folder: Path) -> None:
        write_json(folder / "audit.json", {k: v for k, v in findings.items() if not k.startswith("_")})
        write_text(folder / "audit.html", html)

    replace_folder(out, fill)
