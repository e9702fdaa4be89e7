"""A dotting session: photos, each with its dots file, and a point detector's detections on each as proposed dots
that the person accepts, rejects, moves or adds to. Proposals are computed in a thread of their own, one photo at a
time, so that the page answers meanwhile; every change is written to the photo's dots file at once. One lock: the
page's requests may come at once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnkit.errors import CnnkitError, ConfigError
from cnnkit.label.dots import Dot, DotsFile

log = logging.getLogger("cnnkit")


@dataclass(frozen=True)
class Proposal:
    row: float
    col: float
    score: float
    class_name: str | None = None  # a detector that names classes: its name for the detection


@dataclass
class DotSession:
    """``photos`` (absolute paths) with their ``files``; ``classes``: keys 1-9 give the first nine; ``propose``: the
    detector's proposals on one photo (set again when the detector changes), given a ``should_stop`` it asks
    between tiles; ``near``: a proposal this close to a dot
    or to a rejected proposal (pixels) is not shown."""

    photos: list[Path]
    files: list[DotsFile]
    classes: list[str]
    propose: Callable[[Path, Callable[[], bool]], list[Proposal]] | None = None
    near: float = 16.0
    history: list[tuple[int, tuple]] = field(default_factory=list)  # (photo, its dots before)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.proposals: dict[int, list[Proposal]] = {}
        self.proposing: dict[int, str] = {}  # photo -> "computing" or the reason it failed
        self.generation = 0  # a new detector makes every proposal computed before stale
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="cnnkit-propose")
        self.stopping = threading.Event()

    def file(self, photo: int) -> DotsFile:
        if not isinstance(photo, int) or isinstance(photo, bool) or not 0 <= photo < len(self.photos):
            raise ConfigError(f"`photo` must be the number of a photo, 0 to {len(self.photos) - 1}; got {photo!r}.")
        return self.files[photo]

    def check_class(self, class_name: str) -> str:
        if class_name not in self.classes:
            raise ConfigError(f"`class_name` {class_name!r} is not a class of this session; expected one of "
                              f"{', '.join(self.classes)}.")
        return class_name

    # proposals

    def ensure_proposals(self, photo: int) -> None:
        """Begin computing ``photo``'s proposals, unless they are known or on their way."""
        with self.lock:
            if self.propose is None or photo in self.proposals or photo in self.proposing:
                return
            self.proposing[photo] = "computing"
            self.worker.submit(self._compute, photo, self.propose, self.generation)

    def _compute(self, photo: int, propose, generation: int) -> None:
        try:
            found, failure = propose(self.photos[photo], self.stopping.is_set), None
        except CnnkitError as e:
            found, failure = [], str(e)
        except Exception as e:  # the page says so; the dots are untouched
            log.exception("Proposals for %s failed", self.photos[photo])
            found, failure = [], f"{type(e).__name__}: {e}"
        with self.lock:
            if generation != self.generation:
                return
            self.proposals[photo] = found
            if failure:
                self.proposing[photo] = f"failed: {failure}"
            else:
                self.proposing.pop(photo, None)

    def close(self) -> None:
        """The server is stopping: a scan at work stops at its next tile, none begins."""
        self.stopping.set()
        self.worker.shutdown(wait=False, cancel_futures=True)

    def new_detector(self, propose: Callable[[Path, Callable[[], bool]], list[Proposal]]) -> None:
        """The detector changed (learning again): every photo's proposals are asked of the new one."""
        with self.lock:
            self.propose, self.generation = propose, self.generation + 1
            self.proposals, self.proposing = {}, {}

    def shown(self, photo: int) -> list[tuple[int, Proposal]]:
        """The proposals still to decide on ``photo``: neither near a dot nor near a rejected proposal."""
        with self.lock:
            f = self.file(photo)
            proposals = self.proposals.get(photo, [])
            taken = np.array([(d.row, d.col) for d in f.dots] + list(f.rejected), np.float64).reshape(-1, 2)
            where = np.array([(p.row, p.col) for p in proposals], np.float64).reshape(-1, 2)
            closest = np.full(len(proposals), np.inf)
            for start in range(0, len(taken), 256):  # at most proposals x 256 distances at once
                part = taken[start:start + 256]
                closest = np.minimum(closest, np.hypot(*(where[:, None, :] - part[None]).transpose(2, 0, 1)).min(1))
            return [(k, p) for k, p in enumerate(proposals) if closest[k] >= self.near]

    def proposal(self, photo: int, proposal: int) -> Proposal:
        found = dict(self.shown(photo)).get(proposal)
        if found is None:
            raise ConfigError(f"`proposal` {proposal!r} is not a proposal still shown on photo {photo} (decided "
                              "already, or the detector changed): reload the photo.")
        return found

    def dot(self, photo: int, dot: int) -> Dot:
        dots = self.file(photo).dots
        if not isinstance(dot, int) or isinstance(dot, bool) or not 0 <= dot < len(dots):
            raise ConfigError(f"`dot` must be the number of a dot of photo {photo}, 0 to {len(dots) - 1}; got "
                              f"{dot!r}.")
        return dots[dot]

    # changes: each one kept for undo, then written

    def change(self, photo: int, edit: Callable[[DotsFile], None]) -> None:
        with self.lock:
            f = self.file(photo)
            before = f.snapshot()
            edit(f)
            self.history.append((photo, before))
            f.save()

    def accept(self, photo: int, proposal: int, class_name: str | None = None) -> None:
        """The proposal becomes a dot of ``class_name`` (default: its own name if the detector gives one it knows,
        else the first class)."""
        with self.lock:
            p = self.proposal(photo, proposal)
            name = class_name or (p.class_name if p.class_name in self.classes else self.classes[0])
            self.check_class(name)
            self.change(photo, lambda f: f.dots.append(Dot(name, p.row, p.col)))

    def accept_all(self, photo: int, box: tuple[float, float, float, float]) -> int:
        """Every proposal shown inside ``box`` (top, bottom, left, right) accepted, as ``accept`` names them."""
        with self.lock:
            top, bottom, left, right = box
            inside = [p for _, p in self.shown(photo) if top <= p.row < bottom and left <= p.col < right]
            names = [p.class_name if p.class_name in self.classes else self.classes[0] for p in inside]
            self.change(photo, lambda f: f.dots.extend(Dot(n, p.row, p.col) for n, p in zip(names, inside)))
            return len(inside)

    def reject(self, photo: int, proposal: int) -> None:
        with self.lock:
            p = self.proposal(photo, proposal)
            self.change(photo, lambda f: f.rejected.append((p.row, p.col)))

    def add(self, photo: int, row: float, col: float, class_name: str) -> None:
        with self.lock:
            self.check_class(class_name)
            self.file(photo).check(row, col)
            self.change(photo, lambda f: f.dots.append(Dot(class_name, float(row), float(col))))

    def move(self, photo: int, dot: int, row: float, col: float) -> None:
        """The dot moved to (row, col); a proposal left where it was is not shown again (it was this object)."""
        with self.lock:
            d = self.dot(photo, dot)
            self.file(photo).check(row, col)

            def edit(f: DotsFile) -> None:
                f.rejected.append((d.row, d.col))
                f.dots[dot] = Dot(d.class_name, float(row), float(col))

            self.change(photo, edit)

    def set_class(self, photo: int, dot: int, class_name: str) -> None:
        with self.lock:
            d = self.dot(photo, dot)
            self.check_class(class_name)
            self.change(photo, lambda f: f.dots.__setitem__(dot, Dot(class_name, d.row, d.col)))

    def delete(self, photo: int, dot: int) -> None:
        """The dot taken away (a proposal there is shown again)."""
        with self.lock:
            self.dot(photo, dot)
            self.change(photo, lambda f: f.dots.pop(dot))

    def review(self, photo: int, box: tuple[float, float, float, float]) -> None:
        """``box`` (top, bottom, left, right) is reviewed: every object in it is dotted (learning again learns
        there)."""
        with self.lock:
            f = self.file(photo)
            top, bottom, left, right = (round(v) for v in box)
            top, left = max(0, top), max(0, left)
            bottom, right = min(f.height, bottom), min(f.width, right)
            if bottom <= top or right <= left:
                raise ConfigError(f"The reviewed box ({top}:{bottom}, {left}:{right}) holds no part of photo {photo} "
                                  f"({f.height}x{f.width}).")
            self.change(photo, lambda f: f.reviewed.append((top, bottom, left, right)))

    def undo(self) -> int:
        """Take back the session's last change; returns the photo it was on."""
        with self.lock:
            if not self.history:
                raise ConfigError("Nothing to undo: no dot was changed since the page's server started.")
            photo, before = self.history.pop()
            self.files[photo].restore(before)
            return photo

    # what the page shows

    def state(self) -> dict:
        with self.lock:
            return {"classes": self.classes, "can_undo": bool(self.history),
                    "photos": [{"name": p.name, "path": str(p), "dots_file": str(f.path), "dots": len(f.dots),
                                "height": f.height, "width": f.width,
                                "reviewed": f.reviewed_box() is not None} for p, f in zip(self.photos, self.files)]}

    def photo_state(self, photo: int) -> dict:
        with self.lock:
            f = self.file(photo)
            self.ensure_proposals(photo)
            return {"photo": photo, "name": self.photos[photo].name, "height": f.height, "width": f.width,
                    "dots": [{"id": k, **vars(d)} for k, d in enumerate(f.dots)],
                    "proposals": [{"id": k, "row": p.row, "col": p.col, "score": round(p.score, 3),
                                   "class_name": p.class_name} for k, p in self.shown(photo)],
                    "proposing": self.proposing.get(photo, "" if self.propose else "no detector"),
                    "reviewed": [list(b) for b in f.reviewed], "can_undo": bool(self.history),
                    "dots_file": str(f.path)}
