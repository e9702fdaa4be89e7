"""Label Studio's tasks (``--label-studio-tasks``): one task per image still to label, the run's guess as a
prediction (a pre-annotation) for a labelling config of one ``Image`` named ``image`` and one ``Choices`` named
``choice``. Image paths are absolute; serve them to Label Studio as its local files or from storage."""

from __future__ import annotations

import math
from pathlib import Path

from cnnkit._io import write_json
from cnnkit.label.session import LabelSession


def tasks(session: LabelSession, model_version: str = "cnnkit") -> list[dict]:
    """The tasks of the images still to label, in the session's order."""
    out = []
    for image in session.pending():
        task = {"data": {"image": str(image), "cnnkit_path": session.name(image)}}
        guess = session.guess(image) if session.guess is not None else None
        if guess is not None and guess.label:
            score = guess.probability if math.isfinite(guess.probability) else 0.0
            task["predictions"] = [{"model_version": model_version, "score": score, "result": [
                {"from_name": "choice", "to_name": "image", "type": "choices",
                 "value": {"choices": [guess.label]}}]}]
        out.append(task)
    return out


def write_tasks(session: LabelSession, path: str | Path, model_version: str = "cnnkit") -> list[dict]:
    """Write the tasks JSON (a list, as Label Studio imports it) atomically; returns the tasks."""
    found = tasks(session, model_version)
    write_json(path, found)
    return found
