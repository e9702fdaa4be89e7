"""The ``cnnkit`` command line: one module per command group, one thin function per command; every option comes
from its declaration in ``cnnkit.config``. Heavy imports happen inside the commands, so ``--help`` is instant."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from cnnkit.errors import CnnkitError, Interrupted

log = logging.getLogger("cnnkit")


class _FlagsFormatter(logging.Formatter):
    """Warnings from the library name parameters (`include_seen`); on the command line they name flags."""

    def format(self, record: logging.LogRecord) -> str:
        from cnnkit.cli.options import to_flags

        return to_flags(super().format(record))


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_FlagsFormatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def build_parser() -> argparse.ArgumentParser:
    from cnnkit.cli import (anomaly, audit, demo, info, inspection, label, latent, points, scan, serve, suggest, train,
                            tuning, use)

    parser = argparse.ArgumentParser(prog="cnnkit", description="Convolutional image classifiers for scarce data.")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and results")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (demo, train, tuning, use, latent, suggest, label, anomaly, scan, points, inspection, serve, audit,
                  info):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.quiet)
    from cnnkit.run.interrupts import received, signals_interrupt

    received.clear()
    try:
        with signals_interrupt():
            args.func(args)
        if received:  # a signal whose exception a library swallowed (raised inside a finaliser)
            raise Interrupted("Stopped by a signal", received[0])
    except Interrupted as e:
        from cnnkit.cli.options import to_flags

        print(f"cnnkit: {to_flags(str(e))}", file=sys.stderr)
        return 128 + e.signal_number
    except CnnkitError as e:
        from cnnkit.cli.options import to_flags

        print(f"cnnkit: error: {to_flags(str(e))}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and friends: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("cnnkit: interrupted.", file=sys.stderr)
        return 130
    except OSError as e:  # a write deep in a library (a full disk, a folder made read-only meanwhile): one line
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"cnnkit: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except Exception as e:  # a fault cnnkit did not foresee: one line, the traceback on demand
        if os.environ.get("CNNKIT_DEBUG"):
            raise
        print(f"cnnkit: error: unexpected {type(e).__name__}: {str(e)[:300]} (set CNNKIT_DEBUG=1 to see where; "
              "please report it)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
