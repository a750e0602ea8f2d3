"""Proxy-task configs: one frozen dataclass whose defaults are the `default` preset, the other
presets as differences from it, and `key=value` overrides of its fields."""

from __future__ import annotations

import ast
import dataclasses
import os
from typing import Dict, Iterable, Optional

from search_space.spec import Scaling

TASKS = ("detection", "classification")
DATASETS = ("embedded", "coco")
DTYPES = ("float32", "bfloat16")
SCENES = ("digits", "shapes")  # what the embedded datasets show (proxy_tasks/data)


def default_data_dir() -> str:
    return os.environ.get("NAS_DATA_DIR", os.path.expanduser("~/.cache/spinenet-nas/datasets"))


@dataclasses.dataclass(frozen=True)
class ProxyConfig:
    """Everything a proxy trial depends on besides the architecture and the seed.

    The defaults are the `default` preset, the proxy a search trains on unless told otherwise;
    the sections cited are bench/results/proxy_learning.md's, which hold the measurements."""

    task: str = "detection"
    dataset: str = "embedded"
    data_dir: str = ""  # empty: $NAS_DATA_DIR or ~/.cache/spinenet-nas/datasets
    # Shapes, not digits: the from-scratch SpineNet-49 learns them (section 12). Embedded only.
    scenes: str = "shapes"
    train_images: int = 1024
    holdout_images: int = 256
    data_seed: int = 0
    # 96 px holds the shapes' 6-96 px over four octaves.
    image_size: int = 96
    # 768 steps: what the proxy's AP gains most from is steps (section 13).
    epochs: int = 6
    batch_size: int = 8
    eval_batch_size: int = 32
    # Adam (below) at 1e-2 learnt faster than at 3e-3 or 3e-2, and than SGD (section 12).
    learning_rate: float = 0.01
    warmup_steps: int = 50
    schedule: str = "cosine"
    optimizer: str = "adam"
    momentum: float = 0.9  # SGD's momentum; Adam's b1
    weight_decay: float = 4e-5
    clip_norm: float = 10.0
    # The proxy architecture around the searched blocks: the paper's proxy scaling.
    filter_size_scale: float = 0.25
    resample_alpha: float = 0.25
    endpoints_num_filters: int = 64
    block_repeats: int = 1
    # One 32-wide conv before the outputs learnt faster than two, four 64-wide or none (section 12).
    head_convs: int = 1
    head_filters: int = 32
    # Anchors twice their level's stride: about 5 positive anchors an object, not 1.
    anchor_size: float = 2.0
    activation: str = "relu"
    norm: str = "batch"  # or "group": GroupNorm, independent of the batch
    # Short proxies need BN statistics that catch up within a few hundred steps.
    bn_momentum: float = 0.9
    # Each residual branch's last BN starts at scale 0, so every block starts as its shortcut
    # (Goyal et al. 2017): without it a from-scratch proxy's gradients explode in its first steps.
    zero_init_residual: bool = True
    dtype: str = "float32"
    # Detections kept for the AP: scores below this are dropped before NMS.
    score_threshold: float = 0.05
    # Trial mechanics.
    eval_every_epoch: bool = False
    checkpoint_dir: Optional[str] = None

    def __post_init__(self):
        choices = {"task": TASKS, "dataset": DATASETS, "dtype": DTYPES, "scenes": SCENES,
                   "schedule": ("cosine", "step"), "optimizer": ("sgd", "adam"),
                   "norm": ("batch", "group"),
                   "activation": ("relu", "swish")}
        for field, allowed in choices.items():
            if getattr(self, field) not in allowed:
                raise ValueError(f"{field}: {getattr(self, field)!r} is not one of {allowed}")
        positive = ("train_images", "holdout_images", "image_size", "epochs", "batch_size",
                    "eval_batch_size", "learning_rate", "filter_size_scale", "resample_alpha",
                    "endpoints_num_filters", "block_repeats", "head_filters", "anchor_size")
        for field in positive:
            if not getattr(self, field) > 0:
                raise ValueError(f"{field}: must be positive, got {getattr(self, field)!r}")
        if not 0 <= self.bn_momentum < 1:
            raise ValueError(f"bn_momentum: must be in [0, 1), got {self.bn_momentum!r}")
        for field in ("warmup_steps", "momentum", "weight_decay", "clip_norm", "head_convs",
                      "data_seed"):
            if getattr(self, field) < 0:
                raise ValueError(f"{field}: must be >= 0, got {getattr(self, field)!r}")
        if self.task == "classification" and self.scenes != "digits":
            raise ValueError(f"scenes: the classification proxy reads only the digits, got "
                             f"{self.scenes!r}")
        if self.task == "classification" and self.dataset != "embedded":
            raise ValueError(f"dataset: the classification proxy reads only the embedded dataset, "
                             f"got {self.dataset!r}")
        self.scaling  # validates the scaling fields

    @property
    def scaling(self) -> Scaling:
        return Scaling(self.endpoints_num_filters, self.filter_size_scale, self.resample_alpha,
                       self.block_repeats)

    @property
    def data_root(self) -> str:
        return self.data_dir or default_data_dir()


DEFAULT = ProxyConfig()

# Seconds a trial, for the tests.
TINY = dataclasses.replace(
    DEFAULT,
    # A few images, one epoch, one warm-up step.
    train_images=16, holdout_images=8, eval_batch_size=8, epochs=1, warmup_steps=1,
    # A small model, quick to compile: 64 px, an eighth of the width, 16-wide endpoints and head.
    image_size=64, filter_size_scale=0.125, endpoints_num_filters=16, head_filters=16,
    # Digits: the classification proxy reads only them, and the tests run it on tiny.
    scenes="digits",
    # Untuned, as the mechanics the tests check need no learning: SGD, plain init, anchors of 1.
    optimizer="sgd", learning_rate=0.08, zero_init_residual=False, anchor_size=1.0,
)

# The paper's proxy: COCO at 512 px, SpineNet-49 at the scaling above, 5 epochs.
PAPER = dataclasses.replace(
    DEFAULT,
    dataset="coco", image_size=512, epochs=5, batch_size=64, eval_batch_size=64,
    # Vertex AI NAS's SGD settings.
    optimizer="sgd", learning_rate=0.08, warmup_steps=500, schedule="step",
    # Model Garden's RetinaNet at the proxy's width: a 4 x 64 head, anchors of 3, BN momentum
    # 0.99, no zero-initialized residuals.
    head_convs=4, head_filters=64, anchor_size=3.0, bn_momentum=0.99, zero_init_residual=False,
    # Unused on COCO; the value paper runs recorded, and their code version hashes every field.
    scenes="digits",
)

PRESETS: Dict[str, ProxyConfig] = {"tiny": TINY, "default": DEFAULT, "paper": PAPER}


def get_preset(name: str) -> ProxyConfig:
    if name not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def _parse_value(text: str, current):
    """A `--set` value as the field's type: literals only, strings taken as they are."""
    if isinstance(current, str) or current is None:
        if current is None and text.lower() in ("none", "null", ""):
            return None
        return text
    if isinstance(current, bool):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise ValueError(f"expected a {type(current).__name__}, got {text!r}") from None
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not type(current):
        raise ValueError(f"expected a {type(current).__name__}, got {text!r}")
    return value


def as_assignment(key: str, value) -> str:
    """`value` of the field `key` as the `key=value` text that `with_overrides` reads."""
    if value is None:
        return f"{key}=none"
    if isinstance(value, bool):
        return f"{key}={str(value).lower()}"
    return f"{key}={value}"


def with_overrides(config: ProxyConfig, assignments: Iterable[str]) -> ProxyConfig:
    """`config` with each `key=value` applied; unknown keys and bad values name the key."""
    fields = {f.name for f in dataclasses.fields(ProxyConfig)}
    changes = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep:
            raise ValueError(f"--set {assignment!r}: expected key=value")
        if key not in fields:
            raise ValueError(f"--set {key}: unknown key; keys: {', '.join(sorted(fields))}")
        try:
            changes[key] = _parse_value(text.strip(), getattr(config, key))
        except ValueError as err:
            raise ValueError(f"--set {key}: {err}") from None
    return dataclasses.replace(config, **changes)
