"""Replay records and rebuilding a controller (or a middleware stack) by replaying them.

A history is an ordered list of JSON records (a search's SQLite ledger gives them out in this
form). A proposal record has `id` and `genome` (a genome dict); a result record has `id`,
`status` (default "ok"), `reward` and optional `metrics`. A record with both a genome and a
result stands for a proposal answered at once. Replaying re-runs the controller's own
deterministic proposals, checks that they match, and feeds the results back in the same order,
so the rebuilt controller continues exactly as the original.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence

from controllers.interface import OK, Proposal
from search_space.genome import Genome
from search_space.spec import SpecError

RESULT_KEYS = ("status", "reward")


def proposal_record(proposal: Proposal) -> Dict[str, Any]:
    return {"id": proposal.id, "genome": proposal.genome.to_dict()}


def result_record(proposal_id: str, reward: Optional[float], metrics: Optional[Mapping] = None,
                  status: str = OK) -> Dict[str, Any]:
    return {"id": proposal_id, "status": status, "reward": reward, "metrics": dict(metrics or {})}


def replay(controller, history: Sequence[Mapping[str, Any]]) -> None:
    """Rebuilds a freshly built `controller` (same seed and configuration as the one that wrote
    `history`); raises naming the first record that is malformed or that the controller does
    not reproduce."""
    for index, record in enumerate(history):
        if "genome" not in record and not any(k in record for k in RESULT_KEYS):
            raise ValueError(f"history[{index}]: a record needs a 'genome' or a 'status'/'reward', "
                             f"got keys {sorted(record)}")
        if "genome" in record:
            try:
                genome = Genome.from_dict(record["genome"])
            except SpecError as err:
                raise ValueError(f"history[{index}]: {err}") from err
            proposal = controller.propose()
            if genome != proposal.genome or record.get("id", proposal.id) != proposal.id:
                raise ValueError(f"history[{index}]: the controller proposes {proposal.id!r} with "
                                 f"another genome than the ledger's {record.get('id')!r}; was the "
                                 f"ledger written with another seed or configuration?")
            proposal_id = proposal.id
        else:
            proposal_id = record["id"]
        if any(k in record for k in RESULT_KEYS):
            controller.feedback(proposal_id, record.get("reward"), record.get("metrics") or {},
                                record.get("status", OK))


class Replayable:
    """Rebuilding from a history of records, shared by controllers and middlewares."""

    def replay(self, history: Sequence[Mapping[str, Any]]) -> None:
        """Re-applies a history's proposal and result records in order."""
        replay(self, history)
