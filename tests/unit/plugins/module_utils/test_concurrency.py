"""Unit tests of module_utils/concurrency.py."""

import threading
import time

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.concurrency import bounded_map, prefetch


@pytest.mark.parametrize("workers", [1, 4])
def test_keeps_input_order(workers):
    def slow_square(n):
        time.sleep(0.001 * (10 - n))
        return n * n

    assert list(bounded_map(slow_square, range(10), workers)) == [(n, n * n) for n in range(10)]


def test_pulls_input_lazily_within_the_window():
    pulled = []

    def source():
        for n in range(1000):
            pulled.append(n)
            yield n

    results = bounded_map(lambda n: n, source(), workers=2, window=5)
    next(results)
    assert len(pulled) <= 6


def test_runs_in_parallel():
    running, peak, lock = [0], [0], threading.Lock()

    def work(_n):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1

    list(bounded_map(work, range(12), workers=3))
    assert peak[0] == 3


def test_first_error_is_raised():
    def fail_on_three(n):
        if n == 3:
            raise ValueError("three")
        return n

    with pytest.raises(ValueError, match="three"):
        list(bounded_map(fail_on_three, range(100), workers=2))


def test_prefetch_yields_everything_in_order_and_reraises():
    assert list(prefetch(iter(range(5000)), depth=7)) == list(range(5000))

    def broken():
        yield 1
        raise RuntimeError("listing failed")

    got = []
    with pytest.raises(RuntimeError, match="listing failed"):
        for item in prefetch(broken()):
            got.append(item)
    assert got == [1]
