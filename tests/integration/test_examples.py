"""The example notebook runs top to bottom, as a user runs it (its code cells in order, in one namespace, in a fresh
folder); no Jupyter needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "quickstart.ipynb"


@pytest.mark.slow
def test_the_quickstart_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    namespace: dict = {"__name__": "__main__"}
    for i, cell in enumerate(cells):
        exec(compile("".join(cell["source"]), f"{NOTEBOOK.name} cell {i + 1}", "exec"), namespace)
    assert namespace["predictor"].backend == "onnx"
    assert namespace["metrics"]["accuracy"] > 0.5  # ten classes: far above chance after three epochs
    assert (tmp_path / "runs" / "digits" / "report.html").exists()
