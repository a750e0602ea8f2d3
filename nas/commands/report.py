"""`nas report`: a search's report (Markdown and plots) written into its run folder, for a
`nas rediscover` run its rediscovery report too, and with `--compare` both runs side by side."""

from __future__ import annotations

from nas.run_dir import open_run
from nas.commands.common import add_results_dir


def register(sub) -> None:
    p = sub.add_parser("report", help="write a search's report.md and plots")
    p.add_argument("name", help="run name")
    add_results_dir(p)
    p.add_argument("--compare", metavar="OTHER",
                   help="also draw the best-so-far rewards of the run OTHER (in the same results "
                        "folder) beside this run's, into compare_OTHER.md and .png; a rediscovery "
                        "report takes OTHER's best as its control")
    p.set_defaults(func=run)


def run(args) -> int:
    from nas.reports.compare import check_comparable, write_comparison
    from nas.reports.rediscovery import META_KEY, retrained_references, write_rediscovery_report
    from nas.reports.search import write_report  # matplotlib loads only here

    folder, ledger = open_run(args.results_dir, args.name)
    control = None
    try:
        if args.compare:
            try:
                control = (args.compare, open_run(args.results_dir, args.compare)[1])
            except ValueError as err:
                raise ValueError(f"--compare: {str(err).partition(': ')[2]}") from None
            check_comparable(args.name, ledger.meta("config"), args.compare,
                             control[1].meta("config"))
        print(f"report written to {write_report(folder, ledger)}")
        if ledger.meta(META_KEY) is not None:  # a `nas rediscover` run
            path = write_rediscovery_report(folder, ledger, control)
            print(f"rediscovery report written to {path}")
        if control is not None:
            references = retrained_references(ledger) or retrained_references(control[1])
            path = write_comparison(folder, ledger, *control, references)
            print(f"comparison written to {path}")
    finally:
        ledger.close()
        if control is not None:
            control[1].close()
    return 0
