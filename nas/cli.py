"""The `nas` command line: one subcommand per module, each registering its own parser."""

from __future__ import annotations

import argparse
import sys

from nas import inspect_cmd, preload, proxy_cmd, search_cmd

SUBCOMMANDS = (inspect_cmd, proxy_cmd, search_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nas", description="SpineNet architecture search.")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
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
