"""The web application: one page and a JSON API over the served runs, on FastAPI.

FastAPI (with uvicorn) rather than Gradio: the API is the product (the page uses nothing else, ``curl`` uses the same
endpoints, OpenAPI documents them at ``/docs``), the page stays one self-contained file with no external request,
and the install is a few small wheels instead of Gradio's hundreds of MB.

Safety: only the runs given at start are served, each under an id; no path from a request reaches the file system
(files are found by listing a run's own folder, training images by their index in its split). Every model loads
once and answers one request at a time; what a request may cost is bounded (``serve.limits``, ``serve.work``):
its body by Content-Length before it is read, its pixels from the header, its work by a deadline and the client's
presence, the requests waiting for a run's model by a short queue (503 beyond it), and the requests of the whole
server at once by ``max_requests`` (503 beyond it, before the body is read).
"""

import io
import logging
from contextlib import asynccontextmanager
from functools import cache
from html import escape
from pathlib import Path

from PIL import Image

from cnnkit.errors import CnnkitError
from cnnkit.serve.api import add_image_endpoints
from cnnkit.serve.limits import BodyLimit, Limits
from cnnkit.serve.runs import ServedRun, best_run, run_ids
from cnnkit.serve.work import Refused, RequestLimit, Workload

log = logging.getLogger("cnnkit")
THUMBNAIL = 160  # px, the longer side of a training image shown beside a query
DRAIN = 1.0  # seconds the stopping server waits for stopped work to end (removing its temporary files)


def create_app(runs: list[str | Path], limits: Limits | None = None):
    """The FastAPI application serving ``runs`` (each checked now: a broken run fails at start, not per request)."""
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import HTMLResponse, Response

    from cnnkit.serve.page import PAGE

    workload = Workload(limits or Limits())
    served = {key: ServedRun(key, Path(path)) for key, path in run_ids([Path(r) for r in runs]).items()}
    if not served:
        raise CnnkitError("cnnkit serve needs at least one run folder.")
    default, why = best_run(list(served.values()))  # best test accuracy, else validation accuracy, else first

    @asynccontextmanager
    async def lifespan(_):
        yield
        await workload.drain(DRAIN)  # the server is stopping: no work outlives it by more than a tile

    app = FastAPI(title="cnnkit", summary="Predictions, nearest training images and scans of trained runs.",
                  lifespan=lifespan)
    app.add_middleware(BodyLimit, limits=workload.limits)
    app.add_middleware(RequestLimit, workload=workload)  # the outer one: a request over the limit reads nothing
    app.state.default_run, app.state.default_reason, app.state.workload = default.id, why, workload

    def pick(run: str | None) -> ServedRun:
        if run is None:
            return default
        if run not in served:
            raise HTTPException(404, f"No run {run!r} is served here (served: {', '.join(served)}).")
        return served[run]

    _add_errors(app)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(favicon_png(), media_type="image/png", headers={"Cache-Control": "max-age=86400"})

    @app.get("/api/runs", summary="The served runs: classes, model, scores, what each can do; `default` marks the "
                                  "run used when none is named (the best test accuracy, else validation accuracy)")
    def list_runs() -> list[dict]:
        return [{**r.summary(), "default": r is default, **({"default_reason": why} if r is default else {})}
                for r in served.values()]

    @app.get("/api/load", summary="The limits, and per run and model (predict, scan) the requests at work and "
                                  "waiting, answered, refused and stopped (by reason), and the scan tiles begun")
    def load() -> dict:
        return workload.summary()

    add_image_endpoints(app, pick, workload)
    _add_files(app, pick, served)
    return app


def _add_errors(app) -> None:
    """cnnkit's errors answered 400, a refused request with its own status and headers; one line each."""
    from fastapi.responses import JSONResponse

    @app.exception_handler(CnnkitError)
    async def _cnnkit_error(request, error: CnnkitError):
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.exception_handler(Refused)
    async def _refused(request, error: Refused):
        return JSONResponse({"detail": str(error)}, status_code=error.status, headers=error.headers)


@cache
def favicon_png() -> bytes:
    """A 32 px icon drawn once (a 3x3 kernel, white on blue), so that no browser meets a 404 for /favicon.ico."""
    from PIL import ImageDraw

    picture = Image.new("RGB", (32, 32), (42, 110, 219))
    draw = ImageDraw.Draw(picture)
    for row in range(3):
        for col in range(3):
            draw.rectangle((5 + 8 * col, 5 + 8 * row, 10 + 8 * col, 10 + 8 * row), fill=(255, 255, 255))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def _add_files(app, pick, served: dict) -> None:
    """The runs' reports, training images (by number in the split) and the comparison of the served runs."""
    from fastapi import HTTPException
    from fastapi.responses import FileResponse, HTMLResponse, Response

    @app.get("/runs/{run}/report", response_class=HTMLResponse, summary="The run's report, as `cnnkit` wrote it")
    def report(run: str):
        chosen = pick(run)
        if not (chosen.path / "report.html").is_file():
            raise HTTPException(404, f"{run} has no report.html (evaluate it with `cnnkit evaluate`).")
        return FileResponse(chosen.path / "report.html", media_type="text/html")

    @app.get("/runs/{run}/train-image/{number}", summary="A training image of the run, as a thumbnail")
    def train_image(run: str, number: int):
        chosen = pick(run)
        manifest = chosen.folder.read_split()
        samples = manifest.splits.get("train", [])
        if not 0 <= number < len(samples):
            raise HTTPException(404, f"{run} has {len(samples)} training images; there is no number {number}.")
        try:
            with Image.open(chosen.folder.data_root(manifest) / samples[number][0]) as picture:
                picture = picture.convert("RGB")
                picture.thumbnail((THUMBNAIL, THUMBNAIL))
                out = io.BytesIO()
                picture.save(out, "PNG")
        except OSError:
            raise HTTPException(404, f"Training image {number} of {run} cannot be read.") from None
        return Response(out.getvalue(), media_type="image/png")

    @app.get("/api/compare", summary="Whether the served runs can be compared on one test set, and why not")
    def can_compare() -> dict:
        rows, note = comparison(served)
        return {"comparable": rows is not None, "note": note}

    @app.get("/compare", response_class=HTMLResponse, summary="The served runs side by side (`cnnkit compare`)")
    def compare() -> HTMLResponse:
        from cnnkit.evaluation.compare import render_compare_html

        rows, note = comparison(served)
        if rows is None:  # a page saying why, never raw JSON: the browser opened it from a link
            return HTMLResponse(_note_page("Nothing to compare", note), status_code=409)
        links = {r["run"]: f"/runs/{r['run']}/report" for r in rows if r["report"]}
        page = render_compare_html(rows, report_links=links)
        return page.replace("</h1>", f"</h1><p>{escape(note)}</p>", 1) if note else page


def comparison(served: dict[str, ServedRun]) -> tuple[list[dict] | None, str]:
    """(`cnnkit compare`'s rows of the served runs scored on a test split, named by id, and a note on those left
    out), or (None, why they cannot be compared)."""
    from cnnkit.evaluation.compare import compare_runs

    tested = [r for r in served.values() if r.test_scores() is not None]
    untested = [r.id for r in served.values() if r.test_scores() is None]
    if len(served) < 2:
        return None, "One run is served: comparing needs two runs (serve several to compare them)."
    if len(tested) < 2:
        return None, (f"Comparing needs two runs scored on one test split; {', '.join(untested)} "
                      f"{'has' if len(untested) == 1 else 'have'} no test score (a run whose validation split "
                      "chose its weights has no test split, or it was not evaluated: `cnnkit evaluate RUN`).")
    try:
        rows = compare_runs([r.path for r in tested])
    except CnnkitError as e:
        return None, str(e)
    rows = [{**row, "run": r.id} for row, r in zip(rows, tested)]
    return rows, (f"Left out, with no test score: {', '.join(untested)}." if untested else "")


def _note_page(title: str, note: str) -> str:
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>cnnkit: '
            f'{escape(title)}</title><style>body{{font-family:system-ui,sans-serif;margin:1em}}pre{{white-space:'
            f'pre-wrap}}</style></head><body><h1>{escape(title)}</h1><pre>{escape(note)}</pre>'
            '<p><a href="/">Back to the page</a></p></body></html>\n')
