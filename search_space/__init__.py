"""The SpineNet search space: specs, genomes, operators, hashing, cost accounting and spec files."""

from search_space.builtins import (BUILTIN_MODELS, MODEL_SIZES, PROXY_SIZE, RESNET50_SEED,
                                  SPINENET_49_BLOCKS, ModelSize, builtin_spec, model_size)
from search_space.cost import (BackboneCost, Cost, backbone_cost, classification_head_cost,
                               retinanet_head_cost)
from search_space.distance import decisions, distance, num_decisions, similarity
from search_space.encode import genome_from_spec
from search_space.genome import Genome, decode, random_genome, seed_genome, validate_genome
from search_space.hashing import canonical_hash
from search_space.operators import MUTATIONS, crossover, distinct_mutants, mutate
from search_space.space import (ADJUSTMENTS, CONNECTIONS, DECISION_GROUPS, ORDER, SPACES,
                                SearchSpace, get_space)
from search_space.spec import (BLOCK_FNS, BOTTLENECK, FILTER_SIZE_MAP, RESIDUAL, BlockSpec, Scaling,
                               SpecError, SpineNetSpec)
from search_space.spec_io import parse_spec_text, read_spec, to_json, to_model_garden, write_spec
from search_space.traits import TRAITS, traits
