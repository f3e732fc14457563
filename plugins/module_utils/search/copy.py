# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copy the documents of a search index (or those matching a query) to another server's index:
documents keep their ``_id``, the target index is created with the source's mappings and settings
before any document, and every document written is read back and compared.

A page of the source (a scroll sorted by ``_doc``) is held at a time: its ids are looked up at the
target (``_mget``), documents already there with the same source are left alone, the others are
written with one ``_bulk`` and read back. A re-run writes nothing when the target holds the same
documents, and a run after a killed one writes only what is missing or different.
"""

from __future__ import annotations

import json

from ansible_collections.mlops.migration.plugins.module_utils.counts import Counts
from ansible_collections.mlops.migration.plugins.module_utils.search.client import SearchNotFound

# Index settings that describe the source index itself rather than how it is built.
KEPT_SETTINGS = ("number_of_shards", "number_of_replicas", "analysis", "mapping", "max_result_window", "codec",
                 "sort", "refresh_interval")


def target_settings(meta):
    """The settings a copy of the index is created with (the source's own identity left out)."""
    settings = (meta.get("settings") or {}).get("index") or {}
    return {key: value for key, value in settings.items() if key in KEPT_SETTINGS}


def selection(query=None, task_ids=None, task_field="task"):
    """The query a copy reads with: ``query`` (all documents when None), narrowed to ``task_ids`` when given."""
    must = [query] if query else []
    if task_ids is not None:
        must.append({"terms": {task_field: sorted(task_ids)}})
    if not must:
        return {"match_all": {}}
    return must[0] if len(must) == 1 else {"bool": {"filter": must}}


def copy_index(source, target, source_index, target_index, query=None, batch_size=1000, transform=None,
               check_mode=False, progress=None):
    """Make ``target_index`` hold every selected document of ``source_index``; ``(Counts, created)``.

    ``transform(source) -> source`` rewrites a document before it is compared and written.
    """
    meta = source.index(source_index)
    if meta is None:
        raise SearchNotFound(f"index {source_index} does not exist at the search server {source.url}")
    pages = source.scroll(source_index, query or {"match_all": {}}, batch_size)
    return load_pages(pages, target, target_index, meta, transform, check_mode, progress)


def load_pages(pages, target, target_index, meta, transform=None, check_mode=False, progress=None):
    """Write pages of hits (``[{"_id", "_source"}]``) into ``target_index``, created from ``meta`` (the source
    index's mappings and settings) when missing; ``(Counts, created)``."""
    created = target.index(target_index) is None
    if created and not check_mode:
        target.create_index(target_index, meta.get("mappings") or {}, target_settings(meta))
    counts = Counts(dry_run=check_mode, found=0, copied=0, present=0, verified=None if check_mode else 0, failed=0,
                    bytes=0)
    for hits in pages:
        docs = [(hit["_id"], transform(hit["_source"]) if transform else hit["_source"]) for hit in hits]
        counts.found += len(docs)
        existing = {} if created and check_mode else target.mget(target_index, [ident for ident, _doc in docs])
        todo = [(ident, doc) for ident, doc in docs if existing.get(ident) != doc]
        counts.present += len(docs) - len(todo)
        if check_mode:
            counts.copied += len(todo)
            counts.pending.extend(ident for ident, _doc in todo[:max(0, 100 - len(counts.pending))])
        elif todo:
            _write(target, target_index, todo, counts)
        if progress is not None:
            progress.update(done=counts.found, size=counts.bytes)
    return counts, created


def _write(target, index, docs, counts):
    refused = target.bulk(index, docs)
    for ident, reason in refused.items():
        counts.fail(ident, f"refused by {index}: {reason}")
    written = [(ident, doc) for ident, doc in docs if ident not in refused]
    back = target.mget(index, [ident for ident, _doc in written])
    for ident, doc in written:
        counts.copied += 1
        counts.bytes += len(json.dumps(doc, separators=(",", ":")))
        if back.get(ident) == doc:
            counts.verified += 1
        else:
            counts.fail(ident, f"written to {index} but not read back the same")
