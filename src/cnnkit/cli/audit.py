"""``cnnkit audit``: duplicates, label errors, metadata traces and empty images of a data set."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnkit._io import shown_path
from cnnkit.cli.options import add_options, default_out, settings, to_flags


def register(sub) -> None:
    from cnnkit.config import AuditConfig

    p = sub.add_parser("audit", help="check a data set before trusting a score: duplicates and leakage between "
                                     "splits, suspected label errors, metadata that gives the class away")
    p.add_argument("data", help="data folder, or a CSV with columns path,label[,split]")
    p.add_argument("--run", help="a run trained on DATA: its split and (with --features run) its latent vectors")
    p.add_argument("--out", help="folder for audit.json and audit.html, replaced (default: runs/DATA-audit)")
    add_options(p, AuditConfig, grouped=False)
    p.set_defaults(func=cmd_audit)


def cmd_audit(args: argparse.Namespace) -> None:
    from cnnkit.audit.run import audit
    from cnnkit.config import AuditConfig

    out = args.out or default_out(args.data, "audit")
    found = audit(args.data, out, run=args.run, config=settings(args, AuditConfig), progress=not args.quiet)
    s = found["summary"]
    print(f"{found['images']} images audited in {found['seconds']} s ({found['features']}):")
    print(f"  exact duplicate groups {s['exact_groups']}, near-duplicate groups {s['near_groups']} "
          f"(crossing splits {s['groups_crossing_splits']}, crossing classes {s['groups_crossing_classes']}), "
          f"look-alike clusters {s['look_alike_clusters']}")
    print(f"  suspected label errors {s['label_suspects']}; metadata gives the class away: "
          f"{'YES' if s['metadata_trace'] else 'no'}")
    print(f"  unreadable {s['unreadable']}, placeholders {s['placeholders']}, near-empty {s['near_empty']}")
    for refusal in found["training_refuses"]:
        print(to_flags(f"  training refuses: {refusal['finding']}: {refusal['detail']}"))
    print(f"Report: {shown_path(Path(out, 'audit.html'))}  (all findings: {shown_path(Path(out, 'audit.json'))})")
