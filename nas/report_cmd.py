"""`nas report`: a search's report (Markdown and plots) written into its run folder, and for a
`nas rediscover` run its rediscovery report too."""

from __future__ import annotations

from nas.run_dir import open_run
from nas.search_cmd import add_results_dir


def register(sub) -> None:
    p = sub.add_parser("report", help="write a search's report.md and plots")
    p.add_argument("name", help="run name")
    add_results_dir(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from nas.rediscovery_report import META_KEY, write_rediscovery_report
    from nas.report import write_report  # matplotlib loads only here

    folder, ledger = open_run(args.results_dir, args.name)
    try:
        print(f"report written to {write_report(folder, ledger)}")
        if ledger.meta(META_KEY) is not None:  # a `nas rediscover` run
            print(f"rediscovery report written to {write_rediscovery_report(folder, ledger)}")
    finally:
        ledger.close()
    return 0
