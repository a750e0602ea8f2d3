# Search random-control-default-60, rank 2: trial random-7, reward 0.209153, spec hash 9e58db6780a53819f788f283fee60f9770f7d94dd76affeb157d8f19515a264a.
# block_specs for TF Model Garden's SpineNet builder.
SPINENET_BLOCK_SPECS = [
    (2, 'bottleneck', (0, 1), False),
    (3, 'bottleneck', (0, 2), False),
    (3, 'residual', (0, 2), False),
    (4, 'residual', (1, 3), False),
    (4, 'residual', (1, 4), False),
    (6, 'residual', (2, 6), False),
    (4, 'residual', (4, 7), False),
    (5, 'bottleneck', (6, 8), False),
    (4, 'residual', (7, 9), False),
    (3, 'bottleneck', (8, 10), False),
    (6, 'bottleneck', (2, 5), True),
    (3, 'residual', (1, 9), True),
    (4, 'residual', (3, 13), True),
    (5, 'bottleneck', (8, 14), True),
    (7, 'bottleneck', (1, 4), True),
]
