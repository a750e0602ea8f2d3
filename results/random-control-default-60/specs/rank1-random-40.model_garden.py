# Search random-control-default-60, rank 1: trial random-40, reward 0.213155, spec hash d32e3ff0f0e5088940f01db652426f009725fcdaffa48678ea06c029f4082622.
# block_specs for TF Model Garden's SpineNet builder.
SPINENET_BLOCK_SPECS = [
    (3, 'residual', (0, 1), False),
    (6, 'residual', (1, 2), False),
    (2, 'residual', (0, 3), False),
    (4, 'bottleneck', (2, 4), False),
    (4, 'bottleneck', (2, 3), False),
    (4, 'residual', (5, 6), False),
    (3, 'bottleneck', (3, 5), False),
    (2, 'residual', (4, 7), False),
    (6, 'bottleneck', (5, 7), False),
    (5, 'bottleneck', (8, 9), False),
    (5, 'residual', (6, 10), True),
    (3, 'residual', (1, 2), True),
    (6, 'bottleneck', (0, 2), True),
    (4, 'residual', (3, 6), True),
    (7, 'bottleneck', (9, 11), True),
]
