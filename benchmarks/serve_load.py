"""A bounded load test of `cnnkit serve` on loopback: 8 concurrent clients send 400 predictions of one 500x375 JPEG
to an EfficientNet-Lite0 run (transfer on hymenoptera), against the same predictions made in-process one by one.

    python benchmarks/serve_load.py --hymenoptera ../shared/data/hymenoptera --out /tmp/cnnkit-serve

Reported: requests per second, p50 and p95 latency, errors, the server's RSS after the warm-up and at the end
(sampled every 0.2 s: flat or growing), and the server's throughput as a share of the in-process one (its
overhead: HTTP, multipart, decoding the upload, queueing for the model).

Data, not in this repository: hymenoptera, the ants-and-bees set of PyTorch's transfer-learning tutorial
(https://download.pytorch.org/tutorial/hymenoptera_data.zip, unzipped: train/ and val/), by default in
../shared/data/hymenoptera. Without it the script says so in one line and exits 0.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from _data import HYMENOPTERA
from _results import add_option, command_line, record

COLUMNS = [{"key": "requests", "label": "requests"}, {"key": "errors", "label": "errors"},
           {"key": "requests_per_s", "label": "requests/s"}, {"key": "p50_ms", "label": "p50 (ms)"},
           {"key": "p95_ms", "label": "p95 (ms)"}, {"key": "in_process_per_s", "label": "in-process predictions/s"},
           {"key": "server_share_of_in_process", "label": "server / in-process", "format": "{:.2f}"},
           {"key": "rss_mb", "label": "server RSS after warm-up / peak / end (MB)",
            "format": "{after_warmup} / {peak} / {end}"}]


def tables(measured: dict) -> list[dict]:
    """The results file's table: the one row of a load test."""
    row = {c["key"]: measured[c["key"]] for c in COLUMNS if c["key"] in measured}
    row["rss_mb"] = {"after_warmup": measured["rss_mb_after_warmup"], "peak": measured["rss_mb_peak"],
                     "end": measured["rss_mb_end"]}
    return [{"id": "load", "columns": COLUMNS, "rows": [row]}]


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hymenoptera", type=Path, default=HYMENOPTERA.default)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-serve"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400)
    add_option(parser, "serve_load")
    args = parser.parse_args()
    if HYMENOPTERA.missing(args.hymenoptera, "--hymenoptera"):
        return
    import httpx

    run = args.out / "lite0"
    if not (run / "model.safetensors").exists():
        subprocess.run([sys.executable, "-m", "cnnkit.cli", "-q", "train", str(args.hymenoptera), "--model",
                        "efficientnet_lite0", "--pretrained", "--skip-bad", "--no-progress", "--out", str(run)],
                       check=True, stdout=subprocess.DEVNULL)
    photo = sorted((args.hymenoptera / "val" / "bees").glob("*.jpg"))[0]
    buffer = io.BytesIO()
    Image.open(photo).convert("RGB").resize((500, 375)).save(buffer, "JPEG", quality=90)
    jpeg = buffer.getvalue()

    from cnnkit.inference import Predictor

    predictor = Predictor.load(run)
    image = Image.open(io.BytesIO(jpeg))
    predictor.predict([image])
    start = time.perf_counter()
    for _ in range(args.requests // 4):
        predictor.predict([Image.open(io.BytesIO(jpeg))])
    in_process = (args.requests // 4) / (time.perf_counter() - start)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "cnnkit.cli", "serve", str(run), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/api/predict"
        for _ in range(300):
            try:
                httpx.post(url, files={"file": ("bee.jpg", jpeg, "image/jpeg")}, timeout=60).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        memory, done = [rss_mb(server.pid)], threading.Event()

        def sample():
            while not done.is_set():
                memory.append(rss_mb(server.pid))
                time.sleep(0.2)

        def one(_) -> tuple[float, bool]:
            began = time.perf_counter()
            try:
                answer = httpx.post(url, files={"file": ("bee.jpg", jpeg, "image/jpeg")}, timeout=120)
                return time.perf_counter() - began, answer.status_code == 200
            except httpx.HTTPError:
                return time.perf_counter() - began, False

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(one, range(args.requests)))
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies = np.array([r[0] for r in results]) * 1000
    measured = {
        "requests": args.requests, "clients": args.clients, "errors": sum(not ok for _, ok in results),
        "requests_per_s": round(args.requests / wall, 1), "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p95_ms": round(float(np.percentile(latencies, 95)), 1), "in_process_per_s": round(in_process, 1),
        "server_share_of_in_process": round(args.requests / wall / in_process, 2),
        "rss_mb_after_warmup": round(memory[0]), "rss_mb_peak": round(max(memory)), "rss_mb_end": round(memory[-1]),
        "backend": predictor.backend}
    print(json.dumps(measured))
    if args.results:
        record(args.results, "serve_load", tables(measured), command_line(__file__))


if __name__ == "__main__":
    main()
