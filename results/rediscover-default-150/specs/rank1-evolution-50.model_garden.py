# Search rediscover-default-150, rank 1: trial evolution-50, reward 0.224637, spec hash fb6e512b05f093b88fb23d697059b62195f07c293878289c1bf7721c1b48e939.
# block_specs for TF Model Garden's SpineNet builder.
SPINENET_BLOCK_SPECS = [
    (3, 'bottleneck', (0, 1), False),
    (3, 'bottleneck', (1, 2), False),
    (3, 'bottleneck', (2, 3), False),
    (3, 'bottleneck', (1, 3), False),
    (4, 'bottleneck', (4, 5), False),
    (4, 'bottleneck', (5, 6), False),
    (4, 'residual', (6, 7), False),
    (4, 'bottleneck', (7, 8), False),
    (4, 'bottleneck', (5, 8), False),
    (4, 'residual', (9, 10), False),
    (3, 'bottleneck', (1, 10), True),
    (4, 'bottleneck', (11, 12), True),
    (5, 'bottleneck', (12, 13), True),
    (6, 'bottleneck', (5, 13), True),
    (7, 'residual', (14, 15), True),
]
