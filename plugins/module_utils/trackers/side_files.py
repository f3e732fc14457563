# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The side files a target writes for records it has no kind of its own for, one layout for every target:

    mlops-migration/<kind>/<key>.jsonl        one series item a line: {"step", "timestamp", "text" | "data" |
                                              "caption" | "url", "artifact"}
    mlops-migration/<kind>/<key>/<n>-<name>   a media item's file, named by the line's "artifact"

``SeriesFile`` writes one series' lines item by item, handing each finished file to ``put(local file,
path)`` (an upload, or a move into a run folder); ``write_series`` writes a whole series; ``read_series``
turns such a file back into SeriesItems; ``input_record`` a dataset input as the JSON of ``inputs.json``. Importable without Ansible.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from ansible_collections.mlops.migration.plugins.module_utils.paths import confined
from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import SeriesItem

SERIES_DIR = "mlops-migration"
ITEM_FIELDS = ("text", "data", "caption", "url")


def series_path(kind, key, suffix=".jsonl"):
    """``mlops-migration/<kind>/<key><suffix>``; UnsafePath for a key that would leave the directory."""
    return confined(SERIES_DIR, f"{kind}/{key}{suffix}", "series key")


class SeriesFile:
    """One series' side file, written an item at a time in the directory ``scratch``."""

    def __init__(self, kind, key, scratch, put):
        self.kind, self.key, self.put = kind, key, put
        self.path = series_path(kind, key)
        self.scratch = tempfile.mkdtemp(dir=scratch)  # local files carry their target's name (an upload keeps it)
        self.local = os.path.join(self.scratch, os.path.basename(self.path))
        self.out = open(self.local, "w", encoding="utf-8")  # pylint: disable=consider-using-with
        self.count = 0

    def add(self, item, fetch=None, local=None):
        """Write ``item``; a media item's bytes come from the file ``local`` or are written by ``fetch(item, path)``."""
        line = {"step": item.step, "timestamp": item.timestamp}
        line.update({name: getattr(item, name) for name in ITEM_FIELDS if getattr(item, name) is not None})
        if item.file:
            name = f"{self.count:06d}-{os.path.basename(item.file) or 'file'}"
            line["artifact"] = series_path(self.kind, f"{self.key}/{name}", "")
            if local is None:
                local = os.path.join(self.scratch, name)
                fetch(item, local)
            self.put(local, line["artifact"])
            if os.path.exists(local):
                os.unlink(local)
        self.out.write(json.dumps(line, sort_keys=True, default=str) + "\n")
        self.count += 1

    def close(self):
        """Hand the finished lines to ``put``; returns how many items were written."""
        self.out.close()
        self.put(self.local, self.path)
        shutil.rmtree(self.scratch, ignore_errors=True)
        return self.count


def write_series(kind, key, items, fetch, put, scratch):
    """Write a whole series (and its media files) through ``put``; returns how many items were written."""
    series = SeriesFile(kind, key, scratch, put)
    for item in items:
        series.add(item, fetch)
    return series.close()


def read_series(key, lines):
    """The SeriesItems of a series file's ``lines`` (a media item's ``file`` is its path among the side files)."""
    for text in lines:
        if text.strip():
            line = json.loads(text)
            yield SeriesItem(key, line.get("step"), line.get("timestamp"), file=line.get("artifact"),
                             **{name: line.get(name) for name in ITEM_FIELDS})


def input_record(dataset_input):
    """A dataset input as JSON (an MLflow DatasetInput, or anything with ``dataset`` and ``tags``)."""
    dataset = getattr(dataset_input, "dataset", None)
    fields = ("name", "digest", "source_type", "source", "schema", "profile")
    return {"dataset": {name: getattr(dataset, name, None) for name in fields},
            "tags": {getattr(t, "key", ""): getattr(t, "value", "") for t in getattr(dataset_input, "tags", []) or []}}
