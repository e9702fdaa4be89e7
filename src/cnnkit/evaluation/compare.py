"""``cnnkit compare``: runs side by side, only when they were scored on the very same test images."""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

from cnnkit._io import shown_path
from cnnkit.errors import RunError
from cnnkit.run import CONFIG_FILE, METRICS_FILE, RunFolder

COLUMNS = (("run", "run"), ("model", "model"), ("data", "data"), ("n", "images"), ("accuracy", "accuracy"),
           ("balanced_accuracy", "balanced acc."), ("macro_f1", "macro F1"), ("auc", "AUC"),
           ("parameters", "parameters"), ("train_seconds", "train s"), ("inference_ms", "ms/image"))


def _load(folder: Path) -> dict:
    """A run folder, or an evaluation folder (``evaluate --data/--out``): its metrics and its run's config."""
    metrics_path = folder / METRICS_FILE
    if not folder.is_dir():
        raise RunError(f"{folder} does not exist.")
    if not metrics_path.exists():
        raise RunError(f"{folder} has no {METRICS_FILE}; run `cnnkit evaluate {folder}` first.")
    metrics = RunFolder(folder).read_file(metrics_path, "the evaluation's scores")
    if "test_set" not in metrics:
        raise RunError(f"{metrics_path} predates test-set fingerprints; run `cnnkit evaluate` again.")
    run = RunFolder(folder if (folder / CONFIG_FILE).exists() else metrics.get("run", folder))
    record = run.read_record()
    options = ",".join(f"{k}={v}" for k, v in record.model.options.items())
    return {
        "run": str(folder), "model": record.model.name + (f" ({options})" if options else ""),
        "data": metrics.get("data", ""), "n": metrics["n"], "accuracy": metrics["accuracy"],
        "balanced_accuracy": metrics["balanced_accuracy"], "macro_f1": metrics["macro_f1"],
        "auc": metrics.get("auc"), "parameters": metrics.get("parameters"),
        "train_seconds": record.result.train_seconds if record.result else None,
        "inference_ms": metrics.get("inference_ms_per_image"), "fingerprint": metrics["test_set"]["fingerprint"],
        "report": str(folder / "report.html") if (folder / "report.html").exists() else None,
        "recall": {c: s["recall"] for c, s in (metrics.get("per_class") or {}).items()},
    }


def compare_runs(folders: list[str | Path]) -> list[dict]:
    """One row per run; refuses runs whose metrics come from different test images (or labels)."""
    if len(folders) < 2:
        raise RunError("cnnkit compare needs at least two runs.")
    rows = [_load(Path(f)) for f in folders]
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["fingerprint"], []).append(row)
    if len(groups) > 1:
        listing = "\n  ".join(f"test set {fp}: " + ", ".join(f"{shown_path(r['run'])} (n={r['n']}, {r['data']})" for r in group)
                              for fp, group in groups.items())
        raise RunError("These runs were evaluated on different test sets, so their scores are not comparable "
                       "(different images, labels or splits):\n  " + listing
                       + "\nEvaluate them on one folder with `cnnkit evaluate RUN --data FOLDER`, then compare "
                         "the RUN/eval-FOLDER folders.")
    return rows


def _cell(key: str, value) -> str:
    if value is None:
        return "n/a"
    if key == "run":
        return shown_path(value)
    if key in ("accuracy", "balanced_accuracy", "macro_f1", "auc"):
        return f"{value:.4f}"
    if key == "parameters":
        return f"{value:,}"
    if key in ("train_seconds", "inference_ms"):
        return f"{value:.2f}"
    return str(value)


def render_compare_text(rows: list[dict]) -> str:
    """An aligned table for the terminal (the data column is printed once, above it)."""
    keys = [(k, h) for k, h in COLUMNS if k != "data"]
    cells = [[h for _, h in keys]] + [[_cell(k, r[k]) for k, _ in keys] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(keys))]
    lines = [f"Test set: {rows[0]['data']} (n={rows[0]['n']}, fingerprint {rows[0]['fingerprint']})"]
    for row in cells:
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def _link(row: dict, base: Path | None, report_links: dict[str, str] | None = None) -> str:
    text = escape(shown_path(row["run"]))
    if report_links is not None:
        href = report_links.get(row["run"])
        return f'<a href="{escape(href)}">{text}</a>' if href else text
    if not row.get("report"):
        return text
    target = Path(row["report"]).resolve()
    href = os.path.relpath(target, base.resolve()) if base is not None else target.as_uri()
    return f'<a href="{escape(Path(href).as_posix() if base is not None else href)}">{text}</a>'


def render_compare_html(rows: list[dict], base: str | Path | None = None,
                        report_links: dict[str, str] | None = None) -> str:
    """The same table as a self-contained HTML page; the best score in each metric column is bold, each run links to
    its report (relative to ``base``, the page's folder, or at ``report_links[run]`` when given: a server's URLs),
    and a second table gives each class's recall per run."""
    best = {k: max((r[k] for r in rows if r[k] is not None), default=None)
            for k in ("accuracy", "balanced_accuracy", "macro_f1", "auc")}
    base = Path(base) if base is not None else None
    head = "".join(f"<th>{escape(h)}</th>" for _, h in COLUMNS)
    body = ""
    for r in rows:
        cells = f"<td>{_link(r, base, report_links)}</td>"
        for k, _ in COLUMNS[1:]:
            text = escape(_cell(k, r[k]))
            cells += f"<td><b>{text}</b></td>" if best.get(k) is not None and r[k] == best[k] else f"<td>{text}</td>"
        body += f"<tr>{cells}</tr>"
    classes = sorted({c for r in rows for c in r.get("recall", {})})
    recall = "".join(f"<tr><td>{escape(c)}</td>" + "".join(
        f"<td>{_cell('accuracy', r['recall'].get(c))}</td>" for r in rows) + "</tr>" for c in classes)
    recall_head = "<th>class</th>" + "".join(f"<th>{escape(Path(r['run']).name)}</th>" for r in rows)
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            'content="width=device-width, initial-scale=1"><title>cnnkit compare</title><style>'
            "body{font-family:system-ui,sans-serif;margin:1em}table{border-collapse:collapse}"
            ".wide{overflow-x:auto}td,th{border:1px solid #ddd;padding:.3em .6em}th{background:#f4f4f4}</style>"
            f"</head><body><h1>Runs compared on one test set</h1><p>fingerprint {escape(rows[0]['fingerprint'])}, "
            f"n={rows[0]['n']}</p><div class=\"wide\"><table><tr>{head}</tr>{body}</table></div>"
            + (f"<h2>Recall per class</h2><div class=\"wide\"><table><tr>{recall_head}</tr>{recall}</table></div>"
               if classes else "") + "</body></html>\n")
