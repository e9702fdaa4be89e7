"""``cnnkit scan``: a patch classifier over a whole photograph; ``cnnkit patches``: training patches from dotted
photographs."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnkit._io import shown_path
from cnnkit.cli.options import add_options, settings


def _print_dots(dots: dict) -> None:
    for name, r in dots.items():
        p = "n/a" if r["precision"] is None else f"{r['precision']:.2f}"
        rc = "n/a" if r["recall"] is None else f"{r['recall']:.2f}"
        print(f"  {name:<16} detected {r['detected']:4d}  dots {r['dots']:4d}  error {r['count_error']:+4d}  "
              f"precision {p}  recall {rc}" + ("" if r.get("known_class", True) else "  (not a class of the scan)"))


def _exactness(summary: dict) -> str:
    if summary["method"] == "points":
        return "in bfloat16; --precision 32 for float32" if summary["precision"] == "bf16" else "in float32"
    if summary["precision"] == "bf16":
        return "in bfloat16: probabilities within a few hundredths of float32; --precision 32 for the exact scan"
    return "exact" if summary["exact"] else "approximate at window borders"


def cmd_scan(args: argparse.Namespace) -> None:
    from cnnkit.config import ScanConfig
    from cnnkit.scan.photo import scan_photo

    out = Path(args.out) if args.out else Path(args.run) / f"scan-{Path(args.photo).stem}"
    summary = scan_photo(args.run, args.photo, out, settings(args, ScanConfig), dots=args.dots)
    where = f" (region {summary['region']})" if summary["region"] else ""
    how = (f"the point detector's centre map, a cell every {summary['stride']} px" if summary["method"] == "points"
           else f"{summary['method']} windows of {summary['window'][0]}x{summary['window'][1]} every "
                f"{summary['stride']} px")
    print(f"Scanned {args.photo}{where} ({summary['photo_size'][0]}x{summary['photo_size'][1]} after scale "
          f"{summary['scale']:g}) with {how} ({_exactness(summary)}) in "
          f"{summary['seconds']:.2f} s, peak memory {summary['peak_memory_mb']:.0f} MB")
    if summary["verify"]:
        v = summary["verify"]
        print(f"Verified by {shown_path(v['run'])} on {v['side']}x{v['side']} px windows around the detections: "
              f"{v['checked'] - v['dropped']} of {v['checked']} kept, {v['dropped']} called background"
              + (" (the first run's classes kept)" if v.get("keeps_class") else ""))
    print("Counts: " + ", ".join(f"{c} {n}" for c, n in summary["counts"].items()))
    if summary["dots_overall"] is not None:
        if summary["dots_outside_region"]:
            print(f"Dots outside the region, left out: {summary['dots_outside_region']}")
        _print_dots(summary["dots"] or {})
        _print_dots({"all objects": summary["dots_overall"]})
        confusion = summary["dots_overall"]["confusion"]
        if confusion and summary["dots"]:
            print("Matched detections, true class -> predicted: " + "; ".join(
                f"{true} -> " + ", ".join(f"{p} {n}" for p, n in sorted(row.items()))
                for true, row in sorted(confusion.items())))
    print(f"Heatmaps, counts.json, detections.csv and detections.png in {shown_path(out)}")


def cmd_patches(args: argparse.Namespace) -> None:
    from cnnkit.config import PatchConfig
    from cnnkit.errors import CnnkitError
    from cnnkit.patches import make_patches

    if len(args.dots) != len(args.photos):
        raise CnnkitError(f"--dots takes one CSV per photo, in the same order: {len(args.photos)} photo(s), "
                          f"{len(args.dots)} dots file(s).")
    out = shown_path(args.out or Path("runs") / f"{Path(args.photos[0]).stem}-patches")
    counts = make_patches(args.photos, args.dots, out, settings(args, PatchConfig), overwrite=args.overwrite,
                          hard_negatives=args.hard_negatives or ())
    print(f"Patches in {out} (manifest.csv says where each came from): "
          + ", ".join(f"{c} {n}" for c, n in sorted(counts.items())))
    if any(_finds_points(run) for run in args.hard_negatives or ()):
        print(f"Next: cnnkit points PHOTO... --dots CSV... --patches {out}  (a point detector that "
              "learns from them)")
    else:
        print(f"Next: cnnkit train {out} --model patch_cnn  (or a pretrained backbone)")


def _finds_points(run_dir: str) -> bool:
    from cnnkit.run import RunFolder

    return RunFolder(run_dir).read_record().finds_points


def register(sub) -> None:
    from cnnkit.config import PatchConfig, ScanConfig

    p = sub.add_parser("patches", help="training patches from dotted photographs: one folder per class centred on "
                                       "the dots, background windows away from them, and a manifest")
    p.add_argument("photos", nargs="+", metavar="PHOTO", help="the photographs")
    p.add_argument("--dots", nargs="+", required=True, metavar="CSV",
                   help="one CSV per photo (class_name,row,col per animal), in the photos' order")
    p.add_argument("--out", help="the folder to write: class folders and manifest.csv (default: "
                                 "runs/PHOTO-patches, named after the first photo)")
    p.add_argument("--overwrite", action="store_true", help="replace --out when it exists")
    p.add_argument("--hard-negatives", nargs="+", metavar="RUN", help="add each run's most confident false "
                   "detections (far from every dot; as many per run as random backgrounds) as background patches: "
                   "train, mine, retrain (a patch classifier's, or a point detector's: `cnnkit points --patches` "
                   "learns from them)")
    add_options(p, PatchConfig, grouped=False)
    p.set_defaults(func=cmd_patches)

    p = sub.add_parser("scan", help="a patch classifier over a whole photograph: heatmaps, detections, counts")
    p.add_argument("run", help="run folder of a patch classifier (patch_cnn is exact)")
    p.add_argument("photo", help="the photograph")
    p.add_argument("--out", help="folder for the heatmaps, scan.json, counts.json, detections.csv and .png, "
                                 "replaced (default: RUN/scan-PHOTO, named after the photo)")
    p.add_argument("--dots", help="CSV with class_name,row,col per object: count errors, precision and recall")
    add_options(p, ScanConfig, grouped=False)
    p.set_defaults(func=cmd_scan)
