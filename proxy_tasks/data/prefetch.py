"""Ordered parallel map over a thread pool with a bounded number of results in flight."""

from __future__ import annotations

import collections
import concurrent.futures
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def parallel_map(fn: Callable[[T], R], items: Iterable[T], num_workers: int,
                 max_in_flight: int) -> Iterator[R]:
    """Yields `fn(item)` for each item, in order, computing up to `max_in_flight` ahead.

    The output is the same whatever the thread timing, so a deterministic `fn` gives a
    deterministic stream. Closing the iterator cancels pending work.
    """
    items = iter(items)
    with concurrent.futures.ThreadPoolExecutor(num_workers, "input") as pool:
        pending = collections.deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= max_in_flight:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
