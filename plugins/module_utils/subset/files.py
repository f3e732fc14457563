# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files and objects of a user or project subset: found from the documents that move.

``collect`` reads the references of the documents (``(collection, document)`` pairs from a MongoDB
backup or from the server, see mongo/dump.py), skipping documents their collection's restore
filter leaves out, and returns the task ids whose events move; ``event_references`` adds the
references of those tasks' events (debug images, plot images) from a search server. ``locate_dir``
and ``locate_s3`` resolve the references of one mapping: which files exist, which directories move
whole (every file under them belongs to the subset: rsync) and which files move singly (tar with a
file list), which S3 keys move (an explicit key list), and which references name nothing
(missing, each with its document). Importable without Ansible.
"""

from __future__ import annotations

import os

from ansible_collections.mlops.migration.plugins.module_utils.mongo.query import matches
from ansible_collections.mlops.migration.plugins.module_utils.paths import confined, UnsafePath
from ansible_collections.mlops.migration.plugins.module_utils.subset.references import (
    ancestors,
    missing_entry,
    references_of,
    resolve,
    whole_directories,
)

TASK_CHUNK = 1000  # task ids per terms query


def collect(pairs, specs, filters, prefixes, tasks_collection=None):
    """``(references, task ids, {collection: {read, kept}})`` of ``(collection, document)`` pairs; a
    document its collection's filter (``filters``: ``{collection: parsed filter}``) leaves out does not
    move, so its references do not count."""
    by_source, refs, tasks, seen = {}, [], [], {}
    for spec in specs:
        by_source.setdefault(spec.source, []).append(spec)
    for source, doc in pairs:
        tally = seen.setdefault(source, {"read": 0, "kept": 0})
        tally["read"] += 1
        if source in filters and not matches(doc, filters[source]):
            continue
        tally["kept"] += 1
        if source == tasks_collection:
            tasks.append(str(doc.get("_id")))
        refs.extend(references_of(doc, source, by_source.get(source, ()), prefixes))
    return refs, tasks, seen


def event_references(client, specs, task_ids, task_field, prefixes, unpack, batch_size=1000):
    """The references of the events of ``task_ids`` by the index specs (``Spec.source`` an index name or
    a pattern; a pattern no index matches has no events); ``unpack(text, where)`` opens a compressed
    field (search/events.py ``unpacked_text``)."""
    refs, by_index = [], {}
    for spec in specs:
        for index in client.matching(spec.source) if "*" in spec.source else [spec.source]:
            by_index.setdefault(index, []).append(spec)
    ids = sorted(set(task_ids))
    for index, index_specs in sorted(by_index.items()):
        fields = sorted({spec.path.split(".", 1)[0] for spec in index_specs})
        for start in range(0, len(ids), TASK_CHUNK):
            query = {"terms": {task_field: ids[start:start + TASK_CHUNK]}}
            for hits in client.scroll(index, query, batch_size, fields=fields):
                for hit in hits:
                    doc = dict(hit.get("_source") or {}, _id=hit.get("_id"))
                    for spec in index_specs:
                        if spec.compressed and isinstance(doc.get(spec.path), str):
                            doc[spec.path] = unpack(doc[spec.path], f"{index}/{hit.get('_id')} {spec.path}")
                    refs.extend(references_of(doc, index, index_specs, prefixes))
    return refs


def by_mapping(refs, mappings):
    """``({mapping index: [(reference, relative path)]}, unmapped references)``."""
    grouped, unmapped = {m.index: [] for m in mappings}, []
    for ref in refs:
        found = resolve(ref.url, mappings)
        if found is None:
            unmapped.append(ref)
        else:
            grouped[found[0].index].append((ref, found[1]))
    return grouped, unmapped


def locate_dir(root, refs):
    """What of a directory mapping moves: ``{directories, files, count, bytes, missing}``.

    ``refs`` are ``(reference, relative path)``. Files named by ``file`` references, and every file
    under a ``directory`` reference, belong to the subset; a directory moves whole when every file
    under it belongs (the topmost such directories), the other files move singly.
    """
    owned, dirs, destinations, missing = set(), set(), set(), []
    for ref, rel in refs:
        try:
            if not rel.strip("/"):
                raise UnsafePath("it names the whole mapped directory, which moves as the plan's tree, not as a subset")
            path = confined(root, rel, "the referenced path")
        except UnsafePath as exc:
            missing.append(missing_entry(ref, str(exc)))
            continue
        if ref.kind == "file":
            if os.path.isfile(path):
                owned.add(rel)
            else:
                missing.append(missing_entry(ref, "a directory, not a file" if os.path.isdir(path) else f"no such file under {root}"))
        elif os.path.isdir(path):
            (dirs if ref.kind == "directory" else destinations).add(rel.rstrip("/"))
        elif ref.kind == "directory":
            missing.append(missing_entry(ref, f"no such directory under {root}"))
    candidates = set()
    for rel in owned:
        candidates.update(ancestors(rel))
    for rel in dirs | destinations:
        candidates.add(rel)
        candidates.update(ancestors(rel))
    listing, sizes = _walk(root, candidates)
    for rel in dirs:
        owned.update(listing[rel])
    directories, files = whole_directories(owned, listing)
    moved = set(files)
    for directory in directories:
        moved.update(listing[directory])
    for rel in files:
        if rel not in sizes:
            sizes[rel] = os.lstat(os.path.join(root, rel)).st_size
    return {"directories": directories, "files": files, "count": len(moved),
            "bytes": sum(sizes[rel] for rel in moved), "missing": missing}


def _walk(root, candidates):
    """``({candidate: [files under it]}, {file: size})``, walking each topmost candidate once."""
    listing = {c: [] for c in candidates}
    sizes = {}
    tops = sorted(c for c in candidates if not any(a in candidates for a in ancestors(c)))
    for top in tops:
        base = os.path.join(root, top)
        for directory, subdirs, names in os.walk(base):
            subdirs.sort()
            for name in sorted(names):
                path = os.path.join(directory, name)
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                sizes[rel] = os.lstat(path).st_size
                for above in ancestors(rel):
                    if above in listing:
                        listing[above].append(rel)
    return listing, sizes


def locate_s3(location, prefix, refs, list_keys, list_prefix):
    """What of an S3 mapping moves: ``{keys, count, bytes, missing}``, keys relative to ``prefix``.

    ``list_keys(keys, missing)`` yields the ObjectInfo of the keys there (s3/objects.py ``listed_keys``)
    and ``list_prefix(prefix)`` every object under a prefix (``list_objects``); a ``directory`` reference
    owns every key under it, a ``destination`` adds nothing (S3 moves explicit keys).
    """
    named, missing, wanted = {}, [], set()
    for ref, rel in refs:
        if ref.kind == "file":
            named.setdefault(rel, []).append(ref)
        elif ref.kind == "directory":
            below = prefix + rel.rstrip("/") + "/"
            found = [info.key[len(prefix):] for info in list_prefix(below)]
            if not found:
                missing.append(missing_entry(ref, f"no object under s3://{location}/{below}"))
            wanted.update(found)
    absent = []
    infos = {info.key[len(prefix):]: info for info in list_keys(sorted(set(named) | wanted), absent)}
    for rel in absent:
        for ref in named.get(rel, ()):
            missing.append(missing_entry(ref, f"no object s3://{location}/{prefix}{rel}"))
    return {"keys": sorted(infos), "count": len(infos), "bytes": sum(i.size for i in infos.values()), "missing": missing}
