"""Mutation testing with mutmut 3, each group of modules against its own test files.

    python bench/mutation.py [--fresh] [GROUP | MODULE ...]

The groups are `[tool.mutation.groups]` of pyproject.toml (the modules to mutate and the test
files that cover them); `[tool.mutmut]` there holds mutmut's settings common to all groups. Each
group runs in its own folder `mutants/GROUP/` (pyproject.toml written with the group's
`only_mutate` and tests, links to the sources), so that a mutant runs only the tests of its group
that reach its function, never the whole suite. A MODULE argument (`search_space/hashing.py`)
mutates that module alone, in its group's folder.

A group folder is kept for the next run: mutmut then tests only the functions that changed, and
this script retests the mutants that survived before (mutmut keeps a survivor's verdict even when
a test was added). `--fresh` deletes the folders first. Prints per group its wall time and per
module the kill rate ((killed + timed out) / mutants); writes the table and every survivor's diff
to `mutants/report.md`; `--report` only writes that, from the verdicts the folders hold.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "mutants"
MUTMUT = Path(sys.executable).with_name("mutmut")
# mutmut's exit codes (mutmut.stats.status_by_exit_code) grouped as this report counts them
KILLED = {1: "killed", 3: "killed", 36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout",
          255: "timeout"}
NOT_RUN = {None: "not run", 34: "skipped"}
LINKED = ("search_space", "controllers", "nas", "proxy_tasks", "tests", "setup.cfg")


def load_settings(pyproject: Path = ROOT / "pyproject.toml"):
    """(mutmut's common settings, {group: {"modules": globs, "tests": paths}})."""
    data = tomllib.loads(pyproject.read_text())
    return data["tool"]["mutmut"], data["tool"]["mutation"]["groups"]


def toml_table(name: str, values: dict) -> str:
    """`[name]` with the values as TOML; strings, numbers, booleans and lists of them only
    (their JSON spelling is TOML's)."""
    return "\n".join([f"[{name}]"] + [f"{k} = {json.dumps(v)}" for k, v in values.items()]) + "\n"


def module_name(path: str) -> str:
    """`search_space/hashing.py` -> `search_space.hashing`: the prefix of its mutants' names."""
    return path[:-len(".py")].replace("/", ".")


def select(groups: dict, targets: list[str]) -> dict:
    """{group: mutant-name patterns (empty: all of the group)} for GROUP and MODULE arguments."""
    chosen = {}
    for target in targets or list(groups):
        if target in groups:
            chosen[target] = []
            continue
        owners = [g for g, spec in groups.items()
                  if any(fnmatch.fnmatch(target, glob) for glob in spec["modules"])]
        if not owners:
            raise SystemExit(f"mutation: {target!r} is neither a group nor a module of one "
                             f"(groups: {', '.join(groups)})")
        if chosen.get(owners[0]) != []:
            chosen.setdefault(owners[0], []).append(module_name(target) + ".*")
    return chosen


def prepare(folder: Path, common: dict, spec: dict) -> None:
    """The group's folder: links to the sources and tests, and its mutmut settings."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = folder / name
        if not link.is_symlink():
            link.symlink_to(ROOT / name)
    settings = dict(common, only_mutate=spec["modules"],
                    pytest_add_cli_args_test_selection=spec["tests"])
    (folder / "pyproject.toml").write_text(toml_table("tool.mutmut", settings))


def verdicts(folder: Path) -> dict:
    """{module path: {mutant name: exit code}} from mutmut's files in the group's folder."""
    out = {}
    for meta in sorted((folder / "mutants").rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if codes:
            out[str(meta.relative_to(folder / "mutants"))[:-len(".meta")]] = codes
    return out


def status(code) -> str:
    return KILLED.get(code) or NOT_RUN.get(code) or {0: "survived", 33: "no tests"}.get(code, "other")


def mutmut_run(folder: Path, names: list[str], log) -> None:
    """`mutmut run NAMES` in the group's folder, its output appended to `log`."""
    log.write(f"$ mutmut run {' '.join(names)}\n")
    log.flush()
    subprocess.run([str(MUTMUT), "run", *names], cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                   check=True)


def not_killed(folder: Path) -> set:
    return {name for codes in verdicts(folder).values() for name, code in codes.items()
            if status(code) in ("survived", "no tests")}


def run_group(folder: Path, patterns: list[str]) -> float:
    """Runs the mutants matching `patterns` (mutmut retests those all), or else the group's
    untested mutants and then again its earlier survivors; returns the wall seconds."""
    before = set() if patterns else not_killed(folder)
    start = time.perf_counter()
    with open(folder / "mutmut.log", "a") as log:
        mutmut_run(folder, patterns, log)
        again = sorted(before & not_killed(folder))
        if again:
            mutmut_run(folder, again, log)
    return time.perf_counter() - start


# Prints {mutant name: diff} for the {mutant name: module path} read from stdin (run in the
# group's folder; one process for all, as `mutmut show` takes seconds per mutant).
DIFFS = """import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
print(json.dumps({n: get_diff_for_mutant(n, path=p) for n, p in json.load(sys.stdin).items()}))"""


def diffs(folder: Path, paths: dict) -> dict:
    """{mutant name: its diff} for the {mutant name: module path} given."""
    out = subprocess.run([sys.executable, "-c", DIFFS], cwd=folder, input=json.dumps(paths),
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def report(groups_run: dict, seconds: dict) -> str:
    """Markdown: the kill rate per module, then each survivor's diff."""
    rows = ["| module | mutants | killed | timeout | survived | no tests | kill rate |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    survivors = {}
    for group, folder in groups_run.items():
        survived = {}
        for path, codes in verdicts(folder).items():
            counts = Counter(status(c) for c in codes.values())
            tested = sum(counts.values()) - counts["not run"] - counts["skipped"]
            if not tested:
                continue
            rate = (counts["killed"] + counts["timeout"]) / tested
            rows.append(f"| {path} | {tested} | {counts['killed']} | {counts['timeout']} | "
                        f"{counts['survived']} | {counts['no tests']} | {rate:.1%} |")
            survived.update({n: path for n, c in codes.items()
                             if status(c) in ("survived", "no tests", "other")})
        survivors.update(diffs(folder, survived))
    times = [f"{group}: {seconds[group] / 60:.1f} min" for group in seconds]
    text = "\n".join(rows) + "\n\nWall time: " + (", ".join(times) or "(not run now)") + "\n"
    text += "".join(f"\n### {name}\n\n```diff\n{change}\n```\n"
                    for name, change in survivors.items())
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", metavar="GROUP|MODULE")
    parser.add_argument("--fresh", action="store_true", help="delete the groups' folders first")
    parser.add_argument("--report", action="store_true",
                        help="only report the verdicts the groups' folders hold")
    args = parser.parse_args()
    common, groups = load_settings()
    chosen = select(groups, args.targets)
    seconds, folders = {}, {}
    for group, patterns in chosen.items():
        folder = folders[group] = WORK / group
        if args.report:
            continue
        if args.fresh:
            shutil.rmtree(folder, ignore_errors=True)
        prepare(folder, common, groups[group])
        print(f"mutation: {group} {' '.join(patterns)} (log: {folder / 'mutmut.log'})", flush=True)
        seconds[group] = run_group(folder, patterns)
    text = report(folders, seconds)
    (WORK / "report.md").write_text(text)
    print(text.split("\n### ")[0])
    print(f"survivors' diffs: {WORK / 'report.md'}")


if __name__ == "__main__":
    main()
