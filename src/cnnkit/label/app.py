"""The labelling page's server (``cnnkit label``): one page and a small JSON API over a ``LabelSession``.

Its own application rather than a part of ``cnnkit serve``: serve answers uploads with runs and never lets a request
name a file, while this page shows a pool's files and writes a labels CSV, for one person on this machine. A request
names a pool image by its path relative to the pool, and only the images the session listed at start are answered.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from cnnkit.data.decode import load_image, probe_image
from cnnkit.label.learn import Learner
from cnnkit.label.session import LabelSession
from cnnkit.label.web import create_page_app, text

SHOWN_SIDE = 512  # pixels of the shown image's longer side (smaller images are not enlarged)


def jpeg(path: Path) -> bytes:
    """The image as a person sees it (EXIF orientation applied, aspect kept), at most ``SHOWN_SIDE`` px."""
    info = probe_image(path)
    scale = min(1.0, SHOWN_SIDE / max(info.width, info.height, 1))
    pixels = load_image(path, (max(1, round(info.height * scale)), max(1, round(info.width * scale))), 3)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def create_label_app(session: LabelSession, learner: Learner | None = None):
    """The FastAPI application of the labelling page over ``session``; ``learner``: what "learn again" runs."""
    from fastapi import Body
    from fastapi.responses import Response

    from cnnkit.label.page import PAGE

    app, state = create_page_app(
        PAGE, "cnnkit label", "Label a pool of images, one at a time, into a labels CSV.", session.state, learner,
        ("The image to label now, the run's guess, the classes and the progress",
         "Train the run's recipe again on its data and the new labels, in the background"))

    @app.get("/api/image", summary="A pool image (by its path relative to the pool), as a JPEG")
    def image(path: str) -> Response:
        return Response(jpeg(session.image(path)), media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.post("/api/label", summary="Label a pool image with a class; written to the labels CSV at once")
    def label(body: dict = Body(...)) -> dict:  # noqa: B008 (FastAPI's way of declaring a body)
        session.label(text(body, "path"), text(body, "label"))
        return state()

    @app.post("/api/skip", summary="Leave an image for later (shown again after every other)")
    def skip(body: dict = Body(...)) -> dict:  # noqa: B008
        session.skip(text(body, "path"))
        return state()

    @app.post("/api/undo", summary="Take back the last label or skip; that image is shown again")
    def undo() -> dict:
        session.undo()
        return state()

    return app
