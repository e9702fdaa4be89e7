"""Labelling a pool in the browser (``cnnkit label``): one image at a time in the order ``suggest`` ranks them, the
run's guess beside it, keys for the classes, every label written at once to a CSV ``cnnkit train`` reads, and the
run's recipe trained again on its data and the new labels."""

from cnnkit.label.labels import LabelsFile
from cnnkit.label.session import LabelSession
from cnnkit.label.start import open_session

__all__ = ["LabelSession", "LabelsFile", "open_session"]
