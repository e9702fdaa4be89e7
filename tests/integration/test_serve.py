"""`cnnkit serve`: the JSON API in-process (FastAPI's test client), its limits and refusals, and the page in a real
headless browser (skipped, saying why, where no Chromium is installed)."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="cnnkit[serve] is not installed")
from fastapi.testclient import TestClient

from cnnkit.inference import Predictor
from cnnkit.serve.app import create_app
from cnnkit.serve.limits import Limits
from tests import warm_cli
from tests.unit.servers import free_port, wait_for_port


def png(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


@pytest.fixture(scope="module")
def client(trained_run) -> TestClient:
    return TestClient(create_app([trained_run], Limits(max_bytes=200_000, max_pixels=1_000_000)))


@pytest.fixture(scope="module")
def sample(pattern_data) -> Path:
    return sorted((pattern_data / "right").glob("*.png"))[0]


def test_the_api_lists_the_run_with_its_classes_and_scores(client, trained_run):
    runs = client.get("/api/runs").json()
    assert [r["id"] for r in runs] == [trained_run.name]
    assert runs[0]["classes"] == ["left", "right", "top"] and runs[0]["test"]["accuracy"] is not None
    assert client.get("/openapi.json").json()["paths"].keys() >= {"/api/predict", "/api/similar", "/api/scan"}


def test_predict_gives_what_the_predictor_gives(client, trained_run, sample):
    answer = client.post("/api/predict", files={"file": ("x.png", sample.read_bytes(), "image/png")})
    assert answer.status_code == 200, answer.text
    expected = Predictor.load(trained_run).predict([sample])[0]
    body = answer.json()
    assert body["label"] == expected.label
    assert body["probabilities"] == pytest.approx(expected.probabilities, abs=1e-6)


def test_similar_returns_training_images_served_by_number(client, sample):
    body = client.post("/api/similar?k=3", files={"file": ("x.png", sample.read_bytes())}).json()
    assert len(body["neighbours"]) == 3 and body["neighbours"][0]["distance"] <= body["neighbours"][1]["distance"]
    picture = client.get(body["neighbours"][0]["image"])
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    Image.open(io.BytesIO(picture.content)).verify()


def test_scan_counts_a_larger_picture(client, pattern_data):
    tiles = [Image.open(p).convert("RGB") for p in sorted((pattern_data / "left").glob("*.png"))[:4]]
    photo = Image.new("RGB", (64, 64))
    for i, tile in enumerate(tiles):
        photo.paste(tile, ((i % 2) * 32, (i // 2) * 32))
    answer = client.post("/api/scan", files={"file": ("photo.png", png(photo))})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body["counts"]) <= {"left", "right", "top"} and body["photo_size"] == [64, 64]
    assert any(name.startswith("heatmap") for name in body["images"])


@pytest.mark.parametrize("content, status, words", [
    (b"", 400, "empty"),
    (b"this is not an image at all", 415, "not an image"),
    (png(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))[:2000], 400,
     "damaged"),  # a truncated PNG: the header reads, the body does not
    (b"x" * 200_001, 413, "MB"),
    (png(Image.new("L", (2000, 1000))), 413, "pixels"),  # 2 megapixels against a limit of 1
])
def test_bad_uploads_are_refused_with_a_clear_reason(client, content, status, words):
    answer = client.post("/api/predict", files={"file": ("upload.png", content)})
    assert answer.status_code == status and words in answer.json()["detail"]


def test_a_decompression_bomb_is_refused_before_it_is_decoded(client):
    bomb = png(Image.new("1", (12_000, 12_000)))  # a few kB that would decode to 144 megapixels
    assert len(bomb) < 200_000
    answer = client.post("/api/predict", files={"file": ("bomb.png", bomb)})
    assert answer.status_code == 413 and "pixels" in answer.json()["detail"]


@pytest.mark.parametrize("path", ["/runs/..%2F..%2Fetc/report", "/runs/%2Fetc%2Fpasswd/report",
                                  "/runs/x/train-image/-1", "/runs/{run}/train-image/99999",
                                  "/runs/{run}/train-image/..%2F..%2Fconfig.json"])
def test_no_path_from_a_request_reaches_the_file_system(client, trained_run, path):
    answer = client.get(path.format(run=trained_run.name))
    assert answer.status_code in (404, 422)
    assert "root:" not in answer.text and "record_version" not in answer.text


def test_an_unknown_run_is_named(client, sample):
    answer = client.post("/api/predict?run=nope", files={"file": ("x.png", sample.read_bytes())})
    assert answer.status_code == 404 and "nope" in answer.json()["detail"]


def test_concurrent_requests_queue_for_one_model(sample, trained_run):
    from concurrent.futures import ThreadPoolExecutor

    client = TestClient(create_app([trained_run], Limits(queue=7)))  # one at work and 7 waiting: all 8 clients
    data = sample.read_bytes()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.post("/api/predict", files={"file": ("x.png", data)}), range(32)))
    assert all(a.status_code == 200 for a in answers)
    assert len({a.json()["label"] for a in answers}) == 1


def test_the_page_and_the_report_are_served(client, trained_run):
    page = client.get("/")
    assert page.status_code == 200 and "/api/answer" in page.text and "http" not in page.text.split("<script>")[0]
    assert client.get(f"/runs/{trained_run.name}/report").text.startswith("<!DOCTYPE html>")
    one = client.get("/compare")  # one run: nothing to compare, said on a page (a link opens it), not as raw JSON
    assert one.status_code == 409 and one.headers["content-type"].startswith("text/html")
    assert "two runs" in one.text and not one.text.startswith("{")


def test_the_favicon_is_answered_so_no_page_meets_a_404(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(icon.content)).size == (32, 32)
    assert '<link rel="icon" href="/favicon.ico">' in client.get("/").text


def photo(width: int = 500, height: int = 333) -> bytes:
    """An ordinary photo's size (a bee in a meadow): many times the 16 px input of the scratch run."""
    pixels = np.random.default_rng(3).integers(0, 255, (height, width, 3), dtype=np.uint8)
    return png(Image.fromarray(pixels), "JPEG")


def test_a_photo_is_classified_not_scanned_by_a_run_trained_on_whole_images(client, trained_run):
    summary = client.get("/api/runs").json()[0]
    assert summary["input"] == [16, 16] and summary["scan"]["available"] and not summary["scan"]["offered"]
    answer = client.post("/api/answer", files={"file": ("bee.jpg", photo(), "image/jpeg")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["kind"] == "prediction" and body["label"] in ("left", "right", "top")
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-4) and "counts" not in body
    ticked = client.post("/api/answer?scan=true", files={"file": ("bee.jpg", photo(), "image/jpeg")}).json()
    assert ticked["kind"] == "scan" and ticked["photo_size"] == [333, 500]  # the user may still tick the scan


def test_a_run_trained_on_patches_still_offers_the_scan(patch_run, trained_run):
    client = TestClient(create_app([trained_run, patch_run]))
    runs = {r["id"]: r for r in client.get("/api/runs").json()}
    offer = runs[patch_run.name]["scan"]
    assert offer["offered"] and "`cnnkit patches`" in offer["reason"]
    files = {"file": ("scene.jpg", photo(), "image/jpeg")}
    scanned = client.post(f"/api/answer?run={patch_run.name}", files=files).json()
    assert scanned["kind"] == "scan" and set(scanned["counts"]) <= {"ground", "seal"}
    assert scanned["photo_size"] == [333, 500] and any(name.startswith("heatmap") for name in scanned["images"])
    unticked = client.post(f"/api/answer?run={patch_run.name}&scan=false", files=files).json()
    assert unticked["kind"] == "prediction" and unticked["label"] in ("ground", "seal")
    small = client.post(f"/api/answer?run={patch_run.name}", files={"file": ("p.png", photo(40, 40))}).json()
    assert small["kind"] == "prediction"  # not 4 windows wide: one window is classified


def scored_copy(run: Path, out: Path, test: float | None, val: float | None = None) -> Path:
    """A copy of ``run`` whose test accuracy (None: no test split, as when `val/` chose the weights) and validation
    accuracy are set."""
    import json

    shutil.copytree(run, out, ignore=shutil.ignore_patterns("checkpoints", "logs", "index", "export"))
    metrics = out / "metrics.json"
    if test is None:
        metrics.unlink()
        (out / "report.html").unlink()
    else:
        metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "accuracy": test}))
    if val is not None:
        record = json.loads((out / "config.json").read_text())
        record["result"]["best_val_acc"] = val
        (out / "config.json").write_text(json.dumps(record))
    return out


def test_the_page_and_the_api_open_on_the_best_run(trained_run, sample, tmp_path):
    runs = [scored_copy(trained_run, tmp_path / "no-test", None, val=0.99),
            scored_copy(trained_run, tmp_path / "weaker", 0.5), scored_copy(trained_run, tmp_path / "best", 0.9)]
    client = TestClient(create_app(runs))
    listed = client.get("/api/runs").json()
    assert [r["id"] for r in listed if r["default"]] == ["best"] and "test accuracy" in listed[2]["default_reason"]
    answer = client.post("/api/predict", files={"file": ("x.png", sample.read_bytes())})  # no run named
    assert answer.json()["run"] == "best"
    unscored = TestClient(create_app(runs[:1] + [scored_copy(trained_run, tmp_path / "val-best", None, val=1.0)]))
    assert [r["id"] for r in unscored.get("/api/runs").json() if r["default"]] == ["val-best"]


def test_compare_shows_a_page_with_working_report_links_or_says_why_not(trained_run, tmp_path):
    untested = scored_copy(trained_run, tmp_path / "untested", None)
    client = TestClient(create_app([trained_run, untested]))
    status = client.get("/api/compare").json()
    assert not status["comparable"] and "untested has no test score" in status["note"]
    page = client.get("/compare")
    assert page.headers["content-type"].startswith("text/html") and "untested has no test score" in page.text
    assert not client.get("/api/runs").json()[1]["report"]
    twin = scored_copy(trained_run, tmp_path / "twin", 0.5)  # the same test images: comparable
    client = TestClient(create_app([trained_run, twin, untested]))
    assert client.get("/api/compare").json() == {"comparable": True, "note": "Left out, with no test score: untested."}
    page = client.get("/compare")
    assert page.status_code == 200 and "Left out" in page.text and "file:" not in page.text
    links = re.findall(r'href="([^"]+)"', page.text)
    assert links == [f"/runs/{trained_run.name}/report", "/runs/twin/report"]
    assert all(client.get(link).text.startswith("<!DOCTYPE html>") for link in links)


def _browser() -> str | None:
    return next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)


@pytest.mark.slow
def test_a_real_browser_uploads_images_and_sees_predictions_without_an_error(trained_run, augmented_run, sample,
                                                                              tmp_path):
    """Two runs (the first given without a test score): the page opens on the scored one, classifies an ordinary
    photo (no scan), shows the prediction and neighbours, says why the runs cannot be compared, and its report link
    opens the report; no console error, no failed request, no answer of 400 or more on the way."""
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    browser_path = _browser()
    if browser_path is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium)")
    (tmp_path / "bee.jpg").write_bytes(photo())
    port = free_port()
    server = warm_cli.start("serve", str(augmented_run), str(trained_run), "--port", str(port))
    problems: list[str] = []
    try:
        wait_for_port(port, server)
        expected = Predictor.load(trained_run).predict([sample])[0].label
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
            page = browser.new_page()
            page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
            page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#run option", state="attached")
            assert page.input_value("#run") == trained_run.name  # the best run, though given second
            assert not page.is_checked("#scan") and "whole images" in page.inner_text("#scan-why")
            page.wait_for_function("document.getElementById('compare-why').textContent.length > 0")
            assert page.is_hidden("#compare") and "no test score" in page.inner_text("#compare-why")
            page.set_input_files("#files", str(tmp_path / "bee.jpg"))
            page.wait_for_selector(".card .label", timeout=30_000)
            assert page.inner_text(".card .label") in ("left", "right", "top")  # classified, not "Counts"
            page.set_input_files("#files", str(sample))
            page.wait_for_function("document.querySelectorAll('.card .label').length == 2", timeout=30_000)
            assert page.inner_text(".card:first-child .label") == expected
            page.wait_for_selector(".card:first-child .neighbours img", timeout=30_000)
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            with page.expect_navigation():
                page.click("#report")
            assert page.url.endswith(f"/runs/{trained_run.name}/report") and page.locator("img").count() > 0
            browser.close()
        assert np.asarray(Image.open(tmp_path / "page.png")).std() > 0
        assert not problems, problems
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_each_model_loads_once_however_many_requests(trained_run, sample, monkeypatch):
    from cnnkit.inference import base

    loads = []
    original = base.Predictor.load.__func__
    monkeypatch.setattr(base.Predictor, "load", classmethod(lambda cls, *a, **k: loads.append(a) or
                                                            original(cls, *a, **k)))
    client = TestClient(create_app([trained_run]))
    for _ in range(5):
        assert client.post("/api/predict", files={"file": ("x.png", sample.read_bytes())}).status_code == 200
    assert len(loads) == 1


def test_test_time_augmentation_where_the_run_allows_it(augmented_run, trained_run, sample):
    client = TestClient(create_app([augmented_run, trained_run]))
    runs = {r["id"]: r for r in client.get("/api/runs").json()}
    assert runs[augmented_run.name]["tta"] and not runs[trained_run.name]["tta"]
    files = {"file": ("x.png", sample.read_bytes())}
    answer = client.post(f"/api/predict?run={augmented_run.name}&tta=4", files=files)
    assert answer.status_code == 200 and answer.json()["tta"] == 4
    refused = client.post(f"/api/predict?run={trained_run.name}&tta=4", files=files)
    assert refused.status_code == 400 and "augmentation" in refused.json()["detail"]


def test_listening_beyond_this_machine_is_said(trained_run, monkeypatch, capsys):
    import cnnkit.serve.server
    from cnnkit.cli import main

    calls = []
    monkeypatch.setattr(cnnkit.serve.server, "serve", lambda app, host, port, grace: calls.append((host, port)))
    assert main(["serve", str(trained_run), "--host", "0.0.0.0", "--port", "8123"]) == 0
    captured = capsys.readouterr()
    assert calls == [("0.0.0.0", 8123)] and "http://0.0.0.0:8123/" in captured.out
    assert "anyone who reaches this machine" in captured.err
    assert main(["serve", str(trained_run)]) == 0 and calls[-1] == ("127.0.0.1", 8000)
    assert "anyone" not in capsys.readouterr().err
