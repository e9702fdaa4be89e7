"""Labelling in the browser (``cnnkit label``): a pool labelled one image at a time in the order ``suggest`` ranks
them, the run's guess beside it, keys for the classes, every label written at once to a CSV ``cnnkit train`` reads,
and the run's recipe trained again on its data and the new labels; or photos dotted from a point detector's
proposals (``--dots``), every dot written at once to the dots CSV ``points`` reads, and the detector trained again.

Its names load on first use, so that the dotting page starts without the classifier's stack (torch)."""

from importlib import import_module

__all__ = ["LabelSession", "LabelsFile", "open_session"]
_HOMES = {"LabelSession": "cnnkit.label.session", "LabelsFile": "cnnkit.label.labels",
          "open_session": "cnnkit.label.start"}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'cnnkit.label' has no attribute {name!r}")
