"""The dotting page in a real headless Chromium (skipped, saying why, where none is installed): a proposal accepted
by keyboard and a dot added by a click are in the dots CSV, and a move, a rejection and undo by key work. The server
runs in this process over a session with fixed proposals: what is tested is the page, not the detector."""

from __future__ import annotations

import shutil
import threading
import time

import numpy as np
import pytest
from PIL import Image

from cnnkit.data.dots import load_dots
from cnnkit.label.dots import DotsFile
from cnnkit.label.dotting import DotSession, Proposal
from tests.unit.servers import free_port

pytest.importorskip("fastapi", reason="cnnkit[serve] is not installed")

SIZE = (700, 1100)  # rows, columns: two levels of tiles, more than one tile each way


def _browser() -> str | None:
    return next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)


def _serve(app):
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # a server that never starts, not a timing assertion
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return server, thread, port


@pytest.mark.slow  # the browser
def test_a_proposal_accepted_by_key_and_a_dot_added_by_click_reach_the_csv(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    browser_path = _browser()
    if browser_path is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium)")
    from cnnkit.label.dot_app import create_dot_app

    photo, dots = tmp_path / "photo.png", tmp_path / "photo-dots.csv"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (*SIZE, 3), dtype=np.uint8)).save(photo)
    proposals = [Proposal(100.0, 150.0, 0.9), Proposal(600.0, 1000.0, 0.5)]
    session = DotSession([photo], [DotsFile.open(dots, *SIZE)], ["adult", "pup"], lambda *_: list(proposals))
    server, thread, port = _serve(create_dot_app(session))
    problems: list[str] = []
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 800})
            page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))
            page.goto(f"http://127.0.0.1:{port}/")

            def counts(text: str) -> None:
                page.wait_for_function(f"document.getElementById('counts').textContent === {text!r}")

            counts("0 dots, 2 proposals")
            page.keyboard.press("2")  # the class for what comes next: pup
            page.keyboard.press("n")  # the proposal nearest the view's centre
            page.keyboard.press("a")
            counts("1 dots, 1 proposals")
            page.keyboard.press("x")  # the other one, selected after the accept, rejected
            counts("1 dots, 0 proposals")
            box = page.locator("#view").bounding_box()
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # the photo's centre
            counts("2 dots, 0 proposals")
            page.keyboard.press("u")
            counts("1 dots, 0 proposals")
            page.keyboard.press("1")
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            counts("2 dots, 0 proposals")
            browser.close()
        found = load_dots(dots, *SIZE)
        assert found[0] == ("pup", 100.0, 150.0)  # the proposal nearest the view's centre, accepted as a pup
        assert found[1][0] == "adult" and abs(found[1][1] - 350) < 3 and abs(found[1][2] - 550) < 3
        assert session.files[0].rejected == [(600.0, 1000.0)]
        assert not problems, problems
    finally:
        server.should_exit = True
        thread.join(timeout=30)
