"""Search controllers (random search, regularized evolution, PPO) and the middlewares around
them (objective, constraints, dedup), all with one resumable, JSON-serializable interface:
propose() -> Proposal, feedback(id, reward, metrics, status), state_dict(), load_state_dict(),
replay(history)."""

from controllers.base import Controller
from controllers.constraints import Constraints
from controllers.costs import detector_cost_fn
from controllers.dedup import Dedup
from controllers.evolution import EvolutionConfig, RegularizedEvolution
from controllers.interface import FAILED, INFEASIBLE, OK, STATUSES, Proposal
from controllers.replay import proposal_record, replay, result_record
from controllers.middleware import Middleware
from controllers.objective import ABOVE, ALWAYS, Objective, mnas_reward
from controllers.ppo import PPOController
from controllers.ppo_policy import PPOConfig
from controllers.random_search import RandomSearch
