"""The web application: one page and a JSON API over the served runs, on FastAPI.

FastAPI (with uvicorn) rather than Gradio: the API is the product (the page uses nothing else, ``curl`` uses the same
endpoints, OpenAPI documents them at ``/docs``), the page stays one self-contained file with no external request,
and the install is a few small wheels instead of Gradio's hundreds of MB.

Safety: only the runs given at start are served, each under an id; no path from a request reaches the file system
(files are found by listing a run's own folder, training images by their index in its split). Every model loads
once and answers one request at a time (a lock per run): concurrent requests queue, they never share a model.
"""


import io
import logging
import tempfile
from functools import cache
from html import escape
from pathlib import Path

from PIL import Image

from cnnkit.errors import CnnkitError
from cnnkit.serve.runs import ServedRun, best_run, run_ids
from cnnkit.serve.uploads import Limits, UploadError, read_upload

log = logging.getLogger("cnnkit")
THUMBNAIL = 160  # px, the longer side of a training image shown beside a query
MAX_K = 20


def create_app(runs: list[str | Path], limits: Limits | None = None):
    """The FastAPI application serving ``runs`` (each checked now: a broken run fails at start, not per request)."""
    from fastapi import FastAPI, HTTPException, UploadFile
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    from cnnkit.serve.page import PAGE

    limits = limits or Limits()
    served = {key: ServedRun(key, Path(path)) for key, path in run_ids([Path(r) for r in runs]).items()}
    if not served:
        raise CnnkitError("cnnkit serve needs at least one run folder.")
    default, why = best_run(list(served.values()))  # best test accuracy, else validation accuracy, else first
    app = FastAPI(title="cnnkit", summary="Predictions, nearest training images and scans of trained runs.")
    app.state.default_run, app.state.default_reason = default.id, why

    def pick(run: str | None) -> ServedRun:
        if run is None:
            return default
        if run not in served:
            raise HTTPException(404, f"No run {run!r} is served here (served: {', '.join(served)}).")
        return served[run]

    async def image_of(file: UploadFile) -> Image.Image:
        data = await file.read(limits.max_bytes + 1)
        try:
            return read_upload(data, limits, file.filename or "upload")
        except UploadError as e:
            raise HTTPException(e.status, str(e)) from None

    @app.exception_handler(CnnkitError)
    async def _cnnkit_error(request, error: CnnkitError):
        return JSONResponse({"detail": str(error)}, status_code=400)

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

    _add_api(app, pick, image_of)
    _add_files(app, pick, served)
    return app


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


def _add_api(app, pick, image_of) -> None:
    """The endpoints that take an image (multipart field ``file``)."""
    from fastapi import File, HTTPException, Query, UploadFile

    @app.post("/api/answer", summary="What the page shows for one image: a scan when scanning is on (`scan`; by "
                                     "default on for runs trained on patches) and the photo is more than 4x the "
                                     "run's input on both sides, else class probabilities; `kind` says which")
    async def answer(file: UploadFile = File(...), run: str | None = Query(None), scan: bool | None = Query(None),
                     tta: int = Query(1, ge=1, le=16)):
        chosen, image = pick(run), await image_of(file)
        return await _in_thread(lambda: _answer(chosen, image, scan, tta))

    @app.post("/api/predict", summary="Class probabilities of one image (multipart field `file`)")
    async def predict(file: UploadFile = File(...), run: str | None = Query(None), tta: int = Query(1, ge=1, le=16)):
        chosen, image = pick(run), await image_of(file)
        return await _in_thread(lambda: _predict(chosen, image, tta))

    @app.post("/api/similar", summary="The training images nearest to one image in the latent space")
    async def similar(file: UploadFile = File(...), run: str | None = Query(None), k: int = Query(5, ge=1, le=MAX_K)):
        chosen, image = pick(run), await image_of(file)
        if chosen.record.model.is_baseline:
            raise HTTPException(400, f"{chosen.id} is a baseline run: it has no latent space.")
        return await _in_thread(lambda: _similar(chosen, image, k))

    @app.post("/api/scan", summary="Scan a large photograph: heatmaps, detections and counts per class")
    async def scan(file: UploadFile = File(...), run: str | None = Query(None)):
        chosen, image = pick(run), await image_of(file)
        return await _in_thread(lambda: _scan(chosen, image))


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


async def _in_thread(work):
    """Run blocking model work in a worker thread (the event loop keeps answering); errors become one clear line."""
    from fastapi import HTTPException
    from starlette.concurrency import run_in_threadpool

    try:
        return await run_in_threadpool(work)
    except CnnkitError as e:
        raise HTTPException(400, str(e)) from None


def _answer(run: ServedRun, image: Image.Image, scan: bool | None, tta: int) -> dict:
    """A scan when scanning is on (``scan``, else the run's offer) and the photo holds more than 4 of the run's
    inputs on both sides; else the image's class probabilities."""
    wanted = run.scan.offered if scan is None else scan
    if wanted and not run.scan.available:
        raise CnnkitError(f"{run.id} cannot scan: {run.scan.reason}. Ask without `scan`.")
    height, width = run.record.preprocessing.image_size
    if wanted and image.height > 4 * height and image.width > 4 * width:
        return {"kind": "scan", **_scan(run, image)}
    return {"kind": "prediction", **_predict(run, image, tta)}


def _predict(run: ServedRun, image: Image.Image, tta: int) -> dict:
    with run.lock:
        predictor = run.torch_predictor() if tta > 1 else run.predictor()
        if tta > 1 and not run.tta:
            raise CnnkitError(f"{run.id} was trained without augmentation: test-time augmentation needs it.")
        prediction = predictor.predict([image], tta=tta)[0]
    return {"run": run.id, "label": prediction.label, "probability": prediction.probability,
            "probabilities": prediction.probabilities, "backend": predictor.backend, "tta": tta,
            "threshold": predictor.threshold, "thresholds": predictor.thresholds, "multi_label": predictor.multi_label}


def _similar(run: ServedRun, image: Image.Image, k: int) -> dict:
    with run.lock:
        predictor = run.torch_predictor()
        index = run.index()
        distances, ids = index.search(predictor.embed_arrays(predictor.as_images([image])), k)
    train = run.folder.read_split().splits.get("train", [])
    names, order = dict(train), {p: i for i, (p, _) in enumerate(train)}
    return {"run": run.id, "metric": index.metric, "neighbours": [
        {"class": names.get(index.paths[i]) or "(none)", "distance": float(d), "file": Path(index.paths[i]).name,
         "image": f"/runs/{run.id}/train-image/{order[index.paths[i]]}"}
        for d, i in zip(distances[0], ids[0]) if i >= 0]}


def _scan(run: ServedRun, image: Image.Image) -> dict:
    import base64
    import json

    from cnnkit.scan.photo import scan_photo

    with tempfile.TemporaryDirectory(prefix="cnnkit-serve-") as tmp:
        photo = Path(tmp) / "upload.png"
        image.convert("RGB").save(photo)
        with run.lock:
            summary = scan_photo(run.path, photo, Path(tmp) / "scan", predictor=run.torch_predictor())
        out = Path(tmp) / "scan"
        pictures = {p.stem: "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode("ascii")
                    for p in sorted(out.glob("*.png"))}
        counts = json.loads((out / "counts.json").read_text()) if (out / "counts.json").exists() else summary["counts"]
    return {"run": run.id, "counts": counts, "detections": summary["detections"], "seconds": summary["seconds"],
            "photo_size": summary["photo_size"], "images": pictures, "exact": summary["exact"]}

