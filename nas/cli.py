"""The `nas` command line: one subcommand per module, each registering its own parser."""

from __future__ import annotations

import argparse
import sys

from nas import preload


def build_parser() -> argparse.ArgumentParser:
    # Imported here, after `main`'s tcmalloc re-exec: they pull in scipy (about a second).
    from nas import (export_cmd, fidelity_cmd, inspect_cmd, proxy_cmd, rediscover_cmd, report_cmd,
                     search_cmd, status_cmd)

    parser = argparse.ArgumentParser(prog="nas", description="SpineNet architecture search.")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (inspect_cmd, proxy_cmd, fidelity_cmd, search_cmd, rediscover_cmd, status_cmd,
                   export_cmd, report_cmd):
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
