"""``cnnkit label`` as a process: killed, it loses no label; in a real headless Chromium (skipped, saying why, where
none is installed), three images labelled by keyboard are in the CSV, skip and undo work by key, and "learn again"
trains a new run whose guesses the page then shows."""

from __future__ import annotations

import csv
import shutil
import subprocess

import numpy as np
import pytest

from tests import warm_cli
from tests.conftest import pattern_image
from tests.unit.servers import free_port, post, wait_for_port

pytest.importorskip("fastapi", reason="cnnkit[serve] is not installed")


def _browser() -> str | None:
    return next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)


@pytest.mark.slow
def test_labels_given_by_key_reach_the_csv_and_learning_again_makes_a_run(trained_run, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    browser_path = _browser()
    if browser_path is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium)")
    rng = np.random.default_rng(3)
    pool = tmp_path / "pool"
    pool.mkdir()
    for i in range(5):
        pattern_image(i % 3, rng).save(pool / f"image{i}.png")
    run = tmp_path / "runs" / "first"
    shutil.copytree(trained_run, run)  # learning again writes first-learn1 beside it
    labels, port = tmp_path / "labels.csv", free_port()
    server = warm_cli.start("label", str(pool), "--run", str(run), "--labels", str(labels), "--order", "file", "--port",
                            str(port))
    problems: list[str] = []
    try:
        wait_for_port(port, server)
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
            page = browser.new_page()
            page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))
            page.goto(f"http://127.0.0.1:{port}/")

            def shown(text: str) -> None:
                # the whole text: "3 labelled of 5, 1 skipped" starts with "3 labelled of 5" before an undo's answer
                page.wait_for_function(f"document.getElementById('progress').textContent === {text!r}")

            shown("0 labelled of 5")
            page.wait_for_function("document.getElementById('image').naturalWidth > 0")
            for key, done in (("1", 1), ("2", 2), ("3", 3)):
                page.keyboard.press(key)
                shown(f"{done} labelled of 5")
            page.keyboard.press("s")
            shown("3 labelled of 5, 1 skipped")
            assert page.inner_text("#path") == "image4.png"
            page.keyboard.press("u")
            shown("3 labelled of 5")
            assert page.inner_text("#path") == "image3.png"
            page.keyboard.press("Backspace")  # the label of image2 taken back
            shown("2 labelled of 5")
            page.keyboard.press("3")
            shown("3 labelled of 5")
            with open(labels, newline="", encoding="utf-8") as f:
                assert {r["path"]: r["label"] for r in csv.DictReader(f)} == {
                    "pool/image0.png": "left", "pool/image1.png": "right", "pool/image2.png": "top"}
            assert "cnnkit train" in page.inner_text("#learn-command")
            page.click("#learn")
            page.wait_for_function("document.getElementById('learn-state').textContent.startsWith('done')",
                                   timeout=600_000)
            assert "first-learn1" in page.inner_text("#learn-state")
            page.reload()
            shown("3 labelled of 5")  # a reloaded page resumes: what is labelled is not shown again
            assert page.inner_text("#path") == "image3.png"
            browser.close()
        assert (tmp_path / "runs" / "first-learn1" / "config.json").is_file()
        assert not problems, problems
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow  # two servers started in subprocesses, one SIGKILLed
def test_a_killed_labelling_server_loses_no_label_and_resumes(trained_run, tmp_path):
    """SIGKILL, no chance to save anything: the labels given before are in the CSV, and a new server goes on from
    the first image not labelled."""
    rng = np.random.default_rng(4)
    pool = tmp_path / "pool"
    pool.mkdir()
    for i in range(4):
        pattern_image(i % 3, rng).save(pool / f"image{i}.png")
    labels = tmp_path / "labels.csv"

    def start() -> tuple[subprocess.Popen, int]:
        port = free_port()
        server = warm_cli.start("label", str(pool), "--run", str(trained_run), "--labels", str(labels), "--order",
                                "file", "--port", str(port))
        wait_for_port(port, server)
        return server, port

    server, port = start()
    try:
        post(port, "/api/label", {"path": "image0.png", "label": "left"})
        post(port, "/api/label", {"path": "image1.png", "label": "right"})
    finally:
        server.kill()
        server.wait(timeout=30)
    with open(labels, newline="", encoding="utf-8") as f:
        assert {r["path"]: r["label"] for r in csv.DictReader(f)} == {"pool/image0.png": "left",
                                                                     "pool/image1.png": "right"}
    server, port = start()
    try:
        state = post(port, "/api/skip", {"path": "image2.png"})
        assert (state["labelled"], state["total"], state["current"]) == (2, 4, "image3.png")
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_learning_again_as_a_command_trains_a_run_on_the_split_and_the_labels(trained_run, tmp_path):
    rng = np.random.default_rng(6)
    pool = tmp_path / "pool"
    pool.mkdir()
    for i in range(3):
        pattern_image(i, rng).save(pool / f"image{i}.png")
    (tmp_path / "labels.csv").write_text("path,label\npool/image0.png,left\npool/image2.png,top\n", encoding="utf-8")
    run = tmp_path / "runs" / "first"
    shutil.copytree(trained_run, run)
    done = warm_cli.run("label", str(pool), "--run", str(run), "--labels", str(tmp_path / "labels.csv"),
                        "--learn-again", timeout=240)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("cnnkit train ") and "(2 new labels)" in done.stdout
    assert f"Learned again into {tmp_path / 'runs' / 'first-learn1'}" in done.stdout
    from cnnkit.run import RunFolder

    learned = RunFolder(tmp_path / "runs" / "first-learn1")
    train = [file for file, _ in learned.read_split().splits["train"]]
    assert sum(file.endswith(("pool/image0.png", "pool/image2.png")) for file in train) == 2
    assert learned.read_record().training.model == "tiny_cnn"
