"""Pure image synthesis: ten crisp geometric shapes in saturated colours on noisy flat
backgrounds with stroke clutter.

A from-scratch detector learns these within the proxy's few hundred steps where it does not
learn upscaled handwritten digits (bench/results/proxy_learning.md). The colour is drawn
independently of the class, so only the form tells the classes apart; the clutter is open
strokes, never one of the shapes. Every function draws only from the `rng` it is given.
"""

from __future__ import annotations

import colorsys
from typing import Tuple

import numpy as np
from PIL import Image, ImageDraw

from proxy_tasks.data.config import EmbeddedConfig
from proxy_tasks.data.render import MASK_ALPHA, Scene, blend, compose

SHAPES = ("circle", "ring", "square", "outlined square", "triangle", "outlined triangle", "plus",
          "cross", "diamond", "star")
# Shapes are drawn this many times larger, then box-filtered down: smooth, exact edges.
SUPERSAMPLE = 4
# Outlines, bars and strokes are this share of the shape's short side thick.
STROKE = 0.18
MIN_CONTRAST = 60  # grey levels between a shape's colour and the background's


def _star(w: float, h: float):
    """A five-pointed star's vertices, stretched to touch all four sides of the w x h box."""
    angles = np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.4)
    x, y = radii * np.cos(angles), -radii * np.sin(angles)
    x, y = (x - x.min()) / np.ptp(x) * w, (y - y.min()) / np.ptp(y) * h
    return list(zip(x, y))


def shape_alpha(label: int, height: int, width: int) -> np.ndarray:
    """The [0, 1] coverage of shape `label` filling a height x width box."""
    w, h = width * SUPERSAMPLE, height * SUPERSAMPLE
    t = max(SUPERSAMPLE, round(STROKE * min(w, h)))
    image = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(image)
    name, box = SHAPES[label], (0, 0, w - 1, h - 1)
    triangle = [(w / 2, 0), (w - 1, h - 1), (0, h - 1)]
    if name in ("circle", "ring"):
        draw.ellipse(box, fill=255 if name == "circle" else None, outline=255,
                     width=t if name == "ring" else 1)
    elif name in ("square", "outlined square"):
        draw.rectangle(box, fill=255 if name == "square" else None, outline=255,
                       width=t if name == "outlined square" else 1)
    elif name in ("triangle", "outlined triangle"):
        if name == "triangle":
            draw.polygon(triangle, fill=255)
        else:
            draw.line(triangle + [triangle[0], triangle[1]], fill=255, width=t, joint="curve")
    elif name == "plus":
        draw.rectangle(((w - t) / 2, 0, (w + t) / 2, h - 1), fill=255)
        draw.rectangle((0, (h - t) / 2, w - 1, (h + t) / 2), fill=255)
    elif name == "cross":
        draw.line((0, 0, w - 1, h - 1), fill=255, width=t)
        draw.line((0, h - 1, w - 1, 0), fill=255, width=t)
    elif name == "diamond":
        draw.polygon([(w / 2, 0), (w - 1, h / 2), (w / 2, h - 1), (0, h / 2)], fill=255)
    else:
        draw.polygon(_star(w - 1, h - 1), fill=255)
    alpha = np.asarray(image, np.float32).reshape(height, SUPERSAMPLE, width, SUPERSAMPLE)
    return alpha.mean(axis=(1, 3)) / 255


def flat_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A flat random colour with a gentle linear gradient and pixel noise: float32."""
    colour = rng.uniform(0, 255, 3)
    slope = rng.uniform(-40, 40, 2)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    shade = slope[0] * ramp[:, None] + slope[1] * ramp[None, :]
    noise = rng.normal(0, rng.uniform(4, 16), (size, size, 3))
    image = (colour + shade[..., None] + noise).astype(np.float32)
    return np.clip(image, 0, 255, out=image)


def saturated_colour(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A saturated colour whose grey level differs from `under`'s mean by `MIN_CONTRAST`
    (bright or dark, whichever is reachable)."""
    hue = rng.uniform()
    grey = float(under.mean())
    for value in (rng.uniform(0.75, 1.0), rng.uniform(0.1, 0.35)):
        colour = 255 * np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.8, 1.0), value))
        if abs(colour.mean() - grey) >= MIN_CONTRAST:
            return colour.astype(np.float32)
    return np.full(3, 255.0 if grey < 128 else 0.0, np.float32)


def add_strokes(rng: np.random.Generator, canvas: np.ndarray, config: EmbeddedConfig) -> None:
    """Up to `max_distractors` open strokes (polylines of 2-4 segments, 1-3 px wide) in random
    colours, in place: edges and colour a detector must learn to ignore."""
    size = config.image_size
    for _ in range(int(rng.integers(config.max_distractors + 1))):
        points = [tuple(rng.uniform(0, size, 2))]
        for _ in range(int(rng.integers(2, 5))):
            step = rng.normal(0, size / 6, 2)
            points.append(tuple(np.clip(np.add(points[-1], step), 0, size - 1)))
        layer = Image.new("L", (size, size), 0)
        ImageDraw.Draw(layer).line(points, fill=255, width=int(rng.integers(1, 4)))
        blend(canvas, np.asarray(layer, np.float32) / 255, rng.uniform(0, 255, 3).astype(np.float32))


def _box_shape(rng: np.random.Generator, config: EmbeddedConfig) -> Tuple[int, int]:
    """(height, width): a log-uniform long side, the short side 70-100% of it."""
    size = config.image_size
    long_side = size * np.exp(rng.uniform(np.log(config.min_object_fraction),
                                          np.log(config.max_object_fraction)))
    short_side = long_side * rng.uniform(0.7, 1.0)
    sides = [int(np.clip(round(long_side), 2, size)), int(np.clip(round(short_side), 2, size))]
    return tuple(sides) if rng.random() < 0.5 else tuple(sides[::-1])


def render_shapes_scene(rng: np.random.Generator, config: EmbeddedConfig) -> Scene:
    """A detection example: a noisy flat background, stroke clutter, then shapes drawn in
    turn. A shape's mask and box are where it covers at least half a pixel."""
    size = config.image_size
    canvas = flat_background(rng, size)
    add_strokes(rng, canvas, config)

    def draw_shape(canvas):
        label = int(rng.integers(len(SHAPES)))
        h, w = _box_shape(rng, config)
        alpha = shape_alpha(label, h, w)
        top, left = int(rng.integers(size - h + 1)), int(rng.integers(size - w + 1))
        region = canvas[top:top + h, left:left + w]
        blend(region, alpha, saturated_colour(rng, region))
        mask = alpha > MASK_ALPHA
        return (mask, top, left, label) if mask.any() else None

    return compose(rng, canvas, draw_shape, config)
