# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File references of the documents a subset moves, and the locations they resolve to.

A reference spec names where a collection's documents (or an index's events) name files: a dotted
``path`` (``*`` stands for every key of a mapping and every element of a list) and a ``kind``:

- ``file``: the value names one file (an artifact, a model, a debug image);
- ``directory``: the value names a directory whose every file belongs to the document (a dataset);
- ``destination``: the value names a directory the document's outputs are written under (a
  ClearML project's default output destination): it moves whole when everything under it belongs
  to the subset, and one that does not exist is no error (nothing was written there yet).

A value is the URL itself when it starts with a mapped URL prefix; otherwise (``embedded``: JSON
text such as a plot's; ``compressed``: that text base64 of zlib, ClearML's ``plot_data``) every
mapped URL inside it counts, each ending at a quote, a backslash, an angle bracket or a line break.
A mapping turns a URL prefix into a location: a directory on the host that runs the module, or an
S3 bucket and prefix; the longest prefix that matches wins, and
a URL no mapping covers is not a file of the subset (it is counted as unmapped, not missing).
Importable without Ansible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError

KINDS = ("file", "directory", "destination")
MISSING_SHOWN = 200


class ReferenceSpecError(MigrationError):
    """A malformed reference spec or mapping."""


@dataclass(frozen=True)
class Spec:
    """Where one collection (``db.name``) or index pattern names files."""

    source: str
    path: str
    kind: str = "file"
    embedded: bool = False
    compressed: bool = False
    index: bool = False  # source is an index (or pattern) of events, not a collection


@dataclass(frozen=True)
class Reference:
    """One file a document names: ``document`` is ``<collection or index>/<id>``."""

    document: str
    field: str
    url: str
    kind: str


@dataclass(frozen=True)
class Mapping:
    """A URL prefix and where its files are: ``root`` (a directory) or ``bucket``/``prefix`` (S3)."""

    index: int
    url: str
    root: str | None = None
    bucket: str | None = None
    prefix: str = ""

    @property
    def is_s3(self):
        return self.bucket is not None

    @property
    def label(self):
        return f"s3://{self.bucket}/{self.prefix}" if self.is_s3 else self.root


def parse_specs(specs, where="references"):
    """Specs from the module option (a list of ``{collection or index, path, kind, embedded}``)."""
    out = []
    for i, entry in enumerate(specs or []):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise ReferenceSpecError(f"{at} must be a mapping")
        source = entry.get("collection") or entry.get("index")
        if not source or not entry.get("path"):
            raise ReferenceSpecError(f"{at} needs a path and a collection (db.name) or an index (name or pattern)")
        kind = entry.get("kind") or "file"
        if kind not in KINDS:
            raise ReferenceSpecError(f"{at}.kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if entry.get("collection") and "." not in entry["collection"]:
            raise ReferenceSpecError(f"{at}.collection {entry['collection']!r} must be db.name, for example backend.task")
        if entry.get("compressed") and not entry.get("index"):
            raise ReferenceSpecError(f"{at}.compressed applies to an index's field (ClearML's plot_data), not a collection's")
        if entry.get("collection") and entry.get("index"):
            raise ReferenceSpecError(f"{at} names both a collection and an index; one of them")
        out.append(Spec(source, entry["path"], kind, bool(entry.get("embedded") or entry.get("compressed")),
                        bool(entry.get("compressed")), bool(entry.get("index"))))
    return out


def parse_mappings(mappings, where="mappings"):
    """Mappings from the module option: ``{url, dir}`` or ``{url, bucket, prefix}`` (the S3 connection
    travels beside, see the module)."""
    out = []
    for i, entry in enumerate(mappings or []):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict) or not entry.get("url"):
            raise ReferenceSpecError(f"{at} needs a url (the prefix the documents' URLs start with)")
        has_dir, has_bucket = bool(entry.get("dir")), bool(entry.get("bucket"))
        if has_dir == has_bucket:
            raise ReferenceSpecError(f"{at} needs either dir (a directory on this host) or bucket (an S3 bucket), "
                                     "not " + ("both" if has_dir else "neither"))
        if has_dir:
            out.append(Mapping(i, entry["url"], root=entry["dir"]))
        else:
            prefix = (entry.get("prefix") or "").lstrip("/")
            out.append(Mapping(i, entry["url"], bucket=entry["bucket"], prefix=prefix))
    urls = [m.url for m in out]
    if len(set(urls)) != len(urls):
        raise ReferenceSpecError(f"{where}: a url prefix is mapped twice")
    return out


def values_at(doc, path):
    """``(dotted path, value)`` of every value at ``path``; ``*`` is every key or element, and a list met
    on the way is descended into as MongoDB does."""
    found = [("", doc)]
    for part in path.split("."):
        step = []
        for where, value in found:
            if isinstance(value, list) and part != "*" and not part.isdigit():
                items = [(f"{where}.{i}" if where else str(i), item) for i, item in enumerate(value)]
            else:
                items = [(where, value)]
            for at, item in items:
                if part == "*":
                    pairs = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
                    step.extend((f"{at}.{key}" if at else str(key), sub) for key, sub in pairs)
                elif isinstance(item, dict) and part in item:
                    step.append((f"{at}.{part}" if at else part, item[part]))
                elif isinstance(item, list) and part.isdigit() and int(part) < len(item):
                    step.append((f"{at}.{part}" if at else part, item[int(part)]))
        found = step
    return found


_END = "\"'\\<>\r\n"


def urls_in(text, prefixes, embedded=False):
    """The mapped URLs in a value: itself when it starts with a prefix, else (``embedded``) each
    occurrence of a prefix, up to the first quote, backslash, angle bracket or line break."""
    if not isinstance(text, str):
        return []
    if any(text.startswith(prefix) for prefix in prefixes):
        return [text]
    if not embedded:
        return []
    found = []
    for prefix in prefixes:
        for match in re.finditer(re.escape(prefix) + f"[^{re.escape(_END)}]*", text):
            found.append(match.group(0))
    return found


def references_of(doc, source, specs, prefixes):
    """Every Reference one document (its ``_id`` names it) makes by the specs of its ``source``."""
    ident = f"{source}/{doc.get('_id')}"
    out = []
    for spec in specs:
        for field, value in values_at(doc, spec.path):
            for url in urls_in(value, prefixes, spec.embedded):
                out.append(Reference(ident, field, url, spec.kind))
    return out


def resolve(url, mappings):
    """``(mapping, relative path)`` of a URL by the longest matching prefix, or None (unmapped)."""
    best = None
    for mapping in mappings:
        if url.startswith(mapping.url) and (best is None or len(mapping.url) > len(best.url)):
            best = mapping
    if best is None:
        return None
    return best, url[len(best.url):].lstrip("/")


def missing_entry(ref, reason):
    return {"document": ref.document, "field": ref.field, "url": ref.url, "reason": reason}


def ancestors(rel):
    """The directories above a relative path, nearest first (the root, ``""``, left out)."""
    parts = rel.strip("/").split("/")
    return ["/".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def whole_directories(owned, listing):
    """Which directories move whole, and which owned files move singly.

    ``owned`` is the set of relative file paths that belong to the subset; ``listing`` maps each
    candidate directory (every ancestor of an owned file, of a directory or of a destination) to the
    relative paths of all files under it. A directory moves whole when every file under it is owned;
    only the topmost such directories are kept. Returns ``(directories, single files)``, sorted.
    """
    whole = {directory for directory, files in listing.items() if all(f in owned for f in files)}
    top = sorted(d for d in whole if not any(a in whole for a in ancestors(d)))
    covered = set()
    for directory in top:
        covered.update(listing[directory])
    return top, sorted(f for f in owned if f not in covered)
