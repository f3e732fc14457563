# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copy the documents of a search index (or those matching a query) to another server's index:
documents keep their ``_id``, the target index is created with the source's mappings and settings
before any document, and every document written is read back and compared.

The source is read as a scroll sorted by ``_doc``, split into ``slices`` sliced scrolls read side by
side (each on its own connections); a reader thread keeps the next page coming while a page is
written. A page at a time is held per slice: its ids are looked up at the target (``_mget``; not
needed in an index this run created), documents already there with the same source are left alone,
the others are written with one ``_bulk`` and read back. A re-run writes nothing when the target
holds the same documents, and a run after a killed one writes only what is missing or different.

Verification, besides every written document read back: an order-free digest of the selected
documents after the rewrites (source side) against the same digest of what the target holds for
them, and the number of documents per task at both servers (a composite aggregation over
``task_field``), so a document left out, doubled or still different is named by its task.
"""

from __future__ import annotations

import hashlib
import json
import threading

from ansible_collections.mlops.migration.plugins.module_utils.concurrency import prefetch
from ansible_collections.mlops.migration.plugins.module_utils.counts import Counts
from ansible_collections.mlops.migration.plugins.module_utils.search.client import SearchError, SearchNotFound

# Index settings that describe the source index itself rather than how it is built.
KEPT_SETTINGS = ("number_of_shards", "number_of_replicas", "analysis", "mapping", "max_result_window", "codec",
                 "sort", "refresh_interval")
DIGEST_MOD = 1 << 128
TASKS_SHOWN = 20


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


def canonical(doc):
    """A document's canonical JSON text (keys sorted): what its digest, its size and the rewrite check read."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def text_digest(ident, text):
    """One document's share of an index digest (the digest is their sum, so order does not matter)."""
    return int.from_bytes(hashlib.sha256(f"{ident}\0{text}".encode("utf-8")).digest()[:16], "big")


def doc_digest(ident, doc):
    return text_digest(ident, canonical(doc))


class Digests:
    """The order-free digests of the selected documents: as they should be, and as the target holds them."""

    def __init__(self):
        self.source = self.target = 0

    def add(self, other):
        self.source = (self.source + other.source) % DIGEST_MOD
        self.target = (self.target + other.target) % DIGEST_MOD

    def as_dict(self):
        return {"source": f"{self.source:032x}", "target": f"{self.target:032x}", "same": self.source == self.target}


class Tally:
    """Documents and bytes done over every slice and index, for one progress file."""

    def __init__(self, progress):
        self.progress, self.lock, self.done, self.size = progress, threading.Lock(), 0, 0

    def add(self, docs, size):
        if self.progress is None:
            return
        with self.lock:
            self.done += docs
            self.size += size
            self.progress.update(done=self.done, size=self.size)


class IndexLoader:
    """Writes pages of hits (``[{"_id", "_source"}]``) into one target index, created from ``meta`` (the
    source index's mappings and settings) when missing. One loader per connection; ``merge`` adds up."""

    def __init__(self, target, index, meta, transform=None, check_mode=False, tally=None, created=None):
        self.target, self.index, self.transform, self.check_mode = target, index, transform, check_mode
        self.tally = tally or Tally(None)
        self.created = target.index(index) is None if created is None else created
        if self.created and not check_mode and created is None:
            target.create_index(index, meta.get("mappings") or {}, target_settings(meta))
        # in check mode, what is found at the target the same counts as verified (a check of it)
        self.counts = Counts(dry_run=check_mode, found=0, copied=0, present=0, verified=0, failed=0, bytes=0)
        self.digests = Digests()

    def fork(self, target):
        """A loader for the same index over another connection (a slice), its counts kept apart."""
        return IndexLoader(target, self.index, {}, self.transform, self.check_mode, self.tally, self.created)

    def merge(self, other):
        self.counts.add(other.counts)
        self.digests.add(other.digests)

    def load(self, pages):
        for hits in pages:
            self.page(hits)
        return self

    def _prepared(self, hits):
        """``[(id, source after the rewrites, its canonical text, its digest share)]`` of a page; the rewriter
        walks only the documents its rules can change (``may_change``), the others keep their text."""
        out = []
        for hit in hits:
            ident, doc = hit["_id"], hit["_source"]
            text = canonical(doc)
            if self.transform is not None and self.transform.may_change(text):
                new = self.transform(doc)
                if new != doc:
                    doc, text = new, canonical(new)
            out.append((ident, doc, text, text_digest(ident, text)))
        return out

    def page(self, hits):
        counts, digests = self.counts, self.digests
        docs = self._prepared(hits)
        bytes_before = counts.bytes
        counts.found += len(docs)
        for _ident, _doc, _text, share in docs:
            digests.source = (digests.source + share) % DIGEST_MOD
        # an index this run created holds nothing but what this run writes (slices never overlap)
        existing = {} if self.created else self.target.mget(self.index, [item[0] for item in docs])
        todo = []
        for item in docs:
            ident, doc = item[0], item[1]
            if ident in existing and existing[ident] == doc:
                counts.present += 1
                if self.check_mode:
                    counts.verified += 1
                self._seen(item)  # equal as decoded JSON: the same canonical text, the same share
            else:
                todo.append(item)
        if self.check_mode:
            counts.copied += len(todo)
            counts.pending.extend(item[0] for item in todo[:max(0, 100 - len(counts.pending))])
        elif todo:
            self._write(todo)
        self.tally.add(len(docs), counts.bytes - bytes_before)

    def _seen(self, item):
        self.digests.target = (self.digests.target + item[3]) % DIGEST_MOD

    def _write(self, docs):
        counts = self.counts
        refused = self.target.bulk(self.index, [(item[0], item[1]) for item in docs])
        for ident, reason in refused.items():
            counts.fail(ident, f"refused by {self.index}: {reason}")
        written = [item for item in docs if item[0] not in refused]
        back = self.target.mget(self.index, [item[0] for item in written])
        for item in written:
            ident, doc = item[0], item[1]
            counts.copied += 1
            counts.bytes += len(item[2].encode("utf-8"))
            if ident in back and back[ident] == doc:
                counts.verified += 1
                self._seen(item)
            else:
                counts.fail(ident, f"written to {self.index} but not read back the same")
                if ident in back:
                    self.digests.target = (self.digests.target + doc_digest(ident, back[ident])) % DIGEST_MOD


def load_pages(pages, target, target_index, meta, transform=None, check_mode=False, progress=None):
    """Write pages of hits into ``target_index`` (created from ``meta`` when missing); the IndexLoader."""
    return IndexLoader(target, target_index, meta, transform, check_mode, Tally(progress)).load(pages)


def copy_index(source, target, source_index, target_index, query=None, batch_size=1000, transform=None,
               check_mode=False, progress=None, slices=1, task_field="task", tally=None):
    """Make ``target_index`` hold every selected document of ``source_index``; the IndexLoader (counts,
    digests, ``created``) and the per-task comparison (None in check mode).

    ``transform(source) -> source`` (an EventRewriter) rewrites a document before it is compared and
    written, when its ``may_change(canonical text)`` says its rules can; it must be safe to call from
    several threads when ``slices`` > 1.
    """
    meta = source.index(source_index)
    if meta is None:
        raise SearchNotFound(f"index {source_index} does not exist at the search server {source.url}")
    query = query or {"match_all": {}}
    loader = IndexLoader(target, target_index, meta, transform, check_mode, tally or Tally(progress))
    if slices <= 1:
        loader.load(prefetch(source.scroll(source_index, query, batch_size), depth=2))
    else:
        _sliced(source, loader, source_index, query, batch_size, slices)
    tasks = None if check_mode else compare_tasks(source, target, source_index, target_index, query, task_field,
                                                  loader.counts)
    return loader, tasks


def _sliced(source, loader, index, query, batch_size, slices):
    forks, errors = [], []

    def read(number, fork, reader):
        try:
            fork.load(prefetch(reader.scroll(index, query, batch_size, part=(number, slices)), depth=2))
        except BaseException as exc:  # pylint: disable=broad-except  # raised again below, in order
            errors.append(exc)
        finally:
            reader.close()
            fork.target.close()

    threads = []
    for number in range(slices):
        fork = loader.fork(loader.target.clone())
        forks.append(fork)
        threads.append(threading.Thread(target=read, args=(number, fork, source.clone()), daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    for fork in forks:
        loader.merge(fork)


def task_counts(client, index, query, field):
    """``{task: documents}`` of the documents of ``index`` matching ``query``, by a composite aggregation."""
    found, after = {}, None
    while True:
        composite = {"size": 1000, "sources": [{"task": {"terms": {"field": field}}}]}
        if after:
            composite["after"] = after
        reply = client.call("POST", f"/{index}/_search", {"size": 0, "query": query,
                                                          "aggs": {"tasks": {"composite": composite}}},
                            what=f"the documents per {field} of index {index}")
        agg = (reply.get("aggregations") or {}).get("tasks") or {}
        buckets = agg.get("buckets") or []
        for bucket in buckets:
            found[str(bucket["key"]["task"])] = bucket["doc_count"]
        after = agg.get("after_key")
        if not buckets or not after:
            return found


def compare_tasks(source, target, source_index, target_index, query, field, counts):
    """The documents per task at both servers after the copy; a task that differs is a failure."""
    try:
        target.refresh(target_index)
        ours, theirs = task_counts(source, source_index, query, field), task_counts(target, target_index, query, field)
    except SearchError as exc:
        return {"field": field, "checked": None, "differing": [], "note": f"not compared: {exc}"}
    differing = []
    for task, number in sorted(ours.items()):
        if theirs.get(task) != number:
            differing.append({"task": task, "source": number, "target": theirs.get(task, 0)})
            counts.fail(f"task {task}", f"{number} documents at the source, {theirs.get(task, 0)} at the target")
    return {"field": field, "checked": len(ours), "differing": differing[:TASKS_SHOWN]}
