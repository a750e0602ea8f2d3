"""SpineNet architecture specs: block specs, scaling, and the validated `SpineNetSpec`.

A spec is plain data in the Model Garden shape: a list of `(level, block_fn, (i, j), is_output)`
blocks over the running feature list `[stem0, stem1, block0, block1, ...]`.
"""

from __future__ import annotations

import dataclasses
from typing import Tuple

BOTTLENECK = "bottleneck"
RESIDUAL = "residual"
BLOCK_FNS = (BOTTLENECK, RESIDUAL)

# C per level before `filter_size_scale`; the keys are the levels a block may live on.
FILTER_SIZE_MAP = {1: 32, 2: 64, 3: 128, 4: 256, 5: 256, 6: 256, 7: 256}
MIN_BLOCK_LEVEL = min(FILTER_SIZE_MAP)
MAX_BLOCK_LEVEL = max(FILTER_SIZE_MAP)

STEM_LEVEL = 2
STEM_CONV_FILTERS = 64  # the 7x7 stride-2 stem conv is never scaled


class SpecError(ValueError):
    """An invalid spec; the message names the block (or field) and the rule it breaks."""


def _check_int(value, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{field}: expected an integer, got {value!r}")


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One block of the scale-permuted network."""

    level: int
    block_fn: str
    input_offsets: Tuple[int, int]
    is_output: bool


@dataclasses.dataclass(frozen=True)
class Scaling:
    """The scaling knobs of the SpineNet family (one row of the paper's scaling table)."""

    endpoints_num_filters: int = 256
    filter_size_scale: float = 1.0
    resample_alpha: float = 0.5
    block_repeats: int = 1

    def __post_init__(self):
        _check_int(self.endpoints_num_filters, "endpoints_num_filters")
        _check_int(self.block_repeats, "block_repeats")
        if self.endpoints_num_filters < 1:
            raise SpecError(f"endpoints_num_filters: must be >= 1, got {self.endpoints_num_filters}")
        if self.block_repeats < 1:
            raise SpecError(f"block_repeats: must be >= 1, got {self.block_repeats}")
        for field in ("filter_size_scale", "resample_alpha"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise SpecError(f"{field}: must be a positive number, got {value!r}")
        if int(min(FILTER_SIZE_MAP.values()) * self.filter_size_scale) < 1:
            raise SpecError(f"filter_size_scale: {self.filter_size_scale} leaves a level with no filters")
        if int(min(FILTER_SIZE_MAP.values()) * self.filter_size_scale * self.resample_alpha) < 1:
            raise SpecError(
                f"resample_alpha: {self.resample_alpha} leaves a resampling conv with no filters")

    def filters(self, level: int) -> int:
        """C of a block on `level`: the bottleneck width, or the residual block's width."""
        return int(FILTER_SIZE_MAP[level] * self.filter_size_scale)

    def block_channels(self, level: int, block_fn: str) -> int:
        """Channels a block takes in and puts out (4C for a bottleneck, C for a residual)."""
        return 4 * self.filters(level) if block_fn == BOTTLENECK else self.filters(level)


@dataclasses.dataclass(frozen=True)
class SpineNetSpec:
    """A whole SpineNet backbone: stem, scale-permuted blocks, output levels and scaling."""

    blocks: Tuple[BlockSpec, ...]
    num_stem_blocks: int = 2
    min_level: int = 3
    max_level: int = 7
    scaling: Scaling = Scaling()

    def __post_init__(self):
        object.__setattr__(self, "blocks", tuple(self.blocks))
        validate(self)

    @property
    def num_features(self) -> int:
        return self.num_stem_blocks + len(self.blocks)

    def feature_index(self, block_index: int) -> int:
        return self.num_stem_blocks + block_index

    def with_scaling(self, scaling: Scaling) -> "SpineNetSpec":
        return dataclasses.replace(self, scaling=scaling)

    def output_blocks(self):
        """`{level: block index}` of the output blocks."""
        return {b.level: k for k, b in enumerate(self.blocks) if b.is_output}

    def dangling_merges(self):
        """For each output block, the unconsumed earlier features added to it unresampled.

        Model Garden compares map widths; we compare levels, which agree for every input wider
        than 64 px and keep the architecture independent of the input size.
        """
        consumed = set()
        levels = [STEM_LEVEL] * self.num_stem_blocks + [b.level for b in self.blocks]
        channels = ([self.scaling.block_channels(STEM_LEVEL, BOTTLENECK)] * self.num_stem_blocks
                    + [self.scaling.block_channels(b.level, b.block_fn) for b in self.blocks])
        merges = {}
        for k, block in enumerate(self.blocks):
            consumed.update(block.input_offsets)
            if block.is_output:
                target_in = self.scaling.block_channels(block.level, block.block_fn)
                extra = tuple(f for f in range(self.feature_index(k))
                              if f not in consumed and levels[f] == block.level
                              and channels[f] == target_in)
                consumed.update(extra)
                merges[k] = extra
        return merges


def _block_error(k: int, message: str) -> SpecError:
    return SpecError(f"block {k}: {message}")


def validate_block(k: int, block, num_stem_blocks: int) -> None:
    """Checks one block's fields and parents; `k` is its index in the block list."""
    if not isinstance(block, BlockSpec):
        raise _block_error(k, f"expected a BlockSpec, got {block!r}")
    if isinstance(block.level, bool) or not isinstance(block.level, int):
        raise _block_error(k, f"level must be an integer, got {block.level!r}")
    if not MIN_BLOCK_LEVEL <= block.level <= MAX_BLOCK_LEVEL:
        raise _block_error(k, f"level {block.level} is outside the model's range "
                              f"{MIN_BLOCK_LEVEL}..{MAX_BLOCK_LEVEL}")
    if block.block_fn not in BLOCK_FNS:
        raise _block_error(k, f"unknown block type {block.block_fn!r} (expected one of {BLOCK_FNS})")
    if not isinstance(block.is_output, bool):
        raise _block_error(k, f"is_output must be a boolean, got {block.is_output!r}")
    offsets = block.input_offsets
    if not isinstance(offsets, tuple) or len(offsets) != 2:
        raise _block_error(k, f"input_offsets must be a pair of feature indices, got {offsets!r}")
    own = num_stem_blocks + k
    for parent in offsets:
        if isinstance(parent, bool) or not isinstance(parent, int):
            raise _block_error(k, f"parent {parent!r} is not an integer")
        if parent < 0:
            raise _block_error(k, f"parent {parent} is negative")
        if parent >= own:
            raise _block_error(k, f"parent {parent} is not lower than the block's own feature "
                                  f"index {own}")
    if offsets[0] == offsets[1]:
        raise _block_error(k, f"duplicate parents {offsets}")


def validate(spec: SpineNetSpec) -> None:
    """Raises `SpecError` naming the first broken rule of `spec`."""
    _check_int(spec.num_stem_blocks, "num_stem_blocks")
    _check_int(spec.min_level, "min_level")
    _check_int(spec.max_level, "max_level")
    if spec.num_stem_blocks < 2:
        raise SpecError(f"num_stem_blocks: must be >= 2, got {spec.num_stem_blocks}")
    if not MIN_BLOCK_LEVEL <= spec.min_level <= spec.max_level <= MAX_BLOCK_LEVEL:
        raise SpecError(f"min_level/max_level: {spec.min_level}..{spec.max_level} is not a range "
                        f"inside {MIN_BLOCK_LEVEL}..{MAX_BLOCK_LEVEL}")
    if not isinstance(spec.scaling, Scaling):
        raise SpecError(f"scaling: expected a Scaling, got {spec.scaling!r}")
    if not spec.blocks:
        raise SpecError("blocks: a spec needs at least one block")
    seen = {}
    for k, block in enumerate(spec.blocks):
        validate_block(k, block, spec.num_stem_blocks)
        if block.is_output:
            if not spec.min_level <= block.level <= spec.max_level:
                raise _block_error(k, f"output level {block.level} is outside the output levels "
                                      f"{spec.min_level}..{spec.max_level}")
            if block.level in seen:
                raise _block_error(k, f"output level {block.level} already produced by block "
                                      f"{seen[block.level]}")
            seen[block.level] = k
    missing = [lvl for lvl in range(spec.min_level, spec.max_level + 1) if lvl not in seen]
    if missing:
        raise SpecError(f"outputs: output levels must be exactly {spec.min_level}..{spec.max_level} "
                        f"once each; no output block for level(s) {missing}")
