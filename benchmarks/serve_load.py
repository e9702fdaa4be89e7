"""A bounded load test of `cnnkit serve` on loopback: 20 concurrent clients mix predictions, scans and bad uploads
against a patch classifier's run (patch_cnn trained on the sea-lion patches), a fixed number of requests within a
fixed time, the server at its default limits.

    python benchmarks/serve_load.py --sealions ../shared/data/sealions --out /tmp/cnnkit-serve

Requests, in a fixed order that repeats every ten: seven predictions of a 96x96 test patch, a scan of a 640x480
crop of scenes/5.jpg, two bad uploads in turn (text that is no image: 415; a truncated PNG: 400; a decompression
bomb of 20000x20000 pixels in 49 kB: 413; a 7000x7000 photo sent to scan, over the scan's pixel budget: 413; a
Content-Length of 60 MB with no body: 413). Each client takes the next request until all are sent or the time is
up.

Reported per kind and overall: requests, answers by status, errors (what a request of its kind should never get: a
500, a dropped connection, a bad upload answered anything but its refusal), p50 and p99 latency; the server's RSS
after the warm-up, at its peak and at the end (sampled every 0.2 s). A 503 (the run's queue is full, or its model was
busy for the whole deadline) or a 504 (the deadline passed) is a bound at work, counted apart from the errors.

Data, not in this repository: the sea-lion data, cut from NOAA Fisheries' Steller sea lion count (Kaggle, 2017:
https://www.kaggle.com/c/noaa-fisheries-steller-sea-lion-population-count) by a public demo of patch-wise CNNs:
96x96 patches/{train,val,test}/CLASS/ and scenes/5.jpg, by default in ../shared/data/sealions (see
../shared/data/README.md). Without it the script says so in one line and exits 0.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from _data import SEALIONS
from _results import add_option, command_line, record

COLUMNS = [{"key": "clients", "label": "clients"}, {"key": "requests", "label": "requests"},
           {"key": "seconds", "label": "seconds"}, {"key": "requests_per_s", "label": "requests/s"},
           {"key": "errors", "label": "errors"}, {"key": "bounded", "label": "503 / 504 (bounds at work)"},
           {"key": "p50_ms", "label": "p50 (ms)"}, {"key": "p99_ms", "label": "p99 (ms)"},
           {"key": "rss_mb", "label": "server RSS after warm-up / peak / end (MB)",
            "format": "{after_warmup} / {peak} / {end}"}]
KIND_COLUMNS = [{"key": "kind", "label": "request"}, {"key": "requests", "label": "requests"},
                {"key": "answers", "label": "answers (status: count)"}, {"key": "errors", "label": "errors"},
                {"key": "p50_ms", "label": "p50 of its answers (ms)"}, {"key": "p99_ms", "label": "p99 (ms)"}]
EXPECTED = {"prediction": {200}, "scan": {200}, "not an image": {415}, "truncated PNG": {400},
            "decompression bomb": {413}, "over the scan budget": {413}, "60 MB declared": {413}}
BOUNDS = {503, 504}  # a full queue, a model busy for the whole deadline, a deadline passed: answered, not errors
ORDER = ["prediction"] * 7 + ["scan"] + ["bad", "bad"]
BAD = ["not an image", "truncated PNG", "decompression bomb", "over the scan budget", "60 MB declared"]


def tables(measured: dict) -> list[dict]:
    """The results file's tables: the whole load test in one row, and a row per kind of request."""
    row = {c["key"]: measured[c["key"]] for c in COLUMNS if c["key"] in measured}
    row["rss_mb"] = {"after_warmup": measured["rss_mb_after_warmup"], "peak": measured["rss_mb_peak"],
                     "end": measured["rss_mb_end"]}
    return [{"id": "load", "columns": COLUMNS, "rows": [row]},
            {"id": "by_kind", "columns": KIND_COLUMNS, "rows": measured["kinds"]}]


def rss_mb(pid: int) -> float:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:  # the server has exited
        pass
    return 0.0


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def uploads(sealions: Path) -> dict[str, list[bytes]]:
    """The bodies each kind of request sends (a list: sent in turn)."""
    patches = sorted((sealions / "patches" / "test").glob("*/*.png"))[::5][:20]
    scene = Image.open(sealions / "scenes" / "5.jpg").convert("RGB")
    crops = [scene.crop((left, top, left + 640, top + 480)) for left, top in ((0, 0), (1800, 1200), (3900, 2500))]
    whole = encoded(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)), "PNG")
    return {"prediction": [p.read_bytes() for p in patches],
            "scan": [encoded(crop, "JPEG", quality=90) for crop in crops],
            "not an image": [b"a text file, whatever its name says\n" * 40], "truncated PNG": [whole[:len(whole) // 3]],
            "decompression bomb": [encoded(Image.new("1", (20_000, 20_000)), "PNG")],
            "over the scan budget": [encoded(Image.new("RGB", (7000, 7000), (90, 90, 80)), "PNG")]}


def declared_only(port: int) -> int:
    """A POST that declares 60 MB and sends none of it: the status of the answer (the server must not wait)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                           b"boundary=x\r\nContent-Length: 60000000\r\n\r\n")
        return int(connection.recv(4096).split(b" ", 2)[1])


def requests_in_order(count: int) -> list[tuple[str, int]]:
    """(kind, its number among its kind) for ``count`` requests, in the fixed order."""
    bad, seen, out = itertools.cycle(BAD), Counter(), []
    for kind in itertools.islice(itertools.cycle(ORDER), count):
        kind = next(bad) if kind == "bad" else kind
        out.append((kind, seen[kind]))
        seen[kind] += 1
    return out


def send(client, port: int, run: str, bodies: dict, kind: str, number: int) -> int:
    """One request of ``kind``: its status (0 for a dropped connection)."""
    if kind == "60 MB declared":
        return declared_only(port)
    path = "scan" if kind in ("scan", "over the scan budget") else "predict"
    data = bodies[kind][number % len(bodies[kind])]
    answer = client.post(f"http://127.0.0.1:{port}/api/{path}?run={run}", files={"file": ("upload", data)},
                         timeout=180)
    return answer.status_code


def load(port: int, run: str, bodies: dict, count: int, clients: int, seconds: float) -> tuple[list, float]:
    """``count`` requests from ``clients`` threads, none sent after ``seconds``: (kind, status, seconds) each."""
    import httpx

    todo, lock, results = iter(requests_in_order(count)), threading.Lock(), []
    ends = time.monotonic() + seconds

    def client(_) -> None:
        with httpx.Client() as http:
            while time.monotonic() < ends:
                with lock:
                    kind, number = next(todo, (None, 0))
                if kind is None:
                    return
                began = time.perf_counter()
                try:
                    status = send(http, port, run, bodies, kind, number)
                except (httpx.HTTPError, OSError):
                    status = 0
                results.append((kind, status, time.perf_counter() - began))

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return results, time.perf_counter() - began


def summary(results: list, kinds: list[str], answered_only: bool = False) -> dict:
    """Requests, answers by status, errors and latency of ``results`` whose kind is in ``kinds`` (the latency of
    the expected answers alone with ``answered_only``: a scan's, not the quick 503 of one refused)."""
    mine = [(kind, status, took) for kind, status, took in results if kind in kinds]
    timed = [took for kind, status, took in mine if not answered_only or status in EXPECTED[kind]]
    latencies = np.array(timed) * 1000
    statuses = Counter(status for _, status, _ in mine)
    errors = sum(status not in EXPECTED[kind] | BOUNDS for kind, status, _ in mine)
    return {"requests": len(mine), "answers": ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())),
            "errors": errors, "bounded": sum(statuses[s] for s in BOUNDS),
            "p50_ms": round(float(np.percentile(latencies, 50)), 1) if timed else None,
            "p99_ms": round(float(np.percentile(latencies, 99)), 1) if timed else None}


def trained(sealions: Path, out: Path) -> Path:
    """The patch classifier served: patch_cnn on the 96x96 sea-lion patches, trained once into ``out``."""
    run = out / "sealion-patches"
    if not (run / "model.safetensors").exists():
        subprocess.run([sys.executable, "-m", "cnnkit.cli", "-q", "train", str(sealions / "patches"), "--model",
                        "patch_cnn", "--image-size", "96", "--epochs", "15", "--augment", "flip=hv,rotate=180",
                        "--no-progress", "--out", str(run)], check=True, stdout=subprocess.DEVNULL)
    return run


def serving(run: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "cnnkit.cli", "serve", str(run), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for _ in range(600):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return server
        if server.poll() is not None:
            raise SystemExit(f"cnnkit serve exited: {server.stderr.read()}")
        time.sleep(0.2)
    raise SystemExit("cnnkit serve did not listen within 120 s")


def measure(args, run: Path, bodies: dict) -> dict:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = serving(run, port)
    try:
        with httpx.Client() as warm:  # each model loaded, each kind of request made once
            for kind in ("prediction", "scan"):
                send(warm, port, run.name, bodies, kind, 0)
        memory, done = [rss_mb(server.pid)], threading.Event()

        def sample() -> None:
            while not done.wait(0.2):
                memory.append(rss_mb(server.pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        results, wall = load(port, run.name, bodies, args.requests, args.clients, args.seconds)
        done.set()
        sampler.join()
        memory.append(rss_mb(server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
    overall = summary(results, list(EXPECTED))
    kinds = [{"kind": kind, **{k: v for k, v in summary(results, [kind], answered_only=True).items()
                               if k != "bounded"}} for kind in EXPECTED]
    return {"clients": args.clients, **{k: overall[k] for k in ("requests", "errors", "bounded", "p50_ms", "p99_ms")},
            "seconds": round(wall, 1), "requests_per_s": round(len(results) / wall, 1),
            "rss_mb_after_warmup": round(memory[0]), "rss_mb_peak": round(max(memory)),
            "rss_mb_end": round(memory[-1]), "kinds": kinds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sealions", type=Path, default=SEALIONS.default)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-serve"))
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=300, help="requests in all (a fixed count)")
    parser.add_argument("--seconds", type=float, default=120.0, help="no request is sent after this long")
    add_option(parser, "serve_load")
    args = parser.parse_args()
    if SEALIONS.missing(args.sealions, "--sealions", ("patches/test", "patches/train", "scenes/5.jpg")):
        return
    run = trained(args.sealions, args.out)
    measured = measure(args, run, uploads(args.sealions))
    print(json.dumps(measured))
    if args.results:
        record(args.results, "serve_load", tables(measured), command_line(__file__))


if __name__ == "__main__":
    main()
