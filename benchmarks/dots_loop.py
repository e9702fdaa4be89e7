"""Counting with a person in the loop, simulated: a point detector learned on one dotted photo proposes dots on a new
one, a simulated person confirms or corrects them in one strip, the detector learns again (``cnnkit label --dots``'s
"learn again"), and the rest of the new photo is counted. One photo is all the data here, so its halves play the two
photos (as in ``sealion_points.py``): scenes/5.jpg cut at row 1600, the bottom half (20 animals) the dotted photo, the
top half (27 animals) the new one, written as a photo of its own.

    python benchmarks/dots_loop.py --data ../shared/data/sealions --out /tmp/cnnkit-dots-loop

1. ``cnnkit points 5.jpg --dots 5-dots.csv --region 1600: --patches patches/train`` (every other setting the
   default, as ``sealion_points.py``'s ``points+patches``): the detector of the dotted photo.
2. Its proposals on the new photo (the dotting page's: the run's threshold, 0.3), through the session the page uses.
3. The person, in the strip of the new photo's first rows that holds ``--strip-animals`` animals (default 10; a strip
   of 20, the issue's, would leave 7 of the 27 to count): each proposal matched to a true dot within ``--radius``
   (48 px, one to one) is accepted (one key: its class's digit), moved first (a key and a click) when more than
   ``--move`` px (16) off; each other proposal in the strip rejected (a key); each dot no proposal found added (a
   click); the strip marked reviewed (a key). Clicks and keys are counted as actions.
4. Learn again: ``cnnkit points`` on the dotted half and the strip (cut to the part reviewed), the first detector's
   settings, in a process of its own, as the page runs it.
5. The new detector's proposals on the rest of the new photo (below the strip), against its dots: count error,
   precision and recall (matched within ``--radius``), beside the first detector's on the same rows.

Machine seconds are measured per step (training, scans), the first detector's training apart: it stands for the
dotted photo's detector that already exists (a benchmark stopped while it trained resumes it from its last epoch). Results in ``--out``/results.json and as a table.

Data, not in this repository: the sea-lion data, cut from NOAA Fisheries' Steller sea lion count (Kaggle, 2017:
https://www.kaggle.com/c/noaa-fisheries-steller-sea-lion-population-count) by a public demo of patch-wise CNNs:
96x96 patches/{train,val,test}/CLASS/ and scenes/5.jpg with its dots scenes/5-dots.csv, by default in
../shared/data/sealions (see ../shared/data/README.md). Without it the script says so in one line and exits 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _data import SEALIONS

CUT = 1600  # the halves' border (row)
CNNKIT = [sys.executable, "-m", "cnnkit.cli", "-q"]


def new_photo(args) -> tuple[Path, list]:
    """The top half as a photo of its own, and its true dots."""
    from PIL import Image

    from cnnkit.data.dots import read_dots

    photo = args.out / "new.png"
    if not photo.exists():
        with Image.open(args.data / "scenes" / "5.jpg") as image:
            image.convert("RGB").crop((0, 0, image.width, CUT)).save(photo)
    return photo, [d for d in read_dots(args.data / "scenes" / "5-dots.csv") if d[1] < CUT]


def first_detector(args) -> tuple[Path, float | None]:
    run = args.out / "runs" / "dotted"
    record = run / "config.json"
    status = json.loads(record.read_text())["status"] if record.exists() else None
    if status == "finished":
        return run, None
    start = time.perf_counter()
    if status is not None and (run / "checkpoints").is_dir():  # a benchmark stopped while it trained: go on
        subprocess.run([*CNNKIT, "train", "--resume", run], check=True, stdout=subprocess.DEVNULL)
        return run, time.perf_counter() - start
    subprocess.run([*CNNKIT, "points", args.data / "scenes" / "5.jpg", "--dots", args.data / "scenes" / "5-dots.csv",
                    "--region", f"{CUT}:", "--patches", args.data / "patches" / "train", "--seed", str(args.seed),
                    "--out", run, "--overwrite"], check=True, stdout=subprocess.DEVNULL)
    return run, time.perf_counter() - start


def strip_end(truth: list, animals: int) -> int:
    """The row that closes the strip holding the first ``animals`` animals (half way to the next one)."""
    rows = sorted(r for _, r, _ in truth)
    return int((rows[animals - 1] + rows[animals]) / 2)


def simulate(session, truth: list, end: int, args) -> dict:
    """The person's actions on the strip (rows 0:end) of photo 0; returns how many of each."""
    import math

    from cnnkit.scan.detect import match_within

    shown = [(k, p) for k, p in session.shown(0) if p.row < end]
    inside = [d for d in truth if d[1] < end]
    pairs = dict(match_within([(p.row, p.col) for _, p in shown], [(r, c) for _, r, c in inside], args.radius))
    actions = {"accepted": 0, "moved": 0, "rejected": 0, "added": 0, "reviewed": 1}
    for i, (k, p) in enumerate(shown):
        if i not in pairs:
            session.reject(0, k)
            actions["rejected"] += 1
            continue
        name, row, col = inside[pairs[i]]
        session.accept(0, k, name)
        actions["accepted"] += 1
        if math.hypot(p.row - row, p.col - col) > args.move:
            session.move(0, len(session.files[0].dots) - 1, row, col)
            actions["moved"] += 1
    for j, (name, row, col) in enumerate(inside):
        if j not in pairs.values():
            session.add(0, row, col, name)
            actions["added"] += 1
    session.review(0, (0, end, 0, session.files[0].width))
    actions["clicks_and_keys"] = (actions["accepted"] + 2 * actions["moved"] + actions["rejected"] + actions["added"]
                                  + actions["reviewed"])
    return actions


def counted(proposals: list, truth: list, start: int, radius: float) -> dict:
    """The proposals below row ``start`` against the true dots there."""
    from cnnkit.scan.detect import Detection, overall_with_dots

    found = [Detection("object", p.row, p.col, p.score) for p in proposals if p.row >= start]
    o = overall_with_dots(found, [d for d in truth if d[1] >= start], radius)
    o.pop("confusion")
    o["count_error_fraction"] = round(o["count_error"] / o["dots"], 3)
    return o


def timed(work):
    start = time.perf_counter()
    out = work()
    return out, round(time.perf_counter() - start, 1)


def loop(args) -> dict:
    from cnnkit.label.dot_start import dots_learner, open_dot_session

    photo, truth = new_photo(args)
    run, first_seconds = first_detector(args)
    dots = args.out / "new-dots.csv"
    for stale in (dots, dots.with_name("new-dots.review.json")):
        stale.unlink(missing_ok=True)
    session = open_dot_session(run, [photo], [dots])
    first, propose_seconds = timed(lambda: session.propose(photo))
    session.proposals[0] = first
    end = strip_end(truth, args.strip_animals)
    actions = simulate(session, truth, end, args)
    learner = dots_learner(run, session)
    learner.start(foreground=True)
    outcome, learn_seconds = timed(learner.wait)
    if outcome["state"] != "done":
        raise SystemExit(f"learning again failed: {outcome['log']}")
    again, count_seconds = timed(lambda: session.propose(photo))
    return {"strip_rows": [0, end], "strip_animals": sum(r < end for _, r, _ in truth),
            "rest_animals": sum(r >= end for _, r, _ in truth), "actions": actions,
            "first_detector_training_seconds": first_seconds, "learned_run": outcome["run"],
            "machine_seconds": {"proposals": propose_seconds, "learn_again": learn_seconds,
                                "count": count_seconds,
                                "loop": round(propose_seconds + learn_seconds + count_seconds, 1)},
            "strip_before": counted([p for p in first if p.row < end], [d for d in truth if d[1] < end], 0,
                                    args.radius),
            "rest_before": counted(first, truth, end, args.radius), "rest_after": counted(again, truth, end, args.radius)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SEALIONS.default)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-dots-loop"))
    parser.add_argument("--strip-animals", type=int, default=10)
    parser.add_argument("--radius", type=float, default=48.0)
    parser.add_argument("--move", type=float, default=16.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if SEALIONS.missing(args.data):
        return
    args.out.mkdir(parents=True, exist_ok=True)
    result = loop(args)
    (args.out / "results.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print("| detector | rest: detected / dots | count error | precision | recall |\n|---|---|---|---|---|")
    for name, key in (("dotted photo's", "rest_before"), ("learned again with the strip", "rest_after")):
        o = result[key]
        p = "n/a" if o["precision"] is None else f"{o['precision']:.2f}"
        print(f"| {name} | {o['detected']} / {o['dots']} | {o['count_error_fraction']:+.0%} | {p} | "
              f"{o['recall']:.2f} |")


if __name__ == "__main__":
    main()
