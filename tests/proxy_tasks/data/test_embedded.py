"""The embedded digits-on-photos TFDS datasets: contents, determinism, reuse, no TensorFlow."""

import os
import sys

import numpy as np
import pytest
from PIL import Image

from proxy_tasks.data import (SPLITS, AnchorConfig, EmbeddedConfig, embedded_sources,
                              prepare_embedded, prepare_embedded_classification)
from proxy_tasks.data.render import (MASK_ALPHA, add_clutter, background, compose, digit_alpha,
                                     paste, paste_sticker, render_digit_photo, render_scene,
                                     sticker, tight)
from proxy_tasks.data.sources import load_digits, load_photos, split_digit_indices, split_digits
from proxy_tasks.data.targets import assign_targets

CONFIG = EmbeddedConfig(image_size=64, train_images=24, holdout_images=8, validation_images=8,
                        seed=3)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("embedded")
    prepare_embedded(directory, CONFIG)
    return directory


def _files(builder):
    root = builder.data_dir
    return {name: open(os.path.join(root, name), "rb").read()
            for name in sorted(os.listdir(root)) if ".array_record-" in name}


def test_splits_hold_coco_like_examples(data_dir):
    sources = embedded_sources(data_dir, CONFIG)
    assert {split: len(sources[split]) for split in SPLITS} == {
        "train": 24, "holdout": 8, "validation": 8}
    ids, boxes = [], 0
    for split in SPLITS:
        for record in sources[split]:
            assert record.image.shape == (64, 64, 3) and record.image.dtype == np.uint8
            assert record.boxes.shape == (len(record.labels), 4)
            assert np.all((record.boxes >= 0) & (record.boxes <= 1))
            assert np.all(record.boxes[:, 2:] > record.boxes[:, :2])
            assert set(record.labels.tolist()) <= set(range(10))
            assert np.all(record.areas > 0) and not record.is_crowd.any()
            ids.append(record.image_id)
            boxes += len(record.labels)
    assert len(set(ids)) == 40 and min(ids) > 0
    assert boxes >= 40


def test_same_config_gives_identical_bytes_and_another_seed_does_not(data_dir, tmp_path):
    first = _files(prepare_embedded(data_dir, CONFIG))
    again = _files(prepare_embedded(tmp_path / "again", CONFIG))
    other = _files(prepare_embedded(tmp_path / "other", EmbeddedConfig(
        image_size=64, train_images=24, holdout_images=8, validation_images=8, seed=4)))
    assert len(first) == 3 and first == again
    assert all(first[name] != other[name] for name in first)


def test_built_once_then_reused(data_dir):
    builder = prepare_embedded(data_dir, CONFIG)
    stamps = {name: os.stat(os.path.join(builder.data_dir, name)).st_mtime_ns
              for name in os.listdir(builder.data_dir)}
    again = prepare_embedded(data_dir, CONFIG)
    assert again.data_dir == builder.data_dir
    assert stamps == {name: os.stat(os.path.join(builder.data_dir, name)).st_mtime_ns
                      for name in os.listdir(builder.data_dir)}


def test_reading_needs_no_tensorflow(data_dir):
    embedded_sources(data_dir, CONFIG)["holdout"][0]
    assert "tensorflow" not in sys.modules


def test_splits_draw_on_disjoint_digit_samples_with_every_class():
    labels = load_digits()[1]
    chosen = [split_digit_indices(CONFIG, split) for split in SPLITS]
    assert sum(len(c) for c in chosen) == len(labels) == 1797
    assert len(np.unique(np.concatenate(chosen))) == 1797
    assert [len(c) for c in chosen] == [1078, 360, 359]
    assert all(set(labels[c]) == set(range(10)) for c in chosen)


def test_object_sizes_span_four_octaves_and_every_level_gets_positives():
    config = EmbeddedConfig(image_size=512, max_distractors=0)
    assert config.octaves == 4.0
    digits, labels = split_digits(config, "train")
    anchor_config = AnchorConfig()
    anchors = anchor_config.anchors(512)
    level_of = np.repeat(np.arange(3, 8), [9 * (512 // 2 ** l) ** 2 for l in range(3, 8)])
    levels, long_sides, photos = set(), [], load_photos(1024)
    for i in range(10):  # 512 px scenes take about a second each
        scene = render_scene(np.random.default_rng([0, i]), photos, digits, labels, config)
        classes, _ = assign_targets(anchors, scene.boxes, scene.labels)
        levels |= set(level_of[classes >= 0].tolist())
        long_sides += np.max(scene.boxes[:, 2:] - scene.boxes[:, :2], 1).tolist()
    assert levels == {3, 4, 5, 6, 7}
    assert min(long_sides) <= 512 / 12 and max(long_sides) >= 512 * 0.75


def test_occluded_digits_are_dropped_not_moved():
    digits, labels = split_digits(CONFIG, "train")
    kept = {}
    for min_visible in (0.5, 1.0):
        config = EmbeddedConfig(image_size=64, min_visible=min_visible, max_objects=8)
        kept[min_visible] = [render_scene(np.random.default_rng([1, i]), load_photos(128),
                                          digits, labels, config) for i in range(20)]
    strict, loose = 0, 0
    for a, b in zip(kept[1.0], kept[0.5]):
        assert np.array_equal(a.image, b.image)
        assert {tuple(box) for box in a.boxes} <= {tuple(box) for box in b.boxes}
        strict, loose = strict + len(a.boxes), loose + len(b.boxes)
    assert strict < loose


def test_clutter_copes_with_one_pixel_wide_digits():
    digits = np.zeros((1, 8, 8), np.float32)
    digits[0, :, 3] = 1.0  # a '1' one column wide
    config = EmbeddedConfig(image_size=64, max_distractors=20)
    canvas = np.zeros((64, 64, 3), np.float32)
    for seed in range(10):
        add_clutter(np.random.default_rng(seed), canvas, digits, config)
    assert canvas.any()


@pytest.mark.parametrize("height, width", [(8, 5), (25, 14), (40, 23), (128, 97)])
def test_sticker_outline_grows_the_ink_by_a_sixteenth_of_the_long_side(height, width):
    ink, outline = sticker(tight(load_digits()[0][0]), height, width)
    grow = max(1, round(max(height, width) / 16))
    assert ink.shape == outline.shape == (height, width)
    assert ink.dtype == outline.dtype == np.float32
    assert np.all(outline >= ink)

    def extent(alpha):
        mask = alpha > MASK_ALPHA
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        return np.array([rows[0], cols[0], rows[-1], cols[-1]])

    assert extent(outline)[:2].min() == 0  # the outline fills the box it was given
    assert np.array_equal(extent(outline), extent(ink) + [-grow, -grow, grow, grow])


@pytest.mark.parametrize("height, width, shape", [
    (3, 48, (7, 48)),  # grow 3 leaves no row for ink: one, with 3 rows of outline either side
    (48, 3, (48, 7)),
    (2, 2, (3, 3)),  # grow 1: one ink pixel, 1 of outline around
])
def test_a_sticker_too_thin_for_its_outline_keeps_one_ink_row_or_column(height, width, shape):
    ink, outline = sticker(tight(load_digits()[0][0]), height, width)
    assert ink.shape == outline.shape == shape


def test_digit_alpha_sharpens_with_a_smoothstep_from_0_3_to_0_75():
    # At its own size a digit is not resampled. Alpha is 0 up to 0.3 and 1 from 0.75, and
    # 3t^2 - 2t^3 of t = (v - 0.3) / 0.45 between: t = 0.2 at 0.39 (0.104), 0.5 at 0.525 (0.5).
    digit = np.array([[0.0, 0.3, 0.39, 0.525, 0.75, 1.0]], np.float32)
    np.testing.assert_allclose(digit_alpha(digit, 1, 6), [[0, 0, 0.104, 0.5, 1, 1]], atol=1e-6)


def test_tight_crops_to_the_rows_and_columns_with_ink():
    digit = np.zeros((8, 8), np.float32)
    digit[2, 3] = digit[4, 5] = 0.5
    np.testing.assert_array_equal(tight(digit), digit[2:5, 3:6])


def test_digits_are_light_ink_on_a_dark_outline():
    config = EmbeddedConfig(image_size=128, max_distractors=0, max_objects=1,
                            min_object_fraction=0.5)
    digits, labels = split_digits(config, "train")
    for i in range(5):
        scene = render_scene(np.random.default_rng([2, i]), load_photos(256), digits, labels,
                             config)
        top, left, bottom, right = scene.boxes[0].astype(int)
        inside = scene.image[top:bottom, left:right].astype(int).sum(-1)
        # The box is the outline's: each edge holds a pixel at least half outline (ink 0-64 per
        # channel) over the photo, so at most 160 per channel; the ink within is 176 or more.
        edges = (inside[0], inside[-1], inside[:, 0], inside[:, -1])
        assert all(edge.min() <= 3 * 160 for edge in edges)
        assert inside.max() >= 3 * 176


class _FixedColour:
    """A stand-in generator whose uniform draw is always the colour (100, 120, 140), mean 120."""

    def uniform(self, low, high, size):
        return np.array([100.0, 120.0, 140.0])


@pytest.mark.parametrize("under, expected", [
    (40, [100, 120, 140]),  # 80 from the colour's mean: contrast enough, kept
    (200, [100, 120, 140]),
    (150, [25, 30, 35]),  # under 80 over a light patch: darkened to a quarter
    (128, [25, 30, 35]),  # 128 is light
    (127, [216.25, 221.25, 226.25]),  # over a dark one (127 is dark): 3/4 of the way to white
    (100, [216.25, 221.25, 226.25]),
])
def test_clutter_ink_contrasts_with_the_pixels_it_covers(under, expected):
    canvas = np.full((4, 4, 3), under, np.float32)
    paste(_FixedColour(), canvas, np.ones((2, 2), np.float32), 1, 1)
    np.testing.assert_array_equal(canvas[1:3, 1:3], np.broadcast_to(expected, (2, 2, 3)))
    assert np.count_nonzero(canvas != under) == 12


class _Extremes:
    """A stand-in generator drawing every integer at the top (or bottom) of its range (an empty
    range refused, as numpy does), every uniform at `at` of its range (0 its bottom, 0.5 its
    middle, 1 its top), and `flip` for the flip draw."""

    def __init__(self, highest, flip=0.5, at=0.5):
        self.highest, self.flip, self.at = highest, flip, at

    def integers(self, low, high=None):
        low, high = (0, low) if high is None else (low, high)
        if high <= low:
            raise ValueError(f"empty range [{low}, {high})")
        return high - 1 if self.highest else low

    def random(self):
        return self.flip

    def uniform(self, low, high=1.0, size=None):
        value = (1 - self.at) * low + self.at * high
        return value if size is None else np.full(size, value)


# A 12 x 8 photo of random pixels. With contrast 1 and the middle of the brightness (-40..40)
# and gain (0.8..1.2) ranges the jitter is the identity, so the background is the plain crop.
_PHOTO = np.random.default_rng(1).integers(0, 256, (8, 12, 3)).astype(np.uint8)


@pytest.mark.parametrize("highest, side, top, left", [
    (True, 8, 0, 4),  # the whole short side, at the far right
    (False, 2, 0, 0),  # a quarter of the short side, at the top left
])
def test_background_crops_a_square_of_a_quarter_to_all_of_the_short_side(highest, side, top,
                                                                         left):
    # Resized to its own side the crop is copied pixel for pixel.
    image = background(_Extremes(highest, 0.5), [Image.fromarray(_PHOTO)], side, (1.0, 1.0))
    np.testing.assert_array_equal(image, _PHOTO[top:top + side, left:left + side])


@pytest.mark.parametrize("flip, flipped", [(0.0, True), (0.4999, True), (0.5, False),
                                           (0.9, False)])
def test_background_flips_left_right_half_the_time(flip, flipped):
    image = background(_Extremes(True, flip), [Image.fromarray(_PHOTO)], 8, (1.0, 1.0))
    crop = _PHOTO[:, 4:]
    np.testing.assert_array_equal(image, crop[:, ::-1] if flipped else crop)


def test_background_resizes_bilinearly():
    # A 2 x 2 photo, black left and grey (100) right, upscaled to 4 x 4: output column
    # centres fall at 0.25, 0.75, 1.25, 1.75 of the input, so bilinear weights give
    # 0, 0.25 * 100, 0.75 * 100, 100 (bicubic would overshoot: 0, 21, 79, 109).
    photo = np.zeros((2, 2, 3), np.uint8)
    photo[:, 1] = 100
    image = background(_Extremes(True, 0.5), [Image.fromarray(photo)], 4, (1.0, 1.0))
    np.testing.assert_array_equal(image, np.broadcast_to(
        np.array([0, 25, 75, 100], np.float32)[None, :, None], (4, 4, 3)))


@pytest.mark.parametrize("at, expected", [
    (0.0, [8, 48, 88]),  # contrast 0.5, brightness -40, gains 0.8: ((v - 100) / 2 + 60) * 0.8
    (1.0, [0, 168, 255]),  # contrast 2, brightness 40, gains 1.2: (2v - 60) * 1.2, in 0..255
])
def test_background_scales_contrast_about_the_mean_adds_brightness_then_gains(at, expected):
    # A 4 x 4 photo of rows 0, 100, 200, 100 (mean 100), cropped whole and not flipped.
    photo = np.repeat(np.array([0, 100, 200, 100], np.uint8), 12).reshape(4, 4, 3)
    image = background(_Extremes(True, at=at), [Image.fromarray(photo)], 4, (0.5, 2.0))
    np.testing.assert_allclose(image, np.broadcast_to(
        np.array(expected, np.float32)[[0, 1, 2, 1], None, None], (4, 4, 3)), atol=1e-4)


@pytest.mark.parametrize("at, under, colour", [(0.0, 200, 0), (1.0, 40, 255)])
def test_clutter_ink_is_drawn_from_0_to_255(at, under, colour):
    canvas = np.full((4, 4, 3), under, np.float32)
    paste(_Extremes(True, at=at), canvas, np.ones((2, 2), np.float32), 1, 1)
    np.testing.assert_array_equal(canvas[1:3, 1:3], np.full((2, 2, 3), colour, np.float32))


@pytest.mark.parametrize("at, outline_colour, ink_colour", [(0.0, 0, 176), (1.0, 64, 255)])
def test_stickers_blend_an_outline_of_0_to_64_then_ink_of_176_to_255(at, outline_colour,
                                                                     ink_colour):
    canvas = np.full((4, 4, 3), 100, np.float32)
    outline = np.array([[1, 1], [1, 0.5]], np.float32)
    ink = np.array([[0, 1], [0.5, 0]], np.float32)
    paste_sticker(_Extremes(True, at=at), canvas, ink, outline, 1, 1)
    expected = np.full((4, 4), 100, np.float32)
    expected[1:3, 1:3] = [[outline_colour, ink_colour],
                          [(outline_colour + ink_colour) / 2, (100 + outline_colour) / 2]]
    np.testing.assert_array_equal(canvas, np.repeat(expected[..., None], 3, -1))


@pytest.mark.parametrize("block, fractions, shape", [
    # Every draw at the top of its range: one fragment (max_distractors 1); a window of 2/3 of
    # the digit's rows + 1 (at least 3, at most all), likewise of its columns; a long side of
    # half the image (32 px; 8 px at fractions 1/16 to 1/4), each side at least 2 px; pasted at
    # the bottom right in grey (127.5), which black keeps (a second fragment over it would be
    # darkened to a quarter).
    ((8, 5), (0.25, 1.0), (32, 21)),  # a window of 6 x 4: 32 x 21.3
    ((4, 4), (0.25, 1.0), (32, 32)),  # 3 x 3
    ((8, 1), (1 / 16, 0.25), (8, 2)),  # 6 x 1: 8 x 1.3
    ((1, 8), (1 / 16, 0.25), (2, 8)),  # 1 x 6: 1.3 x 8
])
def test_clutter_pastes_windows_of_digits_at_the_ends_of_their_ranges(block, fractions, shape):
    digits = np.zeros((1, 10, 10), np.float32)
    digits[0, 1:1 + block[0], 1:1 + block[1]] = 1  # a solid block of ink: alpha 1 at any size
    config = EmbeddedConfig(image_size=64, max_distractors=1, min_object_fraction=fractions[0],
                            max_object_fraction=fractions[1])
    canvas = np.zeros((64, 64, 3), np.float32)
    add_clutter(_Extremes(True), canvas, digits, config)
    expected = np.zeros_like(canvas)
    expected[64 - shape[0]:, 64 - shape[1]:] = 127.5
    np.testing.assert_array_equal(canvas, expected)


class _Draws(_Extremes):
    """An `_Extremes` whose integer draws are `draws` in turn, each within its range."""

    def __init__(self, draws):
        super().__init__(True)
        self.draws = list(draws)

    def integers(self, low, high=None):
        top = super().integers(low, high)
        value = self.draws.pop(0)
        assert (0 if high is None else low) <= value <= top
        return value


def test_clutter_skips_a_window_without_ink_and_goes_on():
    digits = np.zeros((1, 8, 8), np.float32)
    digits[0, :3] = 1  # ink in the top three rows and a dot in the bottom left corner
    digits[0, 7, 0] = 1
    config = EmbeddedConfig(image_size=64, max_distractors=2, min_object_fraction=0.25)
    # Two fragments, each drawing its digit, window rows, columns, top and left, and, pasted,
    # its place: the first, a 3 x 3 window at (4, 4), has no ink and is skipped; the second, at
    # (0, 0), all ink, becomes 32 x 32 pixels (a long side of half the image) of grey (127.5)
    # placed at (10, 20).
    rng = _Draws([2, 0, 3, 3, 4, 4, 0, 3, 3, 0, 0, 10, 20])
    canvas = np.zeros((64, 64, 3), np.float32)
    add_clutter(rng, canvas, digits, config)
    expected = np.zeros_like(canvas)
    expected[10:42, 20:52] = 127.5
    np.testing.assert_array_equal(canvas, expected)
    assert not rng.draws


def _draws(objects):
    """A `draw_object` that returns the given (mask, top, left, label) or None in turn."""
    objects = iter(objects)
    return lambda canvas: next(objects)


def _compose(objects, min_visible=0.5):
    config = EmbeddedConfig(image_size=64, min_objects=len(objects), max_objects=len(objects),
                            min_visible=min_visible)
    canvas = np.zeros((64, 64, 3), np.float32)
    return compose(np.random.default_rng(0), canvas, _draws(objects), config)


def test_compose_boxes_are_the_tight_boxes_of_the_pasted_masks():
    # An irregular mask whose first and last rows and columns each hold a single pixel.
    mask = np.zeros((7, 6), bool)
    mask[1, 3] = mask[5, 2] = mask[3, 1] = mask[2, 4] = True
    mask[2:5, 2:4] = True
    rows, cols = np.nonzero(mask)
    scene = _compose([(mask, 10, 20, 7)])
    np.testing.assert_array_equal(scene.boxes, [[10 + rows.min(), 20 + cols.min(),
                                                 10 + rows.max() + 1, 20 + cols.max() + 1]])
    np.testing.assert_array_equal(scene.labels, [7])
    np.testing.assert_array_equal(scene.areas, [mask.sum()])


def test_compose_keeps_an_object_exactly_at_min_visible_and_counts_only_its_pixels():
    # Object 0 (4 pixels) is half covered by object 1 (2 pixels): 2 = 0.5 * 4 visible, kept.
    # Areas count the visible pixels only, never the empty canvas around them.
    square = np.ones((2, 2), bool)
    scene = _compose([(square, 0, 0, 3), (np.ones((1, 2), bool), 0, 0, 4)])
    np.testing.assert_array_equal(scene.boxes, [[0, 0, 2, 2], [0, 0, 1, 2]])
    np.testing.assert_array_equal(scene.labels, [3, 4])
    np.testing.assert_array_equal(scene.areas, [2, 2])
    # A third object covering one more pixel of object 0 leaves it under half: dropped.
    scene = _compose([(square, 0, 0, 3), (np.ones((1, 2), bool), 0, 0, 4),
                      (np.ones((1, 1), bool), 1, 0, 5)])
    np.testing.assert_array_equal(scene.labels, [4, 5])
    np.testing.assert_array_equal(scene.areas, [2, 1])


def test_compose_skips_an_object_that_draws_nothing_and_goes_on():
    scene = _compose([None, (np.ones((3, 2), bool), 5, 6, 9), None])
    np.testing.assert_array_equal(scene.boxes, [[5, 6, 8, 8]])
    np.testing.assert_array_equal(scene.labels, [9])
    np.testing.assert_array_equal(scene.areas, [6])


@pytest.mark.parametrize("objects", [[None], [(np.ones((1, 1), bool), 0, 0, 1)]])
def test_compose_gives_fixed_dtypes_with_or_without_objects(objects):
    scene = _compose(objects)
    assert scene.image.dtype == np.uint8 and scene.boxes.dtype == np.float32
    assert scene.labels.dtype == scene.areas.dtype == np.int64
    assert scene.boxes.shape == (len(scene.labels), 4)


def test_the_photo_digit_spans_40_to_90_percent_of_the_image():
    config = EmbeddedConfig(image_size=64, max_distractors=0)
    digits, _ = split_digits(config, "train")
    photos, sides = load_photos(128), []
    for i in range(20):
        image, _ = render_digit_photo(np.random.default_rng([3, i]), photos, digits, config)
        # The background is drawn first from the seed; with no clutter the rest is the digit.
        ground = background(np.random.default_rng([3, i]), photos, 64, config.background_contrast)
        rows, cols = np.nonzero((image != np.round(ground)).any(-1))
        sides.append(max(rows.max() - rows.min(), cols.max() - cols.min()) + 1)
    assert round(0.4 * 64) <= min(sides) and max(sides) <= round(0.9 * 64)
    assert max(sides) - min(sides) >= 20


def test_classification_variant(data_dir):
    builder = prepare_embedded_classification(data_dir, CONFIG)
    source = builder.as_data_source("validation")
    labels = [int(source[i]["label"]) for i in range(len(source))]
    assert len(labels) == 8 and set(labels) <= set(range(10))
    assert source[0]["image"].shape == (64, 64, 3)


@pytest.mark.parametrize("kwargs, message", [
    ({"image_size": 16}, "image_size=16"),
    ({"train_images": 0}, "train_images=0"),
    ({"image_size": 32, "min_object_fraction": 0.0625}, "min_object_fraction=0.0625"),
    ({"digit_fractions": (0.5, 0.5, 0.5)}, "digit_fractions=(0.5, 0.5, 0.5)"),
    ({"min_objects": 3, "max_objects": 2}, "min_objects/max_objects=(3, 2)"),
    ({"background_contrast": (0.5, 0.2)}, "background_contrast=(0.5, 0.2)"),
])
def test_bad_config_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        EmbeddedConfig(**kwargs)
