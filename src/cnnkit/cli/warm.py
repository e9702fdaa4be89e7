"""``python -m cnnkit.cli.warm``: the spare process of :mod:`cnnkit.label.warm`. It imports what training needs,
then reads one line on its input, ``{"args": [...], "log": PATH, "cwd": PATH}``, and runs ``cnnkit ARGS`` there with
its output appended to the log; the end of its input before that line (its server gone) ends it."""

from __future__ import annotations

import json
import os
import sys

# What `cnnkit train` and `cnnkit points` import on their way to the first step and the report, the heavy
# libraries with them (found with `python -X importtime`).
PRELOAD = ("cnnkit.cli.train", "cnnkit.cli.points", "cnnkit.training.fit", "cnnkit.training.points",
           "cnnkit.evaluation.evaluate", "cnnkit.models.transfer", "cnnkit.baselines", "lightning.pytorch", "timm",
           "matplotlib.pyplot", "sklearn.linear_model")


def main() -> int:
    from importlib import import_module

    for name in PRELOAD:
        import_module(name)
    line = sys.stdin.readline()
    if not line:  # the server ended before learning again
        return 0
    request = json.loads(line)
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, sys.stdout.fileno())
    os.dup2(log, sys.stderr.fileno())
    os.close(log)
    os.chdir(request["cwd"])
    from cnnkit.cli import main as cnnkit

    return cnnkit(request["args"])


if __name__ == "__main__":
    sys.exit(main())
