"""The run ledger: `DIR/NAME/ledger.sqlite`, the single source of truth of a search.

One row per trial (its genome, spec, status, reward, metrics, costs, attempts, errors and
times), per-epoch metrics, the run's config and code version, and the latest controller state
checkpoint. Every state change is one SQLite transaction (WAL), so a driver killed at any
moment leaves a consistent ledger. The controller's view of the ledger is the record list of
`controllers.replay` (`history()`): proposals and results in the order the controller saw them.
SQL text is marked `# pragma: no mutate`: mutmut's mutants of it only change letter case, which
SQLite ignores (bench/results/mutation.md).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional

from search_space.genome import Genome

if TYPE_CHECKING:  # the controllers load only where a history is rebuilt
    from controllers.interface import Proposal

LEDGER_FILE = "ledger.sqlite"

PROPOSED, RUNNING, DONE, FAILED, INFEASIBLE, DUPLICATE = (
    "proposed", "running", "done", "failed", "infeasible", "duplicate")
IN_FLIGHT = (PROPOSED, RUNNING)
FINISHED = (DONE, FAILED)
STATUSES = (PROPOSED, RUNNING, DONE, FAILED, INFEASIBLE, DUPLICATE)
TIMING_KEYS = ("compile_s", "train_s", "eval_s")
_SQLITE_MAGIC, _HEADER_BYTES = b"SQLite format 3\x00", 100
_PAGE_SIZES = tuple(2 ** n for n in range(9, 17))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    trial_id TEXT PRIMARY KEY,
    seq INTEGER UNIQUE,
    result_seq INTEGER UNIQUE,
    genome TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    reward REAL,
    metrics TEXT NOT NULL DEFAULT '{}',
    params INTEGER,
    flops INTEGER,
    compile_s REAL,
    train_s REAL,
    eval_s REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    note TEXT,
    proposed_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS epochs (
    trial_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS controller_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    saved_at REAL NOT NULL
);
"""


class LedgerError(ValueError):
    """The ledger cannot be used as asked (missing, corrupt, or from another run)."""


class Ledger:
    """Reads and writes one run's ledger; writes are single transactions. A damaged file
    (a copy cut short, another file, a bad page) is refused, named, before anything is written."""

    def __init__(self, path, create: bool = False):
        self.path = Path(path)
        if not create:
            check_file(self.path)
        self.conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0)
        self.conn.row_factory = _as_dict
        try:
            self._open(create)
        except BaseException as err:
            self.conn.close()
            if isinstance(err, sqlite3.DatabaseError):
                raise LedgerError(f"ledger: {str(self.path)!r} is damaged: {err}") from None
            raise

    def _open(self, create: bool) -> None:
        if not create:  # before setting the journal mode, a write where it changes
            row = self.conn.execute("PRAGMA quick_check(1)").fetchone()  # pragma: no mutate
            problem = row["quick_check"]
            if problem != "ok":
                raise LedgerError(f"ledger: {str(self.path)!r} is damaged: "
                                  f"{problem.splitlines()[-1]}")
        self.conn.execute("PRAGMA journal_mode=WAL")  # pragma: no mutate
        self.conn.execute("PRAGMA synchronous=NORMAL")  # pragma: no mutate
        if create:
            self.conn.executescript(_SCHEMA)
        elif self.meta("config") is None:
            raise LedgerError(f"ledger: {str(self.path)!r} holds no search run")

    def close(self) -> None:
        self.conn.close()

    def _transaction(self):
        return _Transaction(self.conn)

    # -- meta --------------------------------------------------------------------------------
    def meta(self, key: str, default=None):
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?",  # pragma: no mutate
                                (key,)).fetchone()
        return default if row is None else json.loads(row["value"])

    def set_meta(self, values: Mapping[str, Any]) -> None:
        with self._transaction():
            self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",  # pragma: no mutate
                                  [(k, json.dumps(v)) for k, v in values.items()])

    def _next_seq(self) -> int:
        seq = self.meta("seq", 0) + 1
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('seq', ?)",  # pragma: no mutate
                          (json.dumps(seq),))
        return seq

    # -- trials ------------------------------------------------------------------------------
    def add_proposal(self, proposal: Proposal, spec_hash: str, spec_json: str,
                     cost: Mapping[str, int]) -> int:
        """Records a proposal going to training; returns its sequence number."""
        with self._transaction():
            seq = self._next_seq()
            self._insert(proposal.id, proposal.genome, spec_hash, spec_json, PROPOSED, seq=seq,
                         params=cost.get("params"), flops=cost.get("flops"))
        return seq

    def add_skipped(self, trial_id: str, genome: Genome, spec_hash: str, spec_json: str,
                    status: str, note: str, metrics: Optional[Mapping] = None) -> None:
        """Records a proposal the middlewares answered without training (infeasible or a
        duplicate); such rows are not part of the controller's history. Recording one again
        (a replay on resume does) changes nothing."""
        with self._transaction():
            self._insert(trial_id, genome, spec_hash, spec_json, status, note=note, or_ignore=True,
                         metrics=metrics, params=(metrics or {}).get("params"),
                         flops=(metrics or {}).get("flops"))

    def _insert(self, trial_id, genome, spec_hash, spec_json, status, seq=None, note=None,
                metrics=None, params=None, flops=None, or_ignore=False) -> None:
        ignore = "OR IGNORE " if or_ignore else ""
        self.conn.execute(
            f"INSERT {ignore}INTO trials "  # pragma: no mutate
            "(trial_id, seq, genome, spec_hash, spec, status, metrics, params, "  # pragma: no mutate
            "flops, note, proposed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # pragma: no mutate
            (trial_id, seq, json.dumps(genome.to_dict()), spec_hash, spec_json, status,
             json.dumps(dict(metrics or {})), params, flops, note, time.time()))

    def mark_running(self, trial_id: str) -> int:
        """A trial (re)starts: one more attempt; returns the attempt number."""
        with self._transaction():
            self.conn.execute("UPDATE trials SET status = ?, attempts = attempts + 1, "  # pragma: no mutate
                              "started_at = ? WHERE trial_id = ?",  # pragma: no mutate
                              (RUNNING, time.time(), trial_id))
            return self.trial(trial_id)["attempts"]

    def add_epoch(self, trial_id: str, attempt: int, seed: int, epoch: int,
                  metrics: Mapping[str, Any]) -> None:
        with self._transaction():
            self.conn.execute("INSERT INTO epochs VALUES (?, ?, ?, ?, ?, ?)",  # pragma: no mutate
                              (trial_id, attempt, seed, epoch, json.dumps(dict(metrics)),
                               time.time()))

    def finish(self, trial_id: str, status: str, reward: Optional[float],
               metrics: Mapping[str, Any], error: Optional[str] = None,
               state: Optional[Mapping] = None) -> int:
        """Records a trial's end (done or failed) and, with `state`, the controller's state
        after its feedback, in one transaction; returns the result's sequence number."""
        if status not in FINISHED:
            raise ValueError(f"status: a trial finishes as one of {FINISHED}, got {status!r}")
        with self._transaction():
            seq = self._next_seq()
            self.conn.execute(
                "UPDATE trials SET status = ?, reward = ?, metrics = ?, error = ?, "  # pragma: no mutate
                "result_seq = ?, compile_s = ?, train_s = ?, eval_s = ?, "  # pragma: no mutate
                "finished_at = ? WHERE trial_id = ?",  # pragma: no mutate
                (status, reward, json.dumps(dict(metrics)), error, seq,
                 *(metrics.get(k) for k in TIMING_KEYS), time.time(), trial_id))
            if state is not None:
                self._save_state(seq, state)
        return seq

    # -- controller state --------------------------------------------------------------------
    def save_state(self, state: Mapping) -> None:
        with self._transaction():
            self._save_state(self.meta("seq", 0), state)

    def _save_state(self, seq: int, state: Mapping) -> None:
        self.conn.execute("INSERT OR REPLACE INTO controller_state VALUES (1, ?, ?, ?)",  # pragma: no mutate
                          (seq, json.dumps(state), time.time()))

    def latest_state(self):
        """(sequence number, state) of the latest checkpoint, or None."""
        row = self.conn.execute("SELECT seq, state FROM controller_state").fetchone()  # pragma: no mutate
        return None if row is None else (row["seq"], json.loads(row["state"]))

    # -- reading -----------------------------------------------------------------------------
    def history(self, after: int = 0) -> List[Dict[str, Any]]:
        """The controller's records after sequence number `after`, in order."""
        # Here, not at the top: `nas status` and `nas export` need no controller (nor JAX).
        from controllers.interface import FAILED as FEEDBACK_FAILED, OK, Proposal
        from controllers.replay import proposal_record, result_record

        events = []
        rows = self.conn.execute(
            "SELECT * FROM trials WHERE seq > ? OR result_seq > ?",  # pragma: no mutate
            (after, after))
        for row in rows:
            if row["seq"] > after:
                genome = Genome.from_dict(json.loads(row["genome"]))
                events.append((row["seq"], proposal_record(Proposal(row["trial_id"], genome))))
            if row["result_seq"] is not None:  # a result comes after its proposal: > after
                status = OK if row["status"] == DONE else FEEDBACK_FAILED
                events.append((row["result_seq"], result_record(
                    row["trial_id"], row["reward"], json.loads(row["metrics"]), status)))
        return [record for _, record in sorted(events)]  # sequence numbers are unique

    def trial(self, trial_id: str) -> Dict[str, Any]:
        row = self.conn.execute("SELECT * FROM trials WHERE trial_id = ?",  # pragma: no mutate
                                (trial_id,)).fetchone()
        if row is None:
            raise LedgerError(f"trial_id: {trial_id!r} is not in the ledger")
        return _row(row)

    def trials(self, statuses: Optional[Iterable[str]] = None) -> List[Dict[str, Any]]:
        """Trials in proposal order (skipped ones where they were proposed)."""
        rows = self.conn.execute("SELECT * FROM trials ORDER BY proposed_at, rowid")  # pragma: no mutate
        wanted = None if statuses is None else set(statuses)
        return [_row(r) for r in rows if wanted is None or r["status"] in wanted]

    def counts(self) -> Dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        rows = self.conn.execute(
            "SELECT status, COUNT(*) AS n FROM trials GROUP BY status"  # pragma: no mutate
        )
        for row in rows:
            counts[row["status"]] = row["n"]
        return counts

    def epochs(self, trial_id: Optional[str] = None) -> List[Dict[str, Any]]:
        query, args = "SELECT * FROM epochs", ()  # pragma: no mutate
        if trial_id is not None:
            query, args = query + " WHERE trial_id = ?", (trial_id,)  # pragma: no mutate
        rows = self.conn.execute(query + " ORDER BY rowid", args)  # pragma: no mutate
        return [dict(r, metrics=json.loads(r["metrics"])) for r in rows]


def check_file(path: Path) -> None:
    """Raises LedgerError naming `path` unless its header is an SQLite database's and the file
    is as long as the header says: what SQLite would call "malformed", told apart (a copy cut
    short, or another file)."""
    if not path.exists():
        raise LedgerError(f"ledger: {str(path)!r} does not exist")
    with open(path, "rb") as file:
        header = file.read(_HEADER_BYTES)
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if (len(header) < _HEADER_BYTES or not header.startswith(_SQLITE_MAGIC)
            or page_size not in _PAGE_SIZES):
        raise LedgerError(f"ledger: {str(path)!r} is not an SQLite database (damaged, or "
                          f"another file)")
    if path.with_name(path.name + "-wal").exists():
        return  # a driver's checkpoint may be growing the file; SQLite reads through the WAL
    # The header's page count is valid while its two change counters agree.
    size, pages = path.stat().st_size, int.from_bytes(header[28:32], "big")
    if size % page_size or (header[24:28] == header[92:96] and size < pages * page_size):
        raise LedgerError(f"ledger: {str(path)!r} is cut short: {size} bytes, its header "
                          f"counts {pages} pages of {page_size} bytes")


def _as_dict(cursor: sqlite3.Cursor, values: tuple) -> Dict[str, Any]:
    """A row as a dict keyed by its columns' names as the schema spells them (case-sensitive,
    unlike `sqlite3.Row`)."""
    return {column[0]: value for column, value in zip(cursor.description, values)}


def _row(row: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(row)
    out["genome"] = json.loads(out["genome"])
    out["metrics"] = json.loads(out["metrics"])
    return out


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on an exception."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")  # pragma: no mutate

    def __exit__(self, kind, value, tb):
        if kind is None:
            self.conn.execute("COMMIT")  # pragma: no mutate
        else:
            self.conn.execute("ROLLBACK")  # pragma: no mutate
        return False
