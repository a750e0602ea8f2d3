"""A run folder whose ledger is damaged (a copy cut short, garbage, a bad page): every command
that opens the run exits 2 naming the file and what is wrong, and changes nothing in it."""

import random

import pytest

from nas.cli import main
from nas.ledger import LEDGER_FILE
from tests.nas.test_search_state import config, run

NAME = "damaged"
PAGE = 4096  # SQLite's default page size, the ledger's


TRIALS_PAGE = 4  # the trials table's first page: the meta table's pages come before it


@pytest.fixture(scope="module")
def ledger_bytes(tmp_path_factory):
    """A real ledger, closed: a similarity search of 6 trials driven without Ray."""
    path = tmp_path_factory.mktemp("ledger") / LEDGER_FILE
    ledger, _, _ = run(path, config("evolution", max_trials=6))
    assert ledger.conn.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'trials'"
                               ).fetchone()["rootpage"] == TRIALS_PAGE
    ledger.close()
    data = path.read_bytes()
    assert len(data) > TRIALS_PAGE * PAGE and len(data) % PAGE == 0
    return data


def cut_short(data):
    return data[:len(data) // 2]


def garbage(data):
    return random.Random(0).randbytes(len(data))


def bad_schema(data):
    """The header whole, the rest of its page (the table of tables) overwritten."""
    return data[:100] + random.Random(0).randbytes(PAGE - 100) + data[PAGE:]


def bad_trials_page(data):
    """The trials table's first page overwritten; the run's config still reads."""
    start = (TRIALS_PAGE - 1) * PAGE
    return data[:start] + random.Random(0).randbytes(PAGE) + data[start + PAGE:]


COMMANDS = [["status", NAME], ["status"], ["export", NAME], ["report", NAME],
            ["search", "--name", NAME, "--resume"], ["rediscover", "--name", NAME, "--resume"]]


def files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("damage, problem", [
    (cut_short, "is cut short"), (garbage, "is not an SQLite database"),
    (bad_schema, "is damaged: database disk image is malformed"),
    (bad_trials_page, f"is damaged: Page {TRIALS_PAGE}: ")])
@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: " ".join(argv))
def test_a_damaged_ledger_exits_2_naming_it_and_changes_nothing(ledger_bytes, damage, problem,
                                                               argv, tmp_path, capsys):
    folder = tmp_path / NAME
    folder.mkdir()
    (folder / LEDGER_FILE).write_bytes(damage(ledger_bytes))
    (folder / "driver.lock").write_text("pid 1\n")  # a run folder's, left by its last driver
    (folder / "config.yaml").write_text("max_trials: 6\n")
    before = files(tmp_path)

    assert main([*argv, "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"nas {argv[0]}: error: ledger: {str(folder / LEDGER_FILE)!r} {problem}" in err
    assert files(tmp_path) == before
