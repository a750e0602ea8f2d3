"""The base of middlewares: wrappers with the controller interface around an inner one."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from controllers.interface import OK, Proposal
from controllers.replay import Replayable


class Middleware(Replayable):
    """Delegates everything to `inner`; subclasses override what they change and keep their
    own state under `_state()` / `_load_state()` next to the inner state."""

    kind = "middleware"

    def __init__(self, inner):
        self.inner = inner

    @property
    def space(self):
        return self.inner.space

    def propose(self) -> Proposal:
        return self.inner.propose()

    def feedback(self, proposal_id: str, reward: Optional[float] = None,
                 metrics: Optional[Mapping[str, Any]] = None, status: str = OK) -> None:
        self.inner.feedback(proposal_id, reward, metrics, status)

    def _state(self) -> Dict[str, Any]:
        return {}

    def _load_state(self, state: Mapping[str, Any]) -> None:
        pass

    def state_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "inner": self.inner.state_dict(), **self._state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("kind") != self.kind:
            raise ValueError(f"state.kind: {state.get('kind')!r} cannot be loaded into a "
                             f"{self.kind} middleware")
        self.inner.load_state_dict(state["inner"])
        self._load_state(state)
