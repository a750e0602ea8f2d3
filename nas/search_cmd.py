"""`nas search`: until the search driver lands, prints the default search space."""

from __future__ import annotations

from search_space import get_space


def register(sub) -> None:
    parser = sub.add_parser("search", help="run an architecture search")
    parser.add_argument("--space", default="spinenet-49", help="search space preset")
    parser.set_defaults(func=run)


def run(args) -> int:
    print(get_space(args.space).summary())
    return 0
