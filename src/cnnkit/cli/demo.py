"""``cnnkit demo``: a built-in dataset trained as ``train`` would train it, re-runnable: a second demo continues an
interrupted one, or says which command starts it again."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cnnkit.cli.options import Shown
from cnnkit.cli.train import finish, train_config, training_options

log = logging.getLogger("cnnkit")


def cmd_demo(args: argparse.Namespace) -> None:
    from cnnkit.data.builtin import export_dataset, training_path
    from cnnkit.training.fit import train

    aerial = args.dataset == "aerial"
    extra = {"model": getattr(args, "model", None) or ("patch_cnn" if aerial else None)}
    if aerial and not getattr(args, "augment", None):
        extra["augment"] = "flip=hv,rotate=180"
    out = Path(args.out or f"runs/demo-{args.dataset}")
    data = out / "dataset"
    state = "fresh" if args.overwrite else _demo_again(out, progress=not (args.no_progress or args.quiet))
    if state == "done":
        return
    if not data.exists():
        log.info("Writing the built-in dataset %r to %s", args.dataset, data)
        export_dataset(args.dataset, data, seed=getattr(args, "seed", 0))
    trained = train(data / "patches" if aerial else training_path(args.dataset, data), out,
                    train_config(args, **extra), progress=not (args.no_progress or args.quiet),
                    overwrite=args.overwrite or state == "restart")
    finish(trained)
    if aerial:
        _scan_demo_scene(out, data)


def _demo_again(out: Path, progress: bool) -> str:
    """A second ``cnnkit demo``: an interrupted demo is continued and a finished one pointed at ("done"), one that
    stopped before its first checkpoint is started again ("restart"); "fresh" where there is none."""
    from cnnkit.run import RunFolder
    from cnnkit.training.fit import resume

    run = RunFolder(out)
    if not run.exists():
        return "fresh"
    record = run.read_record()
    if record.status == "finished":
        report = out / "report.html"
        print(f"{out} already holds the finished demo{f'; its report: {report}' if report.exists() else ''}. "
              f"Start it again with `cnnkit demo --overwrite`, or in another folder with `--out`.")
        return "done"
    if not run.last_checkpoint.exists():
        log.info("%s holds a demo that stopped before its first epoch ended: starting it again.", out)
        return "restart"
    log.info("Continuing the interrupted demo in %s (as `cnnkit train --resume %s` does)", out, out)
    finish(resume(out, progress=progress))
    return "done"


def _scan_demo_scene(out: Path, data: Path) -> None:
    """The patch classifier at work: count the objects of a whole scene."""
    from cnnkit.scan.photo import scan_photo

    scene, dots = data / "scenes" / "scene_0.png", data / "scenes" / "scene_0-dots.csv"
    summary = scan_photo(out, scene, out / "scan-scene_0", dots=dots)
    print(f"\nScanned {scene} (exact: {summary['exact']}, {summary['seconds']:.2f} s); counts against the dots:")
    for name, r in summary["dots"].items():
        print(f"  {name:<8} detected {r['detected']:3d}  dots {r['dots']:3d}  recall {r['recall']:.2f}")
    print(f"Heatmaps and detections in {out / 'scan-scene_0'}")


def register(sub) -> None:
    from cnnkit.data.builtin import list_datasets

    p = sub.add_parser("demo", help="train and evaluate a model chosen as `train` chooses it on a built-in dataset "
                                    "(no download); aerial: a patch_cnn, then a scan of a whole scene. Run again, it "
                                    "continues an interrupted demo")
    p.add_argument("--dataset", default="wafers", choices=list_datasets())
    p.add_argument("--out", help="run folder (default runs/demo-DATASET)")
    p.add_argument("--overwrite", action="store_true", help="start the demo afresh in a folder that holds one")
    training_options(p, defaults={"epochs": 30, "model": Shown("chosen from the data, as for train; patch_cnn "
                                                                 "for aerial")})
    p.set_defaults(func=cmd_demo)
