"""``cnnkit serve``: the web page and JSON API over trained runs."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from cnnkit.cli.options import add_options, settings
from cnnkit.errors import CnnkitError, Interrupted

log = logging.getLogger("cnnkit")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(sub) -> None:
    from cnnkit.config import ServeConfig

    p = sub.add_parser("serve", help="a local web page (drop an image, see the answer, its nearest training images "
                                     "and scans) and a JSON API over runs")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders to serve")
    add_options(p, ServeConfig, grouped=False)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> None:
    from cnnkit.config import ServeConfig

    config = settings(args, ServeConfig)
    try:
        import uvicorn  # noqa: F401  (serve.server runs it)

        from cnnkit.serve.app import create_app
    except ImportError:
        raise CnnkitError("cnnkit serve needs FastAPI and uvicorn: pip install 'cnnkit[serve]'.") from None
    from cnnkit.serve.limits import Limits
    from cnnkit.serve.server import serve

    app = create_app(args.runs, Limits.of(config))
    if config.host not in LOOPBACK:
        log.warning("Listening on %s: anyone who reaches this machine on port %d can use the served runs and see "
                    "their training images. Use --host 127.0.0.1 to keep them to this machine.", config.host,
                    config.port)
    opens = (f"; the page opens on {app.state.default_run} ({app.state.default_reason})" if len(args.runs) > 1
             else "")
    print(f"Serving {len(args.runs)} run(s) at http://{config.host}:{config.port}/ (API: /docs){opens}; Ctrl-C "
          "stops.", flush=True)
    try:
        serve(app, config.host, config.port, config.grace)
    except Interrupted as e:
        # Stopped: every request is answered and the stopped work has ended; nothing of serve's is left to write or
        # remove. Python's own teardown of torch's libraries would take seconds more (2 s measured): skip it.
        print(f"cnnkit: {e}", file=sys.stderr, flush=True)
        os._exit(128 + e.signal_number)
