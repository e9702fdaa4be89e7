"""``anomaly.html``: the summary, then one row per image (most anomalous first) with its input, reconstruction and
error map."""

from __future__ import annotations

from html import escape

from cnnkit._io import shown_path, shown_paths

STYLE = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{padding:4px 8px;"
         "border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}img{width:128px;image-rendering:"
         "pixelated}.bad{color:#b00;font-weight:bold}")


def _summary_lines(summary: dict) -> list[str]:
    auc = summary.get("roc_auc")
    return [
        f"Run {escape(shown_path(summary['run']))} ({escape(summary['model'])}); images: "
        f"{escape(shown_paths(summary['data']))}",
        f"{summary['anomalous']} of {summary['images']} images anomalous: reconstruction error above "
        f"{summary['threshold']:.5f} ({escape(summary['threshold_source'])})",
        f"Code: {summary['code_size']} numbers for {summary['pixels']} pixel values ({summary['compression']:.1f}x "
        f"smaller); validation reconstruction error {summary['val_error']:.5f}",
        f"Error maps: squared error smoothed (sigma {summary['smoothing']:g} px), outlined in green above "
        f"{summary['pixel_threshold']:.5f}",
        *([f"ROC AUC, other classes against '{escape(str(summary['normal']))}': {auc:.4f}"] if auc is not None else []),
    ]


def render_html(summary: dict, rows: list) -> str:
    cells = []
    for row in sorted(rows, key=lambda r: -r.score):
        images = "".join(f"<td><img src='{escape(row.files[k])}' alt='{k}'></td>" for k in
                         ("input", "reconstruction", "error") if k in row.files)
        verdict = "<span class='bad'>anomalous</span>" if row.anomalous else "normal"
        cells.append(f"<tr><td>{escape(row.path)}</td><td>{escape(row.label)}</td><td>{row.score:.5f}</td>"
                     f"<td>{verdict}</td><td>{row.unusual_pixels:.1%}</td>{images}</tr>")
    header = ("<tr><th>image</th><th>class</th><th>error</th><th></th><th>unusual pixels</th>"
              + ("<th>input</th><th>reconstruction</th><th>error map</th>" if any(r.files for r in rows) else "")
              + "</tr>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>cnnkit anomaly</title><style>{STYLE}</style>"
            "</head><body><h1>Anomaly scores</h1>" + "".join(f"<p>{line}</p>" for line in _summary_lines(summary))
            + f"<table>{header}{''.join(cells)}</table></body></html>\n")
