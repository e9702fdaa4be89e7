"""The endpoints that take an image (multipart field ``file``): predictions, nearest training images and scans.

Each request's header is checked first (bytes, type, pixels, a scan's pixel budget); then its work (decoding, the
model) waits for the run's model in ``serve.work``'s bounded queue, within its deadline. Predictions and nearest
images share a run's prediction model; scans have a model of their own, so that a prediction never waits for a scan.
"""

import base64
import json
import tempfile
from pathlib import Path

from PIL import Image

from cnnkit.errors import CnnkitError
from cnnkit.scan.photo import scan_photo
from cnnkit.serve.runs import ServedRun
from cnnkit.serve.uploads import UploadError, check_scan_size, decode_upload, open_upload
from cnnkit.serve.work import Refused, Work, Workload

MAX_K = 20


class Upload:
    """An uploaded image whose header is checked, decoded in its request's work."""

    def __init__(self, data: bytes, workload: Workload, name: str):
        self.data, self.name = data, name
        self.image = refused_upload(lambda: open_upload(data, workload.limits, name))

    def decoded(self) -> Image.Image:
        return decode_upload(self.image, self.data, self.name)

    def describe(self) -> str:
        return f"{self.name} ({self.image.width}x{self.image.height} pixels)"


def refused_upload(check):
    """``check()``, its UploadError answered with its status."""
    try:
        return check()
    except UploadError as e:
        raise Refused(e.status, str(e)) from None


def add_image_endpoints(app, pick, workload: Workload) -> None:
    from fastapi import File, HTTPException, Query, Request, UploadFile

    async def upload_of(file: UploadFile) -> Upload:
        return Upload(await file.read(workload.limits.max_bytes + 1), workload, file.filename or "upload")

    @app.post("/api/answer", summary="What the page shows for one image: a scan when scanning is on (`scan`; by "
                                     "default on for runs trained on patches) and the photo is more than 4x the "
                                     "run's input on both sides, else class probabilities; `kind` says which")
    async def answer(request: Request, file: UploadFile = File(...), run: str | None = Query(None),
                     scan: bool | None = Query(None), tta: int = Query(1, ge=1, le=16)):
        chosen, upload = pick(run), await upload_of(file)
        if wants_scan(chosen, upload.image, scan):
            return {"kind": "scan", **await scanned(workload, request, chosen, upload)}
        return {"kind": "prediction", **await predicted(workload, request, chosen, upload, tta)}

    @app.post("/api/predict", summary="Class probabilities of one image (multipart field `file`)")
    async def predict(request: Request, file: UploadFile = File(...), run: str | None = Query(None),
                      tta: int = Query(1, ge=1, le=16)):
        chosen, upload = pick(run), await upload_of(file)
        return await predicted(workload, request, chosen, upload, tta)

    @app.post("/api/similar", summary="The training images nearest to one image in the latent space")
    async def similar(request: Request, file: UploadFile = File(...), run: str | None = Query(None),
                      k: int = Query(5, ge=1, le=MAX_K)):
        chosen, upload = pick(run), await upload_of(file)
        if chosen.record.model.is_baseline:
            raise HTTPException(400, f"{chosen.id} is a baseline run: it has no latent space.")
        return await workload.run(request.receive, workload.lane(chosen.id, "predict"),
                                  lambda work: _similar(chosen, upload.decoded(), k),
                                  f"the search for images near {upload.describe()}")

    @app.post("/api/scan", summary="Scan a large photograph: heatmaps, detections and counts per class (within "
                                   "`max_scan_pixels`, and the request's deadline)")
    async def scan(request: Request, file: UploadFile = File(...), run: str | None = Query(None)):
        chosen, upload = pick(run), await upload_of(file)
        return await scanned(workload, request, chosen, upload)


def wants_scan(run: ServedRun, image: Image.Image, scan: bool | None) -> bool:
    """Whether ``/api/answer`` scans: scanning is on (``scan``, else the run's offer) and the photo holds more than 4
    of the run's inputs on both sides."""
    wanted = run.scan.offered if scan is None else scan
    if wanted and not run.scan.available:
        raise CnnkitError(f"{run.id} cannot scan: {run.scan.reason}. Ask without `scan`.")
    height, width = run.record.preprocessing.image_size
    return wanted and image.height > 4 * height and image.width > 4 * width


async def predicted(workload: Workload, request, run: ServedRun, upload: Upload, tta: int) -> dict:
    return await workload.run(request.receive, workload.lane(run.id, "predict"),
                              lambda work: _predict(run, upload.decoded(), tta),
                              f"the prediction of {upload.describe()}")


async def scanned(workload: Workload, request, run: ServedRun, upload: Upload) -> dict:
    refused_upload(lambda: check_scan_size(upload.image, workload.limits, upload.name))
    return await workload.run(request.receive, workload.lane(run.id, "scan"),
                              lambda work: _scan(run, upload.decoded(), work), f"the scan of {upload.describe()}")


def _predict(run: ServedRun, image: Image.Image, tta: int) -> dict:
    predictor = run.torch_predictor() if tta > 1 else run.predictor()
    if tta > 1 and not run.tta:
        raise CnnkitError(f"{run.id} was trained without augmentation: test-time augmentation needs it.")
    prediction = predictor.predict([image], tta=tta)[0]
    return {"run": run.id, "label": prediction.label, "probability": prediction.probability,
            "probabilities": prediction.probabilities, "backend": predictor.backend, "tta": tta,
            "threshold": predictor.threshold, "thresholds": predictor.thresholds, "multi_label": predictor.multi_label}


def _similar(run: ServedRun, image: Image.Image, k: int) -> dict:
    predictor = run.torch_predictor()
    index = run.index()
    distances, ids = index.search(predictor.embed_arrays(predictor.as_images([image])), k)
    train = run.folder.read_split().splits.get("train", [])
    names, order = dict(train), {p: i for i, (p, _) in enumerate(train)}
    return {"run": run.id, "metric": index.metric, "neighbours": [
        {"class": names.get(index.paths[i]) or "(none)", "distance": float(d), "file": Path(index.paths[i]).name,
         "image": f"/runs/{run.id}/train-image/{order[index.paths[i]]}"}
        for d, i in zip(distances[0], ids[0]) if i >= 0]}


def _scan(run: ServedRun, image: Image.Image, work: Work) -> dict:
    """The scan of ``image``, stopped between tiles when ``work`` should stop. The upload is written as BMP for
    ``scan_photo`` to read: a large photo's PNG took seconds to write, in no step a stop is asked at."""
    with tempfile.TemporaryDirectory(prefix="cnnkit-serve-") as tmp:
        photo = Path(tmp) / "upload.bmp"
        image.convert("RGB").save(photo)
        work.check()
        summary = scan_photo(run.path, photo, Path(tmp) / "scan", predictor=run.scan_predictor(),
                             should_stop=work.should_stop)
        out = Path(tmp) / "scan"
        pictures = {p.stem: "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode("ascii")
                    for p in sorted(out.glob("*.png"))}
        counts = json.loads((out / "counts.json").read_text()) if (out / "counts.json").exists() else summary["counts"]
    return {"run": run.id, "counts": counts, "detections": summary["detections"], "seconds": summary["seconds"],
            "photo_size": summary["photo_size"], "images": pictures, "exact": summary["exact"]}
