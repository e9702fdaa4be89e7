"""``cnnkit points``: a point detector trained on dotted photographs (``cnnkit scan`` counts with it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnkit.cli.options import add_options, settings


def print_points_summary(trained) -> None:
    """The one-screen summary after training a point detector: what it learned from, its loss, what to do next."""
    record, run_dir = trained.record, trained.run_dir
    p, result = record.points, record.result
    taught = ", ".join(f"{x.photo} ({x.objects} dots)" for x in p.photos)
    if p.patches:
        taught += (f"; {sum(x.objects for x in p.patches)} object and {sum(x.backgrounds for x in p.patches)} "
                   f"background patches" + (f" from {len(p.patches)} folders" if len(p.patches) > 1 else ""))
    rows = [("Run folder", str(run_dir)),
            ("Detector", f"{p.settings.backbone} (ImageNet, packaged), an object-centre map every {p.cell} px"
                         + (f", naming {', '.join(record.classes)}" if record.names_objects else "")),
            ("Learned from", taught + (f" (region {p.settings.region})" if p.settings.region else "")),
            ("Training", f"{result.epochs_run} epoch{'' if result.epochs_run == 1 else 's'} of {p.settings.steps_per_epoch} "
                         f"steps in {result.train_seconds:.0f} s"
                         + (f", augmented with {p.settings.augment}" if p.settings.augment else "")),
            ("Threshold", f"{p.settings.detection_threshold:g} (`scan --choose-thresholds` on a validation region stores "
                          "another)"),
            ("Next", f"cnnkit scan {run_dir} PHOTO [--dots CSV] [--verify CLASSIFIER_RUN]  (into "
                     f"{run_dir}/scan-PHOTO)")]
    print()
    for name, text in rows:
        print(f"{name:<14}{text}")


def cmd_points(args: argparse.Namespace) -> None:
    from cnnkit.config import PointsConfig
    from cnnkit.training.points import train_points

    out = args.out or Path("runs") / f"{Path(args.photos[0]).stem}-points"
    trained = train_points(args.photos, args.dots, out, settings(args, PointsConfig),
                           progress=not (args.no_progress or args.quiet), overwrite=args.overwrite)
    print_points_summary(trained)


def register(sub) -> None:
    from cnnkit.config import PointsConfig

    p = sub.add_parser("points", help="a point detector trained on dotted photographs: one peak per object, "
                                      "however close they lie (count with `cnnkit scan`)")
    p.add_argument("photos", nargs="+", metavar="PHOTO", help="the photographs")
    p.add_argument("--dots", nargs="+", required=True, metavar="CSV",
                   help="one CSV per photo (class_name,row,col per object; every class is an object), in order")
    p.add_argument("--out", help="the run folder to write (default: runs/PHOTO-points, named after the first "
                                 "photo)")
    p.add_argument("--overwrite", action="store_true", help="replace the run in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on a terminal, no per-epoch lines in a log")
    add_options(p, PointsConfig, grouped=False)
    p.set_defaults(func=cmd_points)
