"""The dotting page's server (``cnnkit label PHOTO... --dots CSV... --run POINT_RUN``): one page, the photos as
tiles, and a small JSON API over a ``DotSession``; a request names a photo by its number in the session, never by a
path. Every answer to a change is the photo's state after it."""

from __future__ import annotations

import math
from contextlib import asynccontextmanager

from cnnkit.errors import CnnkitError
from cnnkit.label.dotting import DotSession
from cnnkit.label.learn import Learner
from cnnkit.label.propose import Tiles


def _number(body: dict, key: str, whole: bool = False):
    value = body.get(key) if isinstance(body, dict) else None
    ok = isinstance(value, int) if whole else isinstance(value, (int, float)) and math.isfinite(value)
    if isinstance(value, bool) or not ok:
        raise CnnkitError(f"The request needs `{key}`, {'a whole number' if whole else 'a number'}; got {value!r}.")
    return value


def _box(body: dict) -> tuple[float, float, float, float]:
    return tuple(_number(body, key) for key in ("top", "bottom", "left", "right"))


def _name(body: dict, required: bool = True) -> str | None:
    value = body.get("class_name") if isinstance(body, dict) else None
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise CnnkitError(f"The request needs `class_name`, a non-empty string; got {value!r}.")
    return value


def _changes(app, session: DotSession, answer) -> None:
    from fastapi import Body

    def post(path: str, summary: str, act) -> None:
        def handler(body: dict = Body(...)) -> dict:  # noqa: B008 (FastAPI's way of declaring a body)
            photo = _number(body, "photo", True)
            act(photo, body)
            return answer(photo)

        app.post(path, summary=summary)(handler)

    post("/api/accept", "A proposal becomes a dot (of `class_name`, else its own or the first class)",
         lambda p, b: session.accept(p, _number(b, "proposal", True), _name(b, False)))
    post("/api/accept-all", "Every proposal shown in the box (top, bottom, left, right) becomes a dot",
         lambda p, b: session.accept_all(p, _box(b)))
    post("/api/reject", "A proposal is no object: not shown again", lambda p, b: session.reject(
        p, _number(b, "proposal", True)))
    post("/api/add", "A new dot at (row, col) of `class_name`", lambda p, b: session.add(
        p, _number(b, "row"), _number(b, "col"), _name(b)))
    post("/api/move", "A dot moved to (row, col)", lambda p, b: session.move(
        p, _number(b, "dot", True), _number(b, "row"), _number(b, "col")))
    post("/api/class", "A dot's class changed", lambda p, b: session.set_class(
        p, _number(b, "dot", True), _name(b)))
    post("/api/delete", "A dot taken away", lambda p, b: session.delete(p, _number(b, "dot", True)))
    post("/api/reviewed", "The box (top, bottom, left, right) is reviewed: every object in it is dotted",
         lambda p, b: session.review(p, _box(b)))


def create_dot_app(session: DotSession, learner: Learner | None = None):
    """The FastAPI application of the dotting page over ``session``; ``learner``: what "learn again" runs."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    from cnnkit.label.dot_page import PAGE

    @asynccontextmanager
    async def lifespan(_):
        yield
        session.close()  # the server is stopping: so is a scan at work, and a training (resumed by the next one)
        if learner is not None:
            learner.stop()

    app = FastAPI(title="cnnkit label (dots)", summary="Dot the objects of large photos, from a detector's proposals.",
                  lifespan=lifespan)
    tiles = Tiles()

    @app.exception_handler(CnnkitError)
    async def _refused(request, error: CnnkitError):
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE

    @app.get("/api/state", summary="The photos, their dots files, the classes and learning again")
    def state() -> dict:
        return {**session.state(), "learn": learner.status() if learner else None}

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

    @app.post("/api/learn", summary="Train the detector again on every dotted photo, in the background")
    def learn() -> dict:
        if learner is None:
            raise CnnkitError("Learning again is not offered by this server.")
        learner.start()
        return state()

    return app
