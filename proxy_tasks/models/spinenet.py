"""The SpineNet backbone, built from any `SpineNetSpec` (stem, blocks, resampling, endpoints)."""

from __future__ import annotations

import functools
import operator
from typing import Dict, Optional, Tuple

import flax.linen as nn
import jax

from proxy_tasks.models.layers import ConvBN, max_pool, stochastic_depth, upsample_to
from proxy_tasks.models.options import ModelOptions
from search_space.cost import level_size
from search_space.spec import BOTTLENECK, STEM_CONV_FILTERS, STEM_LEVEL, SpineNetSpec


class Block(nn.Module):
    """A ResNet v1 block: bottleneck (1x1 C, 3x3 C, 1x1 4C) or residual (3x3 C, 3x3 C).

    A 1x1 conv + BN projects the shortcut only when the input width differs from the output's.
    """

    block_fn: str
    filters: int
    options: ModelOptions
    drop_rate: float = 0.0

    @nn.compact
    def __call__(self, x, train: bool):
        o = self.options
        if self.block_fn == BOTTLENECK:
            layers = ((self.filters, 1), (self.filters, 3), (4 * self.filters, 1))
        else:
            layers = ((self.filters, 3), (self.filters, 3))
        width = layers[-1][0]
        shortcut = x if x.shape[-1] == width else ConvBN(width, 1, o, activate=False,
                                                         name="projection")(x, train)
        for i, (features, kernel) in enumerate(layers):
            last = i == len(layers) - 1
            x = ConvBN(features, kernel, o, activate=not last,
                       bn_scale_init=(nn.initializers.zeros if last and o.zero_init_residual
                                      else nn.initializers.ones),
                       name=f"conv{i}")(x, train)
        return o.act(stochastic_depth(self, x, self.drop_rate, train) + shortcut)


class BlockGroup(nn.Module):
    """A block repeated `repeats` times in sequence."""

    block_fn: str
    filters: int
    repeats: int
    options: ModelOptions
    drop_rate: float = 0.0

    @nn.compact
    def __call__(self, x, train: bool):
        for r in range(self.repeats):
            x = Block(self.block_fn, self.filters, self.options, self.drop_rate, name=f"block{r}")(x, train)
        return x


class Resample(nn.Module):
    """A parent feature brought to the target's level and input width.

    1x1 to int(alpha * C) (C = width / 4 for a bottleneck parent); going down, a 3x3 stride-2
    conv then stride-2 max-pools; going up, nearest upsampling; 1x1 to the target width, no act.
    """

    parent_level: int
    parent_fn: str
    level: int
    size: Tuple[int, int]
    features: int
    alpha: float
    options: ModelOptions

    @nn.compact
    def __call__(self, x, train: bool):
        o = self.options
        base = x.shape[-1] // 4 if self.parent_fn == BOTTLENECK else x.shape[-1]
        mid = int(base * self.alpha)
        x = ConvBN(mid, 1, o, name="reduce")(x, train)
        if self.parent_level < self.level:
            x = ConvBN(mid, 3, o, strides=2, name="down")(x, train)
            for _ in range(self.level - self.parent_level - 1):
                x = max_pool(x)
        elif self.parent_level > self.level:
            x = upsample_to(x, 2 ** (self.parent_level - self.level), self.size)
        return ConvBN(self.features, 1, o, activate=False, name="expand")(x, train)


class SpineNet(nn.Module):
    """The backbone; returns `{level: [batch, ceil(H/2^l), ceil(W/2^l), endpoints_num_filters]}`.

    `endpoint_levels` (default `spec.min_level..max_level`) picks which output blocks get an
    endpoint; the others are built but unused, as Model Garden does for narrower level ranges.
    """

    spec: SpineNetSpec
    options: ModelOptions = ModelOptions()
    endpoint_levels: Optional[Tuple[int, ...]] = None

    @nn.compact
    def __call__(self, images, train: bool = False) -> Dict[int, jax.Array]:
        spec, s, o = self.spec, self.spec.scaling, self.options
        height, width = images.shape[1:3]
        x = ConvBN(STEM_CONV_FILTERS, 7, o, strides=2, name="stem_conv")(images, train)
        x = max_pool(x)
        feats, kinds = [], []  # kinds: (level, block_fn) of each feature
        for k in range(spec.num_stem_blocks):
            x = BlockGroup(BOTTLENECK, s.filters(STEM_LEVEL), s.block_repeats, o,
                           name=f"stem{k}")(x, train)
            feats.append(x)
            kinds.append((STEM_LEVEL, BOTTLENECK))
        dangling = spec.dangling_merges()
        for k, block in enumerate(spec.blocks):
            size = level_size(height, width, block.level)
            target = s.block_channels(block.level, block.block_fn)
            inputs = [Resample(*kinds[p], block.level, size, target, s.resample_alpha, o,
                               name=f"block{k}_resample{i}")(feats[p], train)
                      for i, p in enumerate(block.input_offsets)]
            inputs += [feats[f] for f in dangling.get(k, ())]
            x = o.act(functools.reduce(operator.add, inputs))
            drop = o.stochastic_depth_rate * (k + 1) / len(spec.blocks)
            feats.append(BlockGroup(block.block_fn, s.filters(block.level), s.block_repeats, o,
                                    drop, name=f"block{k}")(x, train))
            kinds.append((block.level, block.block_fn))
        outputs = spec.output_blocks()
        levels = self.endpoint_levels or range(spec.min_level, spec.max_level + 1)
        return {level: ConvBN(s.endpoints_num_filters, 1, o, name=f"endpoint{level}")(
                    feats[spec.feature_index(outputs[level])], train)
                for level in levels}
