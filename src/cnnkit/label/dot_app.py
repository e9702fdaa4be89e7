"""The dotting page's server (``cnnkit label PHOTO... --dots CSV... --run POINT_RUN``): one page, the photos as
tiles, and a small JSON API over a ``DotSession``; a request names a photo by its number in the session, never by a
path. Every answer to a change is the photo's state after it."""

from __future__ import annotations

import math

from cnnkit.errors import CnnkitError
from cnnkit.label.dotting import DotSession
from cnnkit.label.learn import Learner
from cnnkit.label.propose import Tiles
from cnnkit.label.web import create_page_app, text


def _number(body: dict, key: str, whole: bool = False):
    value = body.get(key) if isinstance(body, dict) else None
    ok = isinstance(value, int) if whole else isinstance(value, (int, float)) and math.isfinite(value)
    if isinstance(value, bool) or not ok:
        raise CnnkitError(f"The request needs `{key}`, {'a whole number' if whole else 'a number'}; got {value!r}.")
    return value


def _box(body: dict) -> tuple[float, float, float, float]:
    return tuple(_number(body, key) for key in ("top", "bottom", "left", "right"))


def _changes(app, session: DotSession, answer) -> None:
    from fastapi import Body

    def post(path: str, summary: str, act) -> None:
        def handler(body: dict = Body(...)) -> dict:  # noqa: B008 (FastAPI's way of declaring a body)
            photo = _number(body, "photo", True)
            act(photo, body)
            return answer(photo)

        app.post(path, summary=summary)(handler)

    post("/api/accept", "A proposal becomes a dot (of `class_name`, else its own or the first class)",
         lambda p, b: session.accept(p, _number(b, "proposal", True), text(b, "class_name", False)))
    post("/api/accept-all", "Every proposal shown in the box (top, bottom, left, right) becomes a dot",
         lambda p, b: session.accept_all(p, _box(b)))
    post("/api/reject", "A proposal is no object: not shown again", lambda p, b: session.reject(
        p, _number(b, "proposal", True)))
    post("/api/add", "A new dot at (row, col) of `class_name`", lambda p, b: session.add(
        p, _number(b, "row"), _number(b, "col"), text(b, "class_name")))
    post("/api/move", "A dot moved to (row, col)", lambda p, b: session.move(
        p, _number(b, "dot", True), _number(b, "row"), _number(b, "col")))
    post("/api/class", "A dot's class changed", lambda p, b: session.set_class(
        p, _number(b, "dot", True), text(b, "class_name")))
    post("/api/delete", "A dot taken away", lambda p, b: session.delete(p, _number(b, "dot", True)))
    post("/api/reviewed", "The box (top, bottom, left, right) is reviewed: every object in it is dotted",
         lambda p, b: session.review(p, _box(b)))


def create_dot_app(session: DotSession, learner: Learner | None = None):
    """The FastAPI application of the dotting page over ``session``; ``learner``: what "learn again" runs."""
    from fastapi.responses import Response

    from cnnkit.label.dot_page import PAGE

    app, _ = create_page_app(
        PAGE, "cnnkit label (dots)", "Dot the objects of large photos, from a detector's proposals.", session.state,
        learner, ("The photos, their dots files, the classes and learning again",
                  "Train the detector again on every dotted photo, in the background"),
        stopping=session.close)  # the server is stopping: so is a scan at work
    tiles = Tiles()

    def answer(photo: int) -> dict:
        found = session.photo_state(photo)
        return {**found, "levels": tiles.count(session.photos[photo])}

    @app.get("/api/photo", summary="One photo's dots, the proposals still shown, its reviewed parts, its zoom levels")
    def photo(photo: int) -> dict:
        return answer(photo)

    @app.get("/api/tile", summary="A 512-px JPEG tile of a photo shrunk 2^level times")
    def tile(photo: int, level: int, row: int, col: int) -> Response:
        session.file(photo)
        return Response(tiles.tile(session.photos[photo], level, row, col), media_type="image/jpeg",
                        headers={"Cache-Control": "max-age=3600"})

    _changes(app, session, answer)

    @app.post("/api/undo", summary="Take back the last change; the photo it was on is answered")
    def undo() -> dict:
        return answer(session.undo())

    return app
