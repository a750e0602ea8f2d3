"""The `nas` command line: one subcommand per module of `nas.commands`, each registering its own
parser."""

from __future__ import annotations

import argparse
import sys

from nas import preload


def build_parser() -> argparse.ArgumentParser:
    # Imported here, after `main`'s tcmalloc re-exec: they pull in scipy (about a second).
    from nas.commands import (export, fidelity, inspect, proxy, rediscover, report, search,
                              status)

    parser = argparse.ArgumentParser(prog="nas", description="SpineNet architecture search.")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (inspect, proxy, fidelity, search, rediscover, status, export, report):
        module.register(sub)
    return parser


def main(argv=None) -> int:
    if argv is None:  # a real command line, not a call from Python
        preload.reexec(sys.orig_argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, KeyError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"nas {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
