"""``cnnkit anomaly``: score images by an autoencoder run's reconstruction error, with error maps."""

from __future__ import annotations

import argparse
import json
import logging

from cnnkit.cli.options import add_options, settings

log = logging.getLogger("cnnkit")
COLUMNS = ("path", "class", "error", "anomalous", "unusual_pixels")


def _printer(as_json: bool):
    """Prints each row on stdout as it comes: CSV (a header first) or the elements of one JSON array."""
    import csv
    import sys

    writer = csv.writer(sys.stdout, lineterminator="\n")
    shown = [0]

    def show(row) -> None:
        if as_json:
            print(("[" if shown[0] == 0 else ",") + json.dumps({"path": row.path, "class": row.label or None,
                                                               "error": row.score, "anomalous": row.anomalous,
                                                               "unusual_pixels": row.unusual_pixels}))
        else:
            if shown[0] == 0:
                writer.writerow(COLUMNS)
            writer.writerow([row.path, row.label, f"{row.score:.6f}", str(row.anomalous).lower(),
                             f"{row.unusual_pixels:.4f}"])
        shown[0] += 1

    return show, shown


def summary_lines(summary: dict) -> list[str]:
    """What a person reads after the rows: counts, threshold, compression, ROC AUC."""
    lines = [f"{summary['anomalous']} of {summary['images']} images anomalous (error above {summary['threshold']:.5f},"
             f" {summary['threshold_source']}); mean error {summary['mean_error']:.5f}",
             f"Code of {summary['code_size']} numbers for {summary['pixels']} pixel values "
             f"({summary['compression']:.1f}x smaller); validation reconstruction error {summary['val_error']:.5f}"]
    if summary.get("roc_auc") is not None:
        lines.append(f"ROC AUC (other classes against {summary['normal']!r}): {summary['roc_auc']:.4f}")
    return lines


def cmd_anomaly(args: argparse.Namespace) -> None:
    from cnnkit.anomaly import score_images
    from cnnkit.config import AnomalyConfig

    show, shown = _printer(args.json)
    try:
        result = score_images(args.run, args.images, args.out, settings(args, AnomalyConfig), on_row=show)
    finally:
        if args.json:  # the array stays valid JSON even when scoring stopped part-way
            print("]" if shown[0] else "[]")
    for line in summary_lines(result.summary):
        log.info("%s", line)
    if result.folder is not None:
        log.info("Input, reconstruction and error map of each image: %s", result.folder / "anomaly.html")


def register(sub) -> None:
    from cnnkit.config import AnomalyConfig

    p = sub.add_parser("anomaly", help="an autoencoder run's reconstruction error per image, anomalous above the "
                                       "threshold chosen on its validation split; error maps outline what is unusual")
    p.add_argument("run", help="run folder of a conv_autoencoder or denoising_autoencoder")
    p.add_argument("images", nargs="*", help="image files or folders (class folders give each image its class; "
                                             "default: the run's test split)")
    p.add_argument("--out", help="folder for each image's input, reconstruction and error map PNGs, anomaly.json "
                                 "and anomaly.html (replaced as a whole)")
    p.add_argument("--json", action="store_true", help="rows on stdout as a JSON array (default CSV)")
    add_options(p, AnomalyConfig, grouped=False)
    p.set_defaults(func=cmd_anomaly)


def print_autoencoder_summary(trained, head_rows: list[tuple[str, str]]) -> None:
    """The one-screen summary after training an autoencoder: its code, its reconstruction error on validation (the
    thresholds' source) and on the test split."""
    from cnnkit.anomaly import score_images
    from cnnkit.run import RunFolder

    chosen, run_dir = trained.record.reconstruction, trained.run_dir
    rows = [("Run folder", str(run_dir)), *head_rows,
            ("Code", f"{chosen.code_size} numbers for {chosen.pixels} pixel values ({chosen.compression:.1f}x "
                     "smaller)"),
            ("Validation", f"reconstruction error {chosen.val_error:.5f} (mean squared, pixels in [0, 1]); anomaly "
                           f"threshold {chosen.image_threshold:.5f} (its {chosen.quantile:g} quantile over "
                           f"{chosen.val_images} images)")]
    if RunFolder(run_dir).read_split().splits.get("test"):
        s = score_images(run_dir).summary
        rows.append(("Test", f"reconstruction error {s['mean_error']:.5f}; {s['anomalous']} of {s['images']} images "
                             "above the threshold"))
    else:
        rows.append(("Test", "No test split: nothing held out was scored"))
    rows.append(("Next", f"cnnkit anomaly {run_dir} IMAGES... --out DIR  |  cnnkit features {run_dir} DATA"))
    print()
    for name, text in rows:
        print(f"{name:<14}{text}")
