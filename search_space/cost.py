"""Exact cost accounting: trainable parameters, BN statistics and multiply-add FLOPs.

Counts follow the model as built: conv kernels, BN scale and offset (trainable), BN moving
mean and variance (statistics, counted apart), conv biases only in the heads. FLOPs count the
multiply-adds of convolutions and linear layers, as the paper does; pooling, resizing, sums
and activations are free.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Tuple

from search_space.spec import BOTTLENECK, STEM_CONV_FILTERS, STEM_LEVEL, SpineNetSpec


@dataclasses.dataclass(frozen=True)
class Cost:
    params: int = 0
    bn_statistics: int = 0
    flops: int = 0

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.params + other.params, self.bn_statistics + other.bn_statistics,
                    self.flops + other.flops)


def conv_cost(kernel: int, cin: int, cout: int, out_hw: Tuple[int, int], bn: bool = True,
              bias: bool = False) -> Cost:
    """A kernel x kernel conv producing an `out_hw` map, optionally with BN and bias."""
    params = kernel * kernel * cin * cout + (cout if bias else 0) + (2 * cout if bn else 0)
    return Cost(params, 2 * cout if bn else 0, kernel * kernel * cin * cout * out_hw[0] * out_hw[1])


def level_size(height: int, width: int, level: int) -> Tuple[int, int]:
    """Map size at `level` under SAME padding: ceil(size / 2^level)."""
    return math.ceil(height / 2 ** level), math.ceil(width / 2 ** level)


def block_cost(block_fn: str, cin: int, filters: int, hw) -> Cost:
    """One residual-family block, with its projection shortcut when `cin` differs."""
    cout = 4 * filters if block_fn == BOTTLENECK else filters
    cost = conv_cost(1, cin, cout, hw) if cin != cout else Cost()
    if block_fn == BOTTLENECK:
        return cost + conv_cost(1, cin, filters, hw) + conv_cost(3, filters, filters, hw) \
            + conv_cost(1, filters, cout, hw)
    return cost + conv_cost(3, cin, filters, hw) + conv_cost(3, filters, filters, hw)


def block_group_cost(block_fn: str, cin: int, filters: int, repeats: int, hw) -> Cost:
    cout = 4 * filters if block_fn == BOTTLENECK else filters
    return block_cost(block_fn, cin, filters, hw) + sum(
        (block_cost(block_fn, cout, filters, hw) for _ in range(repeats - 1)), Cost())


def resample_cost(spec: SpineNetSpec, parent_level: int, parent_fn: str, parent_channels: int,
                  level: int, target_channels: int, height: int, width: int) -> Cost:
    """1x1 down to alpha * C, a strided 3x3 if the parent is larger, 1x1 up to the target."""
    base = parent_channels // 4 if parent_fn == BOTTLENECK else parent_channels
    mid = int(base * spec.scaling.resample_alpha)
    cost = conv_cost(1, parent_channels, mid, level_size(height, width, parent_level))
    if parent_level < level:
        cost += conv_cost(3, mid, mid, level_size(height, width, parent_level + 1))
    return cost + conv_cost(1, mid, target_channels, level_size(height, width, level))


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the cost table: a stem part, a block (with its resamplings) or an endpoint."""

    name: str
    level: int
    block_fn: str
    parents: Tuple[int, ...]
    shape: Tuple[int, int, int]
    cost: Cost


@dataclasses.dataclass(frozen=True)
class BackboneCost:
    rows: Tuple[Row, ...]
    levels: Dict[int, Tuple[int, int, int]]  # output level -> (h, w, endpoints_num_filters)

    @property
    def total(self) -> Cost:
        return sum((r.cost for r in self.rows), Cost())


def backbone_cost(spec: SpineNetSpec, height: int, width: int) -> BackboneCost:
    """Cost of the stem, every block with its resamplings, and the endpoints."""
    s = spec.scaling
    rows: List[Row] = []
    c2 = s.filters(STEM_LEVEL)
    hw2 = level_size(height, width, STEM_LEVEL)
    conv1 = conv_cost(7, 3, STEM_CONV_FILTERS, level_size(height, width, 1))
    rows.append(Row("stem conv", 1, "conv7x7", (), (*level_size(height, width, 1), STEM_CONV_FILTERS),
                    conv1))
    feats = []  # (level, block_fn, channels)
    cin = STEM_CONV_FILTERS
    for k in range(spec.num_stem_blocks):
        cost = block_group_cost(BOTTLENECK, cin, c2, s.block_repeats, hw2)
        cin = 4 * c2
        feats.append((STEM_LEVEL, BOTTLENECK, cin))
        rows.append(Row(f"stem {k}", STEM_LEVEL, BOTTLENECK, (), (*hw2, cin), cost))
    for k, block in enumerate(spec.blocks):
        target = s.block_channels(block.level, block.block_fn)
        hw = level_size(height, width, block.level)
        cost = sum((resample_cost(spec, *feats[p], block.level, target, height, width)
                    for p in block.input_offsets), Cost())
        cost += block_group_cost(block.block_fn, target, s.filters(block.level), s.block_repeats, hw)
        feats.append((block.level, block.block_fn, target))
        rows.append(Row(f"block {k}{' (out)' if block.is_output else ''}", block.level,
                        block.block_fn, block.input_offsets, (*hw, target), cost))
    levels = {}
    for level, k in sorted(spec.output_blocks().items()):
        hw = level_size(height, width, level)
        cost = conv_cost(1, feats[spec.feature_index(k)][2], s.endpoints_num_filters, hw)
        levels[level] = (*hw, s.endpoints_num_filters)
        rows.append(Row(f"endpoint P{level}", level, "conv1x1", (spec.feature_index(k),),
                        levels[level], cost))
    return BackboneCost(tuple(rows), levels)


def retinanet_head_cost(levels: Dict[int, Tuple[int, int, int]], head_convs: int,
                        head_filters: int, num_classes: int, num_anchors: int) -> Cost:
    """Class and box subnets: shared 3x3 convs with bias and per-level BN, 3x3 output convs."""
    cin = next(iter(levels.values()))[2]
    pixels = sum(h * w for h, w, _ in levels.values())
    cost = Cost()
    for outputs in (num_classes * num_anchors, 4 * num_anchors):
        width = cin
        for _ in range(head_convs):
            shared = conv_cost(3, width, head_filters, (pixels, 1), bn=False, bias=True)
            bn = Cost(params=2 * head_filters * len(levels),
                      bn_statistics=2 * head_filters * len(levels))
            cost += shared + bn
            width = head_filters
        cost += conv_cost(3, width, outputs, (pixels, 1), bn=False, bias=True)
    return cost


def classification_head_cost(levels: Dict[int, Tuple[int, int, int]], num_classes: int) -> Cost:
    """Endpoints merged at the finest level and pooled (free), then one linear layer."""
    width = next(iter(levels.values()))[2]
    return Cost(params=width * num_classes + num_classes, flops=width * num_classes)


HEADS = ("retinanet", "classification", "none")


def model_cost(spec: SpineNetSpec, height: int, width: int, head: str = "retinanet",
               head_convs: int = 4, head_filters: int = 256, num_classes: int = 91,
               num_anchors: int = 9) -> Tuple[BackboneCost, Cost]:
    """(backbone cost, head cost) of `spec` with a RetinaNet head, a classification head or none."""
    if head not in HEADS:
        raise ValueError(f"head: {head!r} is not one of {HEADS}")
    backbone = backbone_cost(spec, height, width)
    if head == "retinanet":
        return backbone, retinanet_head_cost(backbone.levels, head_convs, head_filters,
                                             num_classes, num_anchors)
    if head == "classification":
        return backbone, classification_head_cost(backbone.levels, num_classes)
    return backbone, Cost()
