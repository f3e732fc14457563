# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A thread pool that keeps input order and never holds more than a window of work."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from queue import Queue
from threading import Thread


def prefetch(items, depth=2000):
    """Iterate ``items`` in a background thread, ``depth`` items ahead (for slow listings)."""
    queue = Queue(maxsize=depth)
    done = object()

    def fill():
        try:
            for item in items:
                queue.put((None, item))
        except BaseException as exc:  # pylint: disable=broad-except  # re-raised in the consumer
            queue.put((exc, None))
        queue.put((None, done))

    Thread(target=fill, daemon=True).start()
    while True:
        error, item = queue.get()
        if error is not None:
            raise error
        if item is done:
            return
        yield item


def bounded_map(func, items, workers=1, window=None):
    """Yield ``(item, func(item))`` in input order, running up to ``workers`` calls at once.

    Unlike ``Executor.map`` it pulls from ``items`` lazily, so a streamed listing of a
    million keys never sits in memory: at most ``window`` (default ``4 * workers``)
    items are in flight. The first exception is raised in order, after cancelling the rest.
    """
    workers = max(1, int(workers))
    if workers == 1:
        for item in items:
            yield item, func(item)
        return
    window = window or 4 * workers
    pending = deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for item in items:
                pending.append((item, pool.submit(func, item)))
                if len(pending) >= window:
                    done_item, future = pending.popleft()
                    yield done_item, future.result()
            while pending:
                done_item, future = pending.popleft()
                yield done_item, future.result()
        finally:
            for _item, future in pending:
                future.cancel()
