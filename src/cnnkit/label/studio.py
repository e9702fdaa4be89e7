"""Label Studio's tasks (``--label-studio-tasks``): one task per image still to label, the run's guess as a
prediction (a pre-annotation) for a labelling config of one ``Image`` named ``image`` and one ``Choices`` named
``choice``. Image paths are absolute; serve them to Label Studio as its local files or from storage. Its export of
them (``--from-label-studio``: JSON, JSON-MIN or CSV) comes back into the labels CSV."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

from cnnkit._io import write_json
from cnnkit.errors import DataError
from cnnkit.label.session import LabelSession


def tasks(session: LabelSession, model_version: str = "cnnkit") -> list[dict]:
    """The tasks of the images still to label, in the session's order."""
    out = []
    for image in session.pending():
        task = {"data": {"image": str(image), "cnnkit_path": session.name(image)}}
        guess = session.guess(image) if session.guess is not None else None
        if guess is not None and guess.label:
            score = guess.probability if guess.probability is not None and math.isfinite(guess.probability) else 0.0
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


def _choice(task: dict, where: str) -> str | None:
    """The class a Label Studio task was given: its last annotation not cancelled (JSON export), or the ``choice``
    column (CSV and JSON-MIN exports); None when nobody labelled it."""
    if "data" not in task:  # a flat row: CSV or JSON-MIN
        value = task.get("choice")
        if value is None:
            raise DataError(f"{where}: no `choice` column (found: {', '.join(task)}); export the project whose "
                            "labelling config names its Choices `choice`, as cnnkit's tasks expect.")
        return str(value).strip() or None
    annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    if not annotations:
        return None
    found = [r["value"]["choices"] for r in annotations[-1].get("result") or []
             if r.get("type") == "choices" and r.get("value", {}).get("choices")]
    if not found:
        return None
    if len(found[0]) != 1:
        raise DataError(f"{where}: {len(found[0])} choices ({', '.join(found[0])}); a label is one class.")
    return found[0][0]


def _image(session: LabelSession, task: dict, where: str) -> Path:
    data = task.get("data", task)
    if data.get("cnnkit_path"):
        return session.image(str(data["cnnkit_path"]))
    image = Path(os.path.normpath(str(data.get("image", ""))))
    if image not in session.known:
        raise DataError(f"{where}: image {data.get('image')!r} is not an image of the pool {session.pool}; import "
                        "an export of the tasks cnnkit wrote (--label-studio-tasks: they keep cnnkit_path).")
    return image


def _tasks_of(path: Path) -> list[dict]:
    try:
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8-sig") as f:
                return list(csv.DictReader(f))
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, csv.Error, json.JSONDecodeError) as e:
        raise DataError(f"`from_label_studio`: cannot read {path} ({e}); give Label Studio's JSON or CSV "
                        "export.") from None
    if not isinstance(found, list) or not all(isinstance(t, dict) for t in found):
        raise DataError(f"`from_label_studio`: {path} is not a list of tasks; give Label Studio's JSON export.")
    return found


def import_export(session: LabelSession, path: str | Path) -> int:
    """Label Studio's export (JSON, JSON-MIN or CSV) of cnnkit's tasks into the session's labels CSV, written once,
    atomically, after every row was checked. Returns how many images it labels."""
    path = Path(path)
    given = {}
    for number, task in enumerate(_tasks_of(path), 1):
        where = f"{path}, task {number}"
        label = _choice(task, where)
        if label is None:
            continue
        if label not in session.classes:
            raise DataError(f"{where}: {label!r} is not a class of the run ({', '.join(session.classes)}).")
        given[_image(session, task, where)] = label
    with session.lock:
        session.labels.labels.update(given)
        session.labels.save()
    return len(given)
