# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A thread pool that keeps input order and never holds more than a window of work."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor


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
