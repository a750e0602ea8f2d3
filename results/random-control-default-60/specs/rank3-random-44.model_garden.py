# Search random-control-default-60, rank 3: trial random-44, reward 0.187453, spec hash 855ef281a3197d6625848c74c9e3d53f674ae4869f53255c1c55de122bf7fe98.
# block_specs for TF Model Garden's SpineNet builder.
SPINENET_BLOCK_SPECS = [
    (3, 'residual', (0, 1), False),
    (4, 'residual', (1, 2), False),
    (2, 'residual', (2, 3), False),
    (2, 'bottleneck', (2, 3), False),
    (6, 'residual', (2, 5), False),
    (4, 'bottleneck', (3, 4), False),
    (3, 'bottleneck', (4, 5), False),
    (5, 'bottleneck', (4, 7), False),
    (5, 'bottleneck', (6, 7), False),
    (1, 'bottleneck', (9, 10), False),
    (6, 'bottleneck', (2, 6), True),
    (7, 'residual', (1, 2), True),
    (3, 'bottleneck', (0, 1), True),
    (4, 'bottleneck', (5, 6), True),
    (5, 'bottleneck', (6, 8), True),
]
