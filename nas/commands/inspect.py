"""`nas inspect`: exact parameters and FLOPs of a built-in model or a spec file."""

from __future__ import annotations

import dataclasses
import json

from nas.commands.common import resolve_model
from search_space import BUILTIN_MODELS, SpecError
from search_space.cost import HEADS, model_cost

SCALING_FLAGS = ("filter_size_scale", "resample_alpha", "block_repeats", "endpoints_num_filters")


def register(sub) -> None:
    p = sub.add_parser("inspect", help="count parameters and FLOPs of a model or spec file")
    p.add_argument("model", metavar="MODEL_OR_SPEC_FILE",
                   help=f"one of {', '.join(BUILTIN_MODELS)}, or a spec file (JSON or Model Garden)")
    p.add_argument("--input-size", type=int, help="square input size in pixels")
    p.add_argument("--height", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--num-classes", type=int, default=91)
    p.add_argument("--num-anchors", type=int, default=9)
    p.add_argument("--head", choices=HEADS, default="retinanet")
    p.add_argument("--head-convs", type=int)
    p.add_argument("--head-filters", type=int)
    p.add_argument("--filter-size-scale", type=float)
    p.add_argument("--resample-alpha", type=float)
    p.add_argument("--block-repeats", type=int)
    p.add_argument("--endpoints-num-filters", type=int)
    p.add_argument("--build", action="store_true",
                   help="also build the Flax model (shapes only, no memory) and count its parameters")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _positive(args, flag: str) -> None:
    value = getattr(args, flag)
    if value is not None and not value > 0:
        raise SpecError(f"--{flag.replace('_', '-')}: must be positive, got {value}")


def report(args) -> dict:
    for flag in ("input_size", "height", "width", "num_classes", "num_anchors", "head_convs",
                 "head_filters", *SCALING_FLAGS):
        _positive(args, flag)
    spec, size = resolve_model(args.model)
    overrides = {f: getattr(args, f) for f in SCALING_FLAGS if getattr(args, f) is not None}
    spec = spec.with_scaling(dataclasses.replace(spec.scaling, **overrides))
    square = args.input_size or size.input_size
    height, width = args.height or square, args.width or square
    head_convs = args.head_convs or size.head_convs
    head_filters = args.head_filters or size.head_filters
    backbone, head = model_cost(spec, height, width, args.head, head_convs, head_filters,
                                args.num_classes, args.num_anchors)
    total = backbone.total + head
    built = built_params(spec, args, head_convs, head_filters, height, width) if args.build else None
    return {
        "model": args.model,
        "input": [height, width],
        "scaling": dataclasses.asdict(spec.scaling),
        "head": args.head,
        "head_convs": head_convs if args.head == "retinanet" else None,
        "head_filters": head_filters if args.head == "retinanet" else None,
        "num_classes": args.num_classes if args.head != "none" else None,
        "num_anchors": args.num_anchors if args.head == "retinanet" else None,
        "backbone_params": backbone.total.params,
        "head_params": head.params,
        "total_params": total.params,
        "bn_statistics": total.bn_statistics,
        **({"built_params": built} if args.build else {}),
        "backbone_flops": backbone.total.flops,
        "head_flops": head.flops,
        "total_flops": total.flops,
        "levels": {str(level): list(shape) for level, shape in backbone.levels.items()},
        "_rows": backbone.rows,
    }


def built_params(spec, args, head_convs: int, head_filters: int, height: int, width: int) -> int:
    """Trainable parameters of the Flax model as built (traced with jax.eval_shape)."""
    from proxy_tasks.models import ClassificationConfig, RetinaNetConfig, build_model, count_variables

    head = None
    if args.head == "retinanet":
        head = RetinaNetConfig(args.num_classes, head_convs, head_filters)
        if head.num_anchors != args.num_anchors:
            raise SpecError(f"--build: the built RetinaNet head has {head.num_anchors} anchors "
                            f"per location, not --num-anchors {args.num_anchors}")
    elif args.head == "classification":
        head = ClassificationConfig(args.num_classes)
    return count_variables(build_model(spec, head), height, width)[0]


def format_table(rep: dict) -> str:
    kind = max(len("type"), *(len(row.block_fn) for row in rep["_rows"])) + 2
    lines = [f"{rep['model']}  input {rep['input'][0]}x{rep['input'][1]}  "
             + "  ".join(f"{k}={v}" for k, v in rep["scaling"].items()),
             f"{'part':<18}{'level':>5}  {'type':<{kind}}{'parents':<10}{'output':>16}"
             f"{'params':>12}{'MFLOPs':>12}"]
    for row in rep["_rows"]:
        parents = ",".join(map(str, row.parents))
        shape = "x".join(map(str, row.shape))
        lines.append(f"{row.name:<18}{row.level:>5}  {row.block_fn:<{kind}}{parents:<10}"
                     f"{shape:>16}{row.cost.params:>12,}{row.cost.flops / 1e6:>12,.1f}")
    lines += [
        f"backbone: {rep['backbone_params']:,} params, {rep['backbone_flops'] / 1e9:.2f}B FLOPs",
        f"head ({rep['head']}): {rep['head_params']:,} params, {rep['head_flops'] / 1e9:.2f}B FLOPs",
        f"total: {rep['total_params']:,} trainable params (+{rep['bn_statistics']:,} BN statistics), "
        f"{rep['total_flops'] / 1e9:.2f}B FLOPs (multiply-adds)",
    ]
    if "built_params" in rep:
        same = "equal to the cost model" if rep["built_params"] == rep["total_params"] else "DIFFERS"
        lines.append(f"built Flax model: {rep['built_params']:,} trainable params ({same})")
    return "\n".join(lines)


def run(args) -> int:
    rep = report(args)
    if args.json:
        print(json.dumps({k: v for k, v in rep.items() if not k.startswith("_")}, indent=2))
    else:
        print(format_table(rep))
    return 0
