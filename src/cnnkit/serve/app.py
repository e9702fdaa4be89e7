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
import threading
from pathlib import Path

from PIL import Image

from cnnkit.errors import CnnkitError
from cnnkit.serve.uploads import Limits, UploadError, read_upload

log = logging.getLogger("cnnkit")
THUMBNAIL = 160  # px, the longer side of a training image shown beside a query
MAX_K = 20


class ServedRun:
    """One run: its folder, record and test scores, and its predictor and index, loaded on first use."""

    def __init__(self, run_id: str, path: Path):
        from cnnkit.run import RunFolder

        self.id, self.path, self.folder = run_id, path, RunFolder(path)
        self.record = self.folder.read_record()
        if self.record.finds_points:  # the page classifies images; a point detector's run counts with `cnnkit scan`
            self.record.refuse_unless_classifier(path, "serving it")
        self.lock = threading.Lock()
        self._predictor = self._index = None
        self.tta = bool(self.record.augment) and not self.record.model.is_baseline  # what TTA draws on

    def predictor(self):
        """Loaded once: the ONNX export when it is current, else the network (``Predictor.load``'s choice)."""
        if self._predictor is None:
            from cnnkit.inference import Predictor

            self._predictor = Predictor.load(self.path)
        return self._predictor

    def torch_predictor(self):
        """The network itself, for what needs it (test-time augmentation, latent vectors, scans)."""
        predictor = self.predictor()
        if predictor.backend == "torch":
            return predictor
        if not hasattr(self, "_torch"):
            from cnnkit.inference import Predictor

            self._torch = Predictor.load(self.path, backend="torch")
        return self._torch

    def index(self):
        if self._index is None:
            from cnnkit.latent.index import run_index

            self._index = run_index(self.path, self.torch_predictor())
        return self._index

    def summary(self) -> dict:
        import json

        record, metrics = self.record, {}
        if (self.path / "metrics.json").exists():
            metrics = json.loads((self.path / "metrics.json").read_text())
        return {"id": self.id, "classes": list(record.classes), "model": record.model.name,
                "strategy": record.strategy, "multi_label": record.multi_label,
                "threshold": record.decision.threshold if record.decision else None,
                "thresholds": dict(zip(record.classes, record.thresholds)) if record.thresholds else None,
                "tta": self.tta,
                "latent": not record.model.is_baseline,
                "input": list(record.preprocessing.image_size),
                "test": {k: metrics.get(k) for k in ("n", "accuracy", "balanced_accuracy", "macro_f1", "auc")}
                if metrics.get("split") == "test" else None,
                "report": (self.path / "report.html").exists()}


def run_ids(paths: list[Path]) -> dict[str, Path]:
    """A short, unique id per run: its folder name (numbered when two runs share one)."""
    ids: dict[str, Path] = {}
    for path in paths:
        name = path.resolve().name
        key, n = name, 2
        while key in ids:
            key, n = f"{name}-{n}", n + 1
        ids[key] = path
    return ids


def create_app(runs: list[str | Path], limits: Limits | None = None):
    """The FastAPI application serving ``runs`` (each checked now: a broken run fails at start, not per request)."""
    from fastapi import FastAPI, HTTPException, UploadFile
    from fastapi.responses import HTMLResponse, JSONResponse

    from cnnkit.serve.page import PAGE

    limits = limits or Limits()
    served = {key: ServedRun(key, Path(path)) for key, path in run_ids([Path(r) for r in runs]).items()}
    if not served:
        raise CnnkitError("cnnkit serve needs at least one run folder.")
    app = FastAPI(title="cnnkit", summary="Predictions, nearest training images and scans of trained runs.")

    def pick(run: str | None) -> ServedRun:
        if run is None:
            return next(iter(served.values()))
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

    @app.get("/api/runs", summary="The served runs: classes, model, test scores, what each can do")
    def list_runs() -> list[dict]:
        return [r.summary() for r in served.values()]

    _add_api(app, pick, image_of)
    _add_files(app, pick, served)
    return app


def _add_api(app, pick, image_of) -> None:
    """The three endpoints that take an image (multipart field ``file``)."""
    from fastapi import File, HTTPException, Query, UploadFile

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

    @app.get("/compare", response_class=HTMLResponse, summary="The served runs side by side (`cnnkit compare`)")
    def compare() -> str:
        from cnnkit.evaluation.compare import compare_runs, render_compare_html

        return render_compare_html(compare_runs([r.path for r in served.values()]))


async def _in_thread(work):
    """Run blocking model work in a worker thread (the event loop keeps answering); errors become one clear line."""
    from fastapi import HTTPException
    from starlette.concurrency import run_in_threadpool

    try:
        return await run_in_threadpool(work)
    except CnnkitError as e:
        raise HTTPException(400, str(e)) from None


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

