# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bundles that carry search indices across an air gap. A bundle is

    <dest>/manifest.json        format, and per index its name, files and document count
    <dest>/indices/<n>.ndjson   the documents, one {"_id", "_source"} a line, in the source's _doc order
    <dest>/indices/<n>.meta.json  the index's mappings and settings (created before any document)
    <dest>/templates.json       the index templates asked for and their component templates (put first)
    <dest>/MD5SUMS              md5sum lines of every file above, so ``md5sum -c`` checks it too

An export writes each index file through a temporary sibling and a rename, so a killed export
leaves whole files only, and leaves a file whose bytes do not change untouched. An import refuses
the whole bundle before any write unless every file matches MD5SUMS and the manifest's counts.
"""

from __future__ import annotations

import json
import os
import tempfile

from ansible_collections.mlops.migration.plugins.module_utils.bundle_seal import SEAL_FILE, SEAL_SIGNATURE
from ansible_collections.mlops.migration.plugins.module_utils.atomic import durable_replace, read_text_if_exists, write_text_atomic
from ansible_collections.mlops.migration.plugins.module_utils.checksums import md5_file
from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError
from ansible_collections.mlops.migration.plugins.module_utils.counts import Counts
from ansible_collections.mlops.migration.plugins.module_utils.files.manifest import (
    compare_manifests,
    hash_tree,
    read_manifest,
    render_manifest,
)
from ansible_collections.mlops.migration.plugins.module_utils.search.client import SearchNotFound
from ansible_collections.mlops.migration.plugins.module_utils.search.copy import load_pages
from ansible_collections.mlops.migration.plugins.module_utils.search.templates import apply_templates, read_templates

FORMAT = "mlops.migration/search-bundle"
MANIFEST, SUMS, INDICES, TEMPLATES = "manifest.json", "MD5SUMS", "indices", "templates.json"
# MD5SUMS itself, the seal over it (module_utils/bundle_seal.py) and the scratch of an export that was killed
NOT_LISTED = (SUMS, SEAL_FILE, SEAL_SIGNATURE, ".tmp-*")


class BundleError(MigrationError):
    """A search bundle that cannot be read, or does not match its manifest."""


def _file_name(index):
    """A file name for an index name (index names are lower case and hold no '/' or NUL)."""
    if not index or "/" in index or "\0" in index or index in (".", ".."):
        raise BundleError(f"{index!r} is not an index name a bundle can hold")
    return index


def export_indices(source, names, dest, query=None, batch_size=1000, transform=None, check_mode=False, templates=()):
    """Write the selected documents of each index of ``names`` (and the index ``templates``) into the bundle
    ``dest``; ``(kinds, changed)``."""
    kinds, entries, changed = {}, [], False
    if not check_mode:
        os.makedirs(os.path.join(dest, INDICES), exist_ok=True)
    if templates:
        text = json.dumps(read_templates(source, templates), sort_keys=True, indent=1) + "\n"
        if read_text_if_exists(os.path.join(dest, TEMPLATES)) != text:
            changed = True
            if not check_mode:
                write_text_atomic(os.path.join(dest, TEMPLATES), text)
    for name in names:
        meta = source.index(name)
        if meta is None:
            raise SearchNotFound(f"index {name} does not exist at the search server {source.url}")
        base = os.path.join(INDICES, _file_name(name))
        counts = Counts(dry_run=check_mode, found=0, copied=0, present=0, bytes=0, failed=0)
        # the scratch file sits in the bundle (one file system: renamed into place whole)
        with tempfile.TemporaryDirectory(prefix=".tmp-export-", dir=None if check_mode else dest) as scratch:
            lines = os.path.join(scratch, "docs.ndjson")
            with open(lines, "w", encoding="utf-8") as out:
                for hits in source.scroll(name, query or {"match_all": {}}, batch_size):
                    for hit in hits:
                        doc = transform(hit["_source"]) if transform else hit["_source"]
                        out.write(json.dumps({"_id": hit["_id"], "_source": doc}, sort_keys=True,
                                             separators=(",", ":")) + "\n")
                        counts.found += 1
            md5, size = md5_file(lines)
            target = os.path.join(dest, base + ".ndjson")
            same = os.path.isfile(target) and md5_file(target)[0] == md5
            if same:
                counts.present = counts.found
            else:
                counts.copied, counts.bytes = counts.found, size
                if not check_mode:
                    durable_replace(lines, target)
        meta_text = json.dumps({"mappings": meta.get("mappings") or {}, "settings": meta.get("settings") or {}},
                               sort_keys=True, indent=1) + "\n"
        meta_path = os.path.join(dest, base + ".meta.json")
        meta_changed = read_text_if_exists(meta_path) != meta_text
        if meta_changed and not check_mode:
            write_text_atomic(meta_path, meta_text)
        changed = changed or not same or meta_changed
        kinds[f"search documents {name}"] = counts
        entries.append({"index": name, "file": base + ".ndjson", "meta": base + ".meta.json", "count": counts.found})
    manifest_text = json.dumps({"format": FORMAT, "indices": entries}, sort_keys=True, indent=1) + "\n"
    if read_text_if_exists(os.path.join(dest, MANIFEST)) != manifest_text:
        changed = True
        if not check_mode:
            write_text_atomic(os.path.join(dest, MANIFEST), manifest_text)
    if not check_mode:
        sums = render_manifest(hash_tree(dest, exclude=NOT_LISTED).entries)
        if read_text_if_exists(os.path.join(dest, SUMS)) != sums:
            write_text_atomic(os.path.join(dest, SUMS), sums)
    return kinds, changed


def check_bundle(root):
    """The manifest's entries, after every file matched MD5SUMS and every count its file."""
    sums_path = os.path.join(root, SUMS)
    if not os.path.isfile(sums_path):
        raise BundleError(f"{root} has no {SUMS}: not a search bundle, or not a whole one; nothing was imported")
    listed = read_manifest(sums_path)
    diff = compare_manifests(listed, hash_tree(root, exclude=NOT_LISTED).entries)
    if not diff.ok:
        raise BundleError(f"the bundle {root} does not match its {SUMS}; nothing was imported: {diff.summary()}")
    try:
        manifest = json.loads(read_text_if_exists(os.path.join(root, MANIFEST)) or "")
    except ValueError as exc:
        raise BundleError(f"{root}/{MANIFEST} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{root}/{MANIFEST} is not a search bundle manifest (format {FORMAT} expected)")
    entries = manifest.get("indices") or []
    for entry in entries:
        for key in ("file", "meta"):
            if entry.get(key) not in listed:
                raise BundleError(f"{MANIFEST} names {entry.get(key)!r}, which {SUMS} does not cover")
        with open(os.path.join(root, entry["file"]), "rb") as docs:
            count = sum(1 for _line in docs)
        if count != entry.get("count"):
            raise BundleError(f"{entry['file']} holds {count} documents, the manifest says {entry.get('count')}")
    return entries


def _pages(path, batch_size):
    page = []
    with open(path, encoding="utf-8") as docs:
        for line in docs:
            page.append(json.loads(line))
            if len(page) == batch_size:
                yield page
                page = []
    if page:
        yield page


def import_bundle(root, entries, target, rename, batch_size=1000, transform=None, check_mode=False, progress=None):
    """Load the templates and every index of a checked bundle into ``target`` (index names through ``rename``);
    ``(kinds, changed, details)``: per index its target, whether it was created and its digests."""
    kinds, details = {}, []
    created_any = False
    if os.path.isfile(os.path.join(root, TEMPLATES)):  # covered by MD5SUMS like every file
        with open(os.path.join(root, TEMPLATES), encoding="utf-8") as handle:
            put = apply_templates(target, json.load(handle), check_mode)
        created_any = bool(put)
        details.append({"templates": put})
    for entry in entries:
        with open(os.path.join(root, entry["meta"]), encoding="utf-8") as handle:
            meta = json.load(handle)
        to = rename(entry["index"])
        loaded = load_pages(_pages(os.path.join(root, entry["file"]), batch_size), target, to, meta,
                            transform, check_mode, progress)
        kinds[f"search documents {to}"] = loaded.counts
        created_any = created_any or loaded.created
        details.append({"source": entry["index"], "target": to, "created": loaded.created,
                        "digest": None if check_mode else loaded.digests.as_dict()})
    return kinds, created_any, details
