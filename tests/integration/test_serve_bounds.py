"""`cnnkit serve` bounds the work a request makes, on a real server over loopback: a scan whose client disconnects
stops between tiles and a prediction on the same run is answered meanwhile; a scan past its deadline stops (504);
a photo over the scan's pixel budget is refused from its header (413); a body over the limit is refused by its
Content-Length before it is read; SIGTERM during a scan ends the process within seconds."""

from __future__ import annotations

import io
import signal
import socket
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="cnnkit[serve] is not installed")
import httpx
from fastapi.testclient import TestClient

from cnnkit.serve.app import create_app
from cnnkit.serve.limits import Limits
from tests import warm_cli
from tests.unit.servers import free_port, listening

SIDE = 4000  # a 16-megapixel photo: at least (4000 / 512)^2 = 64 tiles of 512 pixels for the patch run's scan
TILES_AT_LEAST = 64
WAIT = 60  # seconds: a bound on waiting for what should happen in one, never a timing assertion


def png_of(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def large_photo() -> bytes:
    """A 4000x4000 aerial-like photo, dark ground with a few bright dots: a PNG of some kB, 16 megapixels."""
    pixels = np.full((SIDE, SIDE, 3), 30, np.uint8)
    for row in range(100, SIDE, 400):
        for col in range(100, SIDE, 400):
            pixels[row - 3:row + 4, col - 3:col + 4] = (230, 200, 40)
    return png_of(pixels)


def multipart(data: bytes, name: str = "big.png") -> tuple[bytes, str]:
    boundary = "cnnkit-test-boundary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post_raw(port: int, path: str, data: bytes) -> socket.socket:
    """A request sent whole on a socket of our own, its answer not read: closing the socket is the client leaving."""
    body, content_type = multipart(data)
    connection = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    connection.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return connection


def answer_of(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (each refusal here closes it)."""
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@contextmanager
def running(app):
    """``app`` served by uvicorn in a thread of this process, on a free loopback port."""
    import uvicorn

    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    until(lambda: server.started, "the server to start")
    try:
        yield listening.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(WAIT)
        listening.close()


def until(condition, what: str):
    """Wait for ``condition()`` to hold (polling), at most WAIT seconds; its value."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"waited {WAIT} s for {what}")


def scan_lane(port: int, run: str) -> dict | None:
    return httpx.get(f"http://127.0.0.1:{port}/api/load", timeout=WAIT).json()["runs"].get(run, {}).get("scan")


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_a_scan_whose_client_disconnects_stops_and_the_run_still_predicts(patch_run, large_photo, pattern_data):
    app = create_app([patch_run], Limits(max_scan_pixels=SIDE * SIDE, deadline=WAIT, queue=0))
    run = patch_run.name
    with running(app) as port:
        scanning = post_raw(port, f"/api/scan?run={run}", large_photo)
        until(lambda: (scan_lane(port, run) or {}).get("steps", 0) >= 2, "the scan to reach its second tile")
        url = f"http://127.0.0.1:{port}"
        second = httpx.post(f"{url}/api/scan?run={run}", files={"file": ("b.png", large_photo)}, timeout=WAIT)
        assert second.status_code == 503 and int(second.headers["Retry-After"]) >= 1
        assert "busy" in second.json()["detail"] and "`queue` 0" in second.json()["detail"]
        sample = sorted((pattern_data / "left").glob("*.png"))[0].read_bytes()
        prediction = httpx.post(f"{url}/api/predict?run={run}", files={"file": ("x.png", sample)}, timeout=WAIT)
        assert prediction.status_code == 200 and prediction.json()["label"] in ("ground", "seal")  # during the scan

        scanning.close()  # the client gives up
        lane = until(lambda: (lambda lane: lane if not lane["at_work"] else None)(scan_lane(port, run)),
                     "the scan's work to end")
        time.sleep(1.0)
        assert scan_lane(port, run)["steps"] == lane["steps"] < TILES_AT_LEAST  # stopped, long before its end
        assert lane["stopped"] == {"disconnected": 1} and lane["answered"] == 0 and lane["refused"] == 1
        again = httpx.post(f"{url}/api/predict?run={run}", files={"file": ("x.png", sample)}, timeout=WAIT)
        assert again.status_code == 200


def test_a_scan_past_its_deadline_stops_with_504_and_the_run_answers_after(patch_run, large_photo, pattern_data):
    client = TestClient(create_app([patch_run], Limits(max_scan_pixels=SIDE * SIDE, deadline=1.0)))
    run = patch_run.name
    answer = client.post(f"/api/scan?run={run}", files={"file": ("big.png", large_photo)})
    assert answer.status_code == 504, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith("the scan of big.png (4000x4000 pixels) stopped at its deadline, 1 s (`deadline`)")
    lane = client.get("/api/load").json()["runs"][run]["scan"]
    assert lane["stopped"] == {"deadline": 1} and lane["steps"] < TILES_AT_LEAST
    sample = sorted((pattern_data / "left").glob("*.png"))[0].read_bytes()
    assert client.post(f"/api/predict?run={run}", files={"file": ("x.png", sample)}).status_code == 200


def test_a_photo_over_the_scan_budget_is_refused_naming_the_limit_and_its_size(patch_run, monkeypatch):
    client = TestClient(create_app([patch_run]))  # the default budget, 25 megapixels
    huge = png_of(np.full((7000, 7000, 3), 30, np.uint8))  # the 7000x7000 PNG that kept a server busy 249 s
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self.size))
    for path in (f"/api/scan?run={patch_run.name}", f"/api/answer?run={patch_run.name}"):
        answer = client.post(path, files={"file": ("huge.png", huge)})
        assert answer.status_code == 413
        assert answer.json()["detail"] == (
            "huge.png: 7000x7000 pixels (49,000,000) is more than the 25,000,000 a scan takes here "
            "(`max_scan_pixels`); scan a part of it, or the whole photo with `cnnkit scan`, which has no such limit.")
    assert decoded == []  # refused from the header


@pytest.mark.slow
def test_sigterm_during_a_scan_ends_the_server_within_seconds(patch_run, large_photo, capsys):
    """A real `cnnkit serve` process, a real scan at work, a real SIGTERM: the scan's client is answered 503 (the
    server is stopping) and the process exits 143 within 2 s of grace and a tile or so (the bound below is a
    generous one for a loaded machine; the time measured is printed)."""
    port = free_port()
    server = warm_cli.start("serve", str(patch_run), "--port", str(port), "--max-scan-pixels", str(SIDE * SIDE),
                            "--max-upload-mb", "1")
    try:
        until(lambda: server.poll() is not None or listening(port), "the server to listen")
        scanning = post_raw(port, f"/api/scan?run={patch_run.name}", large_photo)
        until(lambda: (scan_lane(port, patch_run.name) or {}).get("steps", 0) >= 2, "the scan's second tile")

        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as oversized:  # headers only, no body
            oversized.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                              b"boundary=x\r\nContent-Length: 60000000\r\n\r\n")
            refused = answer_of(oversized)
        assert refused.startswith(b"HTTP/1.1 413") and b"refused before it was read" in refused

        began = time.monotonic()
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=15)
        took = time.monotonic() - began
        scanned = answer_of(scanning)
        with capsys.disabled():
            print(f"\n`cnnkit serve` exited {took:.2f} s after SIGTERM, a scan at work")
        assert code == 143 and took < 15
        assert scanned.startswith(b"HTTP/1.1 503") and b"the server is stopping" in scanned
    finally:
        if server.poll() is None:
            server.kill()
        server.communicate()


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_requests_over_max_requests_are_refused_503_by_a_real_server_and_answered_once_others_end(
        patch_run, pattern_data):
    """`cnnkit serve --max-requests 2`, a real process: two uploads that arrive slowly (their headers sent, a few
    bytes of their bodies) hold both; a prediction on another connection is answered 503 with Retry-After and the
    option's name at once, and once the two clients leave, it is answered."""
    port = free_port()
    server = warm_cli.start("serve", str(patch_run), "--port", str(port), "--max-requests", "2")
    url = f"http://127.0.0.1:{port}"
    sample = min((pattern_data / "left").glob("*.png")).read_bytes()
    slow = []
    try:
        until(lambda: server.poll() is not None or listening(port), "the server to listen")
        for _ in range(2):
            slow.append(socket.create_connection(("127.0.0.1", port), timeout=WAIT))
            slow[-1].sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                             b"boundary=x\r\nContent-Length: 100000\r\n\r\n--x\r\n")
        until(lambda: httpx.get(f"{url}/api/load", timeout=WAIT).status_code == 503, "both uploads to be taken")
        refused = httpx.post(f"{url}/api/predict", files={"file": ("x.png", sample)}, timeout=WAIT)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        assert refused.json()["detail"] == ("The server is answering 2 requests, the most it takes at once "
                                            "(`max_requests` 2); try again in a moment.")
        for connection in slow:
            connection.close()  # the slow clients leave
        def answered() -> dict | None:
            answer = httpx.post(f"{url}/api/predict", files={"file": ("x.png", sample)}, timeout=WAIT)
            return answer.json() if answer.status_code == 200 else None

        assert until(answered, "an answer")["label"] in ("ground", "seal")
        assert httpx.get(f"{url}/api/load", timeout=WAIT).json()["requests"]["refused"] >= 2
    finally:
        for connection in slow:
            connection.close()
        server.terminate()
        server.communicate(timeout=WAIT)

