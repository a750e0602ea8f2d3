"""The smallest valid SpineNet, for tests of training mechanics (compiles in seconds)."""

from search_space import BlockSpec, Scaling, SpineNetSpec

# Five residual output blocks, each reading the two latest features.
TINY_SPEC = SpineNetSpec(
    blocks=tuple(BlockSpec(level, "residual", (k, k + 1), True) for k, level in enumerate(range(3, 8))),
    scaling=Scaling(endpoints_num_filters=8, filter_size_scale=0.125, resample_alpha=0.25))
