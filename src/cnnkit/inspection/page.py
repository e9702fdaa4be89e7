"""``inspect.html``: the figures of ``cnnkit inspect`` on one self-contained page, each with what it shows."""

from __future__ import annotations

import base64
from html import escape

from cnnkit._io import shown_path

STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;padding:0 1em;color:#222}
h2{border-bottom:1px solid #ddd}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .5em}
img{max-width:100%}"""
SECTIONS = (("filters", "First-layer filters"), ("activations", "Activations"),
            ("gradcam_predicted", "Grad-CAM: predicted class"), ("gradcam_true", "Grad-CAM: true class"),
            ("occlusion", "Occlusion sensitivity"), ("integrated_gradients", "Integrated gradients"))


def render_page(summary: dict, figures: dict[str, tuple[bytes, str]]) -> str:
    top = sorted(summary["probabilities"].items(), key=lambda item: -item[1])[:5]
    rows = "".join(f"<tr><td>{escape(c)}</td><td>{p:.4f}</td></tr>" for c, p in top)
    true = f"; true class {escape(summary['true'])}" if summary.get("true") else ""
    body = [f"<h1>cnnkit inspect: {escape(summary['image'])}</h1>",
            f"<p>Run {escape(shown_path(summary['run']))}; input "
            f"{summary['input_size'][0]}x{summary['input_size'][1]}. "
            f"Predicted <b>{escape(summary['predicted'])}</b>{true}.</p>",
            f"<table><tr><th>class</th><th>probability</th></tr>{rows}</table>"]
    for name, heading in SECTIONS:
        if name in figures:
            png, caption = figures[name]
            data = base64.b64encode(png).decode()
            body.append(f'<section id="{name}"><h2>{heading}</h2><p>{escape(caption)}</p>'
                        f'<img alt="{escape(heading)}" src="data:image/png;base64,{data}"></section>')
    title = f"cnnkit inspect: {summary['image']}"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")
