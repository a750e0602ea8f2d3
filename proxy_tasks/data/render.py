"""Pure image synthesis: outlined digits pasted onto jittered photo crops, with clutter.

Every function draws only from the `rng` it is given, so an example is a function of its seed.
Boxes are `(ymin, xmin, ymax, xmax)` in pixels, edges exclusive of the last row/column + 1.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageFilter

from proxy_tasks.data.config import EmbeddedConfig

# A digit pixel belongs to the digit's mask (for boxes, areas, occlusion) above this alpha.
MASK_ALPHA = 0.5


@dataclasses.dataclass(frozen=True)
class Scene:
    """A rendered detection example: uint8 image, boxes [N, 4], labels [N], mask areas [N]."""

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    areas: np.ndarray


# Draws one object into a canvas: (its mask, top, left, label), or None when nothing is visible.
DrawObject = Callable[[np.ndarray], Optional[Tuple[np.ndarray, int, int, int]]]


def background(rng: np.random.Generator, photos: Sequence[Image.Image], size: int,
               contrast_range: Tuple[float, float]) -> np.ndarray:
    """A random square crop of a random photo, resized, flipped and colour-jittered, its
    contrast scaled by a factor drawn from `contrast_range`: float32."""
    photo = photos[rng.integers(len(photos))]
    short = min(photo.size)
    side = int(rng.integers(short // 4, short + 1))
    top = int(rng.integers(photo.height - side + 1))
    left = int(rng.integers(photo.width - side + 1))
    image = np.array(photo.resize((size, size), Image.BILINEAR,
                                  box=(left, top, left + side, top + side)), np.float32)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    mean = image.mean()
    contrast, brightness = rng.uniform(*contrast_range), rng.uniform(-40, 40)
    gains = rng.uniform(0.8, 1.2, 3).astype(np.float32)
    # ((image - mean) * contrast + mean + brightness) * gains as one affine map per channel, in
    # float32 (the dtype of the gains and the mean; contrast and brightness are Python floats).
    image *= contrast * gains
    image += (mean * (1 - contrast) + brightness) * gains
    return np.clip(image, 0, 255, out=image)


def digit_alpha(digit: np.ndarray, height: int, width: int) -> np.ndarray:
    """A [0, 1] digit image smoothly upscaled (bicubic) to [height, width], edges sharpened.

    A smoothstep from 0.3 to 0.75 turns the blur of an 8x8 upscale into stroke-like edges.
    """
    resized = np.asarray(Image.fromarray(digit.astype(np.float32)).resize((width, height),
                                                                          Image.BICUBIC))
    t = np.clip((resized - 0.3) / 0.45, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def tight(digit: np.ndarray) -> np.ndarray:
    """The digit cropped to the rows and columns that have ink."""
    rows, cols = np.flatnonzero(digit.max(1) > 0), np.flatnonzero(digit.max(0) > 0)
    return digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _ink(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A random colour that contrasts with the mean of the pixels it will cover."""
    colour = rng.uniform(0, 255, 3).astype(np.float32)
    if abs(colour.mean() - under.mean()) < 80:
        colour = colour * 0.25 if under.mean() > 127 else 255 - (255 - colour) * 0.25
    return colour


def blend(region: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """Blends `colour` into `region` with opacity `alpha`, in place."""
    a = alpha[..., None]
    region[...] = region * (1 - a) + colour * a


def paste(rng: np.random.Generator, canvas: np.ndarray, alpha: np.ndarray, top: int,
          left: int) -> None:
    """Blends `alpha` in a contrasting ink colour into `canvas` at (top, left), in place."""
    h, w = alpha.shape
    region = canvas[top:top + h, left:left + w]
    blend(region, alpha, _ink(rng, region))


def sticker(digit: np.ndarray, height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """(ink, outline) alphas of a digit drawn in light ink on a dark outline, both of shape
    about [height, width]: the outline is the ink grown by a sixteenth of the long side.

    A fixed light-on-dark look reads the same on any photo: a plain CNN learns the classes far
    sooner than in a random ink colour of either polarity (bench/results/proxy_learning.md, 6).
    """
    grow = max(1, round(max(height, width) / 16))
    ink = np.pad(digit_alpha(digit, max(1, height - 2 * grow), max(1, width - 2 * grow)), grow)
    outline = Image.fromarray(np.round(ink * 255).astype(np.uint8)).filter(
        ImageFilter.MaxFilter(2 * grow + 1))
    return ink, np.asarray(outline, np.float32) / 255


def paste_sticker(rng: np.random.Generator, canvas: np.ndarray, ink: np.ndarray,
                  outline: np.ndarray, top: int, left: int) -> None:
    """Blends a dark outline, then light ink over it, into `canvas` at (top, left), in place."""
    h, w = ink.shape
    region = canvas[top:top + h, left:left + w]
    for alpha, colour in ((outline, rng.uniform(0, 64, 3)), (ink, rng.uniform(176, 255, 3))):
        blend(region, alpha, colour.astype(np.float32))


def _place(rng: np.random.Generator, size: int, h: int, w: int) -> Tuple[int, int]:
    return int(rng.integers(size - h + 1)), int(rng.integers(size - w + 1))


def _object_shape(rng: np.random.Generator, digit: np.ndarray, config: EmbeddedConfig,
                  fractions: Tuple[float, float]) -> Tuple[int, int]:
    """(height, width) with the digit's aspect and a log-uniform long side, each at least 2.
    No side exceeds the image: `fractions` are at most 1."""
    long_side = config.image_size * np.exp(rng.uniform(np.log(fractions[0]), np.log(fractions[1])))
    scale = long_side / max(digit.shape)
    return max(2, round(digit.shape[0] * scale)), max(2, round(digit.shape[1] * scale))


def add_clutter(rng: np.random.Generator, canvas: np.ndarray, digits: np.ndarray,
                config: EmbeddedConfig) -> None:
    """Pastes up to `max_distractors` unlabelled stroke fragments (parts of digits) in one
    contrasting ink and no outline, in place."""
    for _ in range(int(rng.integers(config.max_distractors + 1))):
        digit = tight(digits[rng.integers(len(digits))])
        # A window of at least 3 x 3 digit pixels holds stroke structure, not a solid block.
        # (Capped by the digit's own size: a '1' may be a single column wide.)
        rows = min(digit.shape[0], int(rng.integers(3, max(4, 2 * digit.shape[0] // 3 + 2))))
        cols = min(digit.shape[1], int(rng.integers(3, max(4, 2 * digit.shape[1] // 3 + 2))))
        top = int(rng.integers(digit.shape[0] - rows + 1))
        left = int(rng.integers(digit.shape[1] - cols + 1))
        fragment = digit[top:top + rows, left:left + cols]
        if fragment.max() <= 0:
            continue
        h, w = _object_shape(rng, fragment, config,
                             (config.min_object_fraction, config.max_object_fraction))
        paste(rng, canvas, digit_alpha(fragment, h, w), *_place(rng, config.image_size, h, w))


def compose(rng: np.random.Generator, canvas: np.ndarray, draw_object: DrawObject,
            config: EmbeddedConfig) -> Scene:
    """Draws `min_objects..max_objects` objects into `canvas` in turn (later ones occlude
    earlier), each by `draw_object(canvas)` -> (mask, top, left, label) or None; an object
    whose visible mask is under `min_visible` of its full mask is left unlabelled."""
    size = config.image_size
    owner = np.full((size, size), -1, np.int32)
    placed = []
    for k in range(int(rng.integers(config.min_objects, config.max_objects + 1))):
        drawn = draw_object(canvas)
        if drawn is None:
            continue
        mask, top, left, label = drawn
        owner[top:top + mask.shape[0], left:left + mask.shape[1]][mask] = k
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        box = (top + rows[0], left + cols[0], top + rows[-1] + 1, left + cols[-1] + 1)
        placed.append((k, box, label, int(mask.sum())))
    visible = np.bincount(owner.ravel() + 1, minlength=config.max_objects + 2)[1:]
    kept = [(box, label, int(visible[k])) for k, box, label, full in placed
            if visible[k] >= config.min_visible * full]
    return Scene(image=np.round(canvas).astype(np.uint8),
                 boxes=np.array([b for b, _, _ in kept], np.float32).reshape(-1, 4),
                 labels=np.array([l for _, l, _ in kept], np.int64),
                 areas=np.array([a for _, _, a in kept], np.int64))


def render_scene(rng: np.random.Generator, photos: Sequence[Image.Image], digits: np.ndarray,
                 labels: np.ndarray, config: EmbeddedConfig) -> Scene:
    """A detection example: clutter, then outlined digits pasted in turn. A digit's mask and box
    are its outline's."""
    size = config.image_size
    canvas = background(rng, photos, size, config.background_contrast)
    add_clutter(rng, canvas, digits, config)

    def draw_digit(canvas):
        index = int(rng.integers(len(digits)))
        digit = tight(digits[index])
        h, w = _object_shape(rng, digit, config,
                             (config.min_object_fraction, config.max_object_fraction))
        ink, outline = sticker(digit, h, w)
        top, left = _place(rng, size, *ink.shape)
        paste_sticker(rng, canvas, ink, outline, top, left)
        mask = outline > MASK_ALPHA
        return (mask, top, left, int(labels[index])) if mask.any() else None

    return compose(rng, canvas, draw_digit, config)


def render_digit_photo(rng: np.random.Generator, photos: Sequence[Image.Image],
                       digits: np.ndarray, config: EmbeddedConfig) -> Tuple[np.ndarray, int]:
    """A classification example: one outlined digit of 40-90% of the image on a cluttered photo
    crop.

    Returns (uint8 image, index of the digit used).
    """
    canvas = background(rng, photos, config.image_size, config.background_contrast)
    add_clutter(rng, canvas, digits, config)
    index = int(rng.integers(len(digits)))
    digit = tight(digits[index])
    ink, outline = sticker(digit, *_object_shape(rng, digit, config, (0.4, 0.9)))
    paste_sticker(rng, canvas, ink, outline, *_place(rng, config.image_size, *ink.shape))
    return np.round(canvas).astype(np.uint8), index
