"""``cnnkit inspect``: filters, activations and where the network looked, for one image."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnkit._io import shown_path
from cnnkit.cli.options import add_options, settings


def register(sub) -> None:
    from cnnkit.config import InspectConfig

    p = sub.add_parser("inspect", help="look inside a run's network for one image: first-layer filters, each "
                                       "stage's activations, Grad-CAM, occlusion, integrated gradients")
    p.add_argument("run", help="run folder (a CNN or a pretrained backbone)")
    p.add_argument("image", help="the image file")
    p.add_argument("--out", help="folder for the PNGs, inspect.json and inspect.html, replaced (default: "
                                 "RUN/inspect/IMAGE, named after the image file without its extension)")
    add_options(p, InspectConfig, grouped=False)
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> None:
    from cnnkit.config import InspectConfig
    from cnnkit.inspection.run import inspect_image

    out = Path(args.out) if args.out else Path(args.run) / "inspect" / Path(args.image).stem
    found = inspect_image(args.run, args.image, out, settings(args, InspectConfig))
    probability = found["probabilities"][found["predicted"]]
    print(f"{found['image']}: predicted {found['predicted']} ({probability:.3f})"
          + (f", true {found['true']}" if found["true"] else ""))
    row, col = found["grad_cam_peak"]["predicted"]
    print(f"  Grad-CAM peak at row {row}, column {col} of {found['input_size'][0]}x{found['input_size'][1]}; "
          f"occlusion: largest probability drop {found['occlusion']['largest_drop']:.3f}")
    print(f"Page: {shown_path(out / 'inspect.html')}  (figures and inspect.json beside it)")
