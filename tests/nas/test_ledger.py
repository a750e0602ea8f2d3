"""The ledger's records one call at a time: what each write stores, the controller's history
after a sequence number, and the file checks that tell a damaged ledger from a growing one."""

import sqlite3

import pytest

from controllers.interface import Proposal
from controllers.replay import proposal_record, result_record
from nas.ledger import DONE, DUPLICATE, FAILED, LEDGER_FILE, Ledger, LedgerError, check_file
from search_space import get_space, seed_genome

SEED = seed_genome(get_space("spinenet-49"))


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(tmp_path / LEDGER_FILE, create=True)
    yield ledger
    ledger.close()


def _propose(ledger, trial_id, cost=None):
    return ledger.add_proposal(Proposal(trial_id, SEED), f"hash-{trial_id}", "{}", cost or {})


def test_a_proposal_and_its_end_store_the_cost_and_the_timings(ledger):
    assert _propose(ledger, "a", {"params": 1234, "flops": 5678}) == 1
    assert ledger.mark_running("a") == 1 and ledger.mark_running("a") == 2
    metrics = {"ap": 0.25, "compile_s": 1.5, "train_s": 20.0, "eval_s": 0.5}
    assert ledger.finish("a", DONE, 0.25, metrics) == 2
    trial = ledger.trial("a")
    assert {k: trial[k] for k in ("seq", "result_seq", "status", "reward", "params", "flops",
                                  "compile_s", "train_s", "eval_s", "attempts", "spec_hash")} == {
        "seq": 1, "result_seq": 2, "status": DONE, "reward": 0.25, "params": 1234, "flops": 5678,
        "compile_s": 1.5, "train_s": 20.0, "eval_s": 0.5, "attempts": 2, "spec_hash": "hash-a"}
    assert trial["metrics"] == metrics and trial["genome"] == SEED.to_dict()


def test_a_trial_ends_done_or_failed_only(ledger):
    _propose(ledger, "a")
    with pytest.raises(ValueError) as error:
        ledger.finish("a", DUPLICATE, None, {})
    assert str(error.value) == ("status: a trial finishes as one of ('done', 'failed'), got "
                                "'duplicate'")


def test_a_skipped_proposal_keeps_its_metrics_and_a_replay_changes_nothing(ledger):
    metrics = {"params": 11, "flops": 22, "duplicate_of": "x"}
    ledger.add_skipped("s", SEED, "hash-s", "{}", DUPLICATE, "twin of x", metrics)
    ledger.add_skipped("s", SEED, "hash-s", "{}", DUPLICATE, "another note", {"params": 0})
    trial = ledger.trial("s")
    assert (trial["status"], trial["note"], trial["metrics"], trial["params"], trial["flops"],
            trial["seq"]) == (DUPLICATE, "twin of x", metrics, 11, 22, None)
    assert ledger.history() == []  # skipped rows are not the controller's


def test_history_after_a_sequence_number_in_the_order_the_controller_saw(ledger):
    for trial_id in ("a", "b", "c"):  # seq 1, 2, 3
        _propose(ledger, trial_id)
    ledger.finish("b", FAILED, None, {"error": "boom"})  # seq 4
    ledger.finish("a", DONE, 0.5, {"ap": 0.5})  # seq 5
    records = [proposal_record(Proposal(t, SEED)) for t in ("a", "b", "c")] + [
        result_record("b", None, {"error": "boom"}, "failed"),
        result_record("a", 0.5, {"ap": 0.5}, "ok")]
    assert ledger.history() == records
    for after in range(6):
        assert ledger.history(after) == records[after:]


def test_a_failed_write_is_rolled_back_whole_and_raised(ledger):
    """A proposal id recorded twice is an error, and the sequence number it had drawn in the
    same transaction is given back: the next proposal gets the number the failed one took."""
    _propose(ledger, "a")
    with pytest.raises(sqlite3.IntegrityError):
        _propose(ledger, "a")
    assert ledger.meta("seq") == 1
    assert _propose(ledger, "b") == 2


def test_an_unknown_trial_is_named(ledger):
    with pytest.raises(LedgerError) as error:
        ledger.trial("nope")
    assert str(error.value) == "trial_id: 'nope' is not in the ledger"


def test_a_ledger_without_a_run_is_refused(tmp_path):
    """A ledger created but never given a search's config (a driver killed at once)."""
    path = tmp_path / LEDGER_FILE
    Ledger(path, create=True).close()
    with pytest.raises(LedgerError) as error:
        Ledger(path)
    assert str(error.value) == f"ledger: {str(path)!r} holds no search run"


def test_a_state_saved_before_any_result_is_at_sequence_zero(ledger):
    assert ledger.latest_state() is None
    ledger.save_state({"population": []})
    assert ledger.latest_state() == (0, {"population": []})
    _propose(ledger, "a")
    ledger.finish("a", DONE, 0.5, {}, state={"population": ["a"]})
    assert ledger.latest_state() == (2, {"population": ["a"]})


def test_epochs_are_read_per_trial_in_order(ledger):
    for trial_id, epoch in (("a", 0), ("b", 0), ("a", 1)):
        ledger.add_epoch(trial_id, 1, 0, epoch, {"loss": float(epoch)})
    assert [(e["trial_id"], e["epoch"], e["metrics"]) for e in ledger.epochs("a")] == [
        ("a", 0, {"loss": 0.0}), ("a", 1, {"loss": 1.0})]
    assert [e["trial_id"] for e in ledger.epochs()] == ["a", "b", "a"]


def _database(path, page_size):
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA page_size={page_size}")
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [(b"x" * 3000,)] * 60)
    conn.commit()
    conn.close()


def test_check_file_accepts_every_page_size_sqlite_writes(tmp_path):
    for page_size in (512, 4096, 65536):  # 65536 is stored as 1 in the header
        path = tmp_path / f"p{page_size}.sqlite"
        _database(path, page_size)
        check_file(path)


def test_check_file_names_a_missing_short_or_foreign_file(tmp_path):
    missing = tmp_path / "none.sqlite"
    with pytest.raises(LedgerError) as error:
        check_file(missing)
    assert str(error.value) == f"ledger: {str(missing)!r} does not exist"
    path = tmp_path / "db.sqlite"
    _database(path, 4096)
    data = path.read_bytes()
    bad_page_size = data[:16] + (3000).to_bytes(2, "big") + data[18:]
    for name, content in (("header-only", data[:60]), ("bad-page-size", bad_page_size)):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(LedgerError) as error:
            check_file(tmp_path / name)
        assert str(error.value) == (f"ledger: {str(tmp_path / name)!r} is not an SQLite database "
                                    "(damaged, or another file)")
    short = tmp_path / "short.sqlite"
    short.write_bytes(data[:4096 * 3])
    with pytest.raises(LedgerError) as error:
        check_file(short)
    pages = int.from_bytes(data[28:32], "big")
    assert str(error.value) == (f"ledger: {str(short)!r} is cut short: 12288 bytes, its header "
                                f"counts {pages} pages of 4096 bytes")
    # Beside a write-ahead log the file may still be growing: a short one is not refused.
    (tmp_path / "short.sqlite-wal").write_bytes(b"")
    check_file(short)
