"""The label, learn again, suggest loop of `cnnkit label` timed on a few hundred images, caches warm: seconds to
label, to learn again (the run's recipe in a process of its own, as the page's button runs it) and to rank the pool
again with the new run (issue 37's goal: learning again and new suggestions in under 10 s on 2 cores).

    python benchmarks/suggest_loop.py --results

The first run: `cnnkit train` on hymenoptera's val/ (153 images, the default recipe: EfficientNet-Lite0's cached
features and a solved head), in a fresh folder; the pool: train/ (245 images). Not timed: that first run and the
session's first ranking (they fill the feature caches). Then `--rounds` rounds, each: `--n` of the images the session
shows first labelled with their true class (`LabelSession.label`, each written to the labels CSV), the person's
time (`--label-seconds` a label, 2 by default: the learner's spare process imports the training stack meanwhile, as
it does while a person labels), learning again (`Learner`, as the page's button runs it: timed until the new run's
network is saved and the learner hands it over) and the new run's guesses and ranking of the pool
(`label.start.learned`, what the page does then, while the training's process scores the test split and writes the
report), then the same refresh with the pool read through the network (as before suggest read a transfer run's pool
from the feature cache). `--profile` also writes the learning's and the
ranking's profiles (cProfile) to /tmp/suggest_loop-*.prof.

Data, not in this repository: hymenoptera, the ants-and-bees set of PyTorch's transfer-learning tutorial
(https://download.pytorch.org/tutorial/hymenoptera_data.zip, unzipped: train/ and val/), by default in
../shared/data/hymenoptera; without it the script says so in one line and exits 0. `--results` writes the table to
benchmarks/results/suggest_loop.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _data import HYMENOPTERA
from _results import add_option, command_line, record

COLUMNS = [{"key": "round", "label": "round"}, {"key": "labels", "label": "labels given"},
           {"key": "label_s", "label": "label (s)", "format": "{:.2f}"},
           {"key": "learn_s", "label": "learn again (s)", "format": "{:.1f}"},
           {"key": "suggest_s", "label": "new guesses and ranking (s)", "format": "{:.1f}"},
           {"key": "total_s", "label": "learn + suggest (s)", "format": "{:.1f}"},
           {"key": "report_s", "label": "the new run's report done, after its network was used (s)",
            "format": "{:.1f}"},
           {"key": "network_suggest_s", "label": "guesses and ranking through the network, as before (s)",
            "format": "{:.1f}"}]


def first_run(data: Path, run: Path) -> None:
    subprocess.run([sys.executable, "-m", "cnnkit.cli", "-q", "train", str(data), "--out", str(run)], check=True,
                   stdout=subprocess.DEVNULL)


def one_round(session, learner, n: int, label_seconds: float, profile: Path | None, network: bool) -> dict:
    from cnnkit.label.start import learned

    start = time.perf_counter()
    for image in session.pending()[:n]:
        session.label(session.name(image), image.parent.name)  # the truth: its class folder
    label_s = time.perf_counter() - start
    time.sleep(max(0.0, n * label_seconds - label_s))  # the person's time: the spare imports, the last report ends
    start = time.perf_counter()
    learner.start()
    while learner.status()["state"] == "running":  # as the page polls it; on_trained (nothing here) is timed below
        time.sleep(0.05)
    learn_s = time.perf_counter() - start
    status = learner.status()
    if status["state"] != "done":
        raise SystemExit(f"learning again failed: {status['log']}")
    start = time.perf_counter()
    if profile:
        import cProfile

        cProfile.runctx("learned(session, learner.run, True)", globals(), locals(), str(profile))
    else:
        learned(session, learner.run, True)
    suggest_s = time.perf_counter() - start
    learner.process.wait()  # the test split's scoring and report, written meanwhile
    report_s = time.perf_counter() - start
    network_s = before(session, learner.run) if network else None
    return {"labels": sum(session.labels.get(i) is not None for i in session.images), "label_s": label_s,
            "learn_s": learn_s, "suggest_s": suggest_s, "total_s": learn_s + suggest_s, "report_s": report_s,
            "network_suggest_s": network_s}


def before(session, run: Path) -> float:
    """Seconds of the same refresh with the pool read through the network, as suggest read it before the cache."""
    from cnnkit.label.start import learned
    from cnnkit.suggest import pool

    cached, pool.transfer_head = pool.transfer_head, lambda run, predictor: False
    try:
        start = time.perf_counter()
        learned(session, run, True)
        return time.perf_counter() - start
    finally:
        pool.transfer_head = cached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HYMENOPTERA.default)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=10, help="labels a round")
    parser.add_argument("--label-seconds", type=float, default=2.0,
                        help="a person's seconds per label, waited before learning again (default 2)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--cache-only", action="store_true",
                        help="skip the refresh through the network (a minute a round; the comparison with before)")
    add_option(parser, "suggest_loop")
    args = parser.parse_args()
    if HYMENOPTERA.missing(args.data):
        return
    from cnnkit.label.learn import Learner
    from cnnkit.label.start import open_session

    work = Path(tempfile.mkdtemp(prefix="cnnkit-loop-"))
    run = work / "run"
    start = time.perf_counter()
    first_run(args.data.resolve() / "val", run)
    print(f"first run: {time.perf_counter() - start:.1f} s", flush=True)
    start = time.perf_counter()
    session = open_session(run, args.data.resolve() / "train", work / "labels.csv")
    print(f"first ranking: {time.perf_counter() - start:.1f} s", flush=True)
    from cnnkit.cli.train import reproduce_command

    words = reproduce_command("DATA", run).split()
    learner = Learner(run, session.labels, [words[1], *words[3:]], lambda new: None, warm=True)
    rows = []
    for r in range(1, args.rounds + 1):
        profile = Path(f"/tmp/suggest_loop-suggest-{r}.prof") if args.profile else None
        row = {"round": r, **one_round(session, learner, args.n, args.label_seconds, profile, not args.cache_only)}
        print(row, flush=True)
        rows.append(row)
    if args.profile:
        command = learner.planned().split()[1:]
        subprocess.run([sys.executable, "-m", "cProfile", "-o", "/tmp/suggest_loop-learn.prof", "-m", "cnnkit.cli",
                        *command], check=True, stdout=subprocess.DEVNULL)
        print("profiles: /tmp/suggest_loop-learn.prof, /tmp/suggest_loop-suggest-*.prof")
    if args.results:
        record(args.results, "suggest_loop", [{"id": "loop", "columns": COLUMNS, "rows": rows}],
               command_line(__file__))


if __name__ == "__main__":
    main()
