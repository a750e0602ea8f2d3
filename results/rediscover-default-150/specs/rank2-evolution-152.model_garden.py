# Search rediscover-default-150, rank 2: trial evolution-152, reward 0.219254, spec hash db2fcd084253c3675cd0636df4148c48e7fdf6c8e7c2ad8e7d1e20399f027a12.
# block_specs for TF Model Garden's SpineNet builder.
SPINENET_BLOCK_SPECS = [
    (3, 'bottleneck', (0, 1), False),
    (3, 'bottleneck', (1, 2), False),
    (3, 'bottleneck', (2, 3), False),
    (3, 'residual', (3, 4), False),
    (4, 'bottleneck', (4, 5), False),
    (6, 'bottleneck', (5, 6), False),
    (4, 'bottleneck', (6, 7), False),
    (4, 'bottleneck', (6, 8), False),
    (4, 'residual', (5, 8), False),
    (4, 'bottleneck', (9, 10), False),
    (3, 'bottleneck', (1, 10), True),
    (4, 'bottleneck', (11, 12), True),
    (5, 'bottleneck', (12, 13), True),
    (6, 'bottleneck', (5, 13), True),
    (7, 'residual', (14, 15), True),
]
