# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bundles that carry S3 objects across an air gap: export a bucket to a directory (and
archive), import one back. A bundle is

    <bundle>/objects/<key below the prefix>   the objects, key paths kept byte for byte
    <bundle>/MD5SUMS                          md5sum-compatible manifest of objects/ and, as
                                              ``../export.json``, of export.json
    <bundle>/export.json                      bucket, prefix, directory-marker keys, source ETags

so ``cd <bundle>/objects && md5sum -c ../MD5SUMS`` checks it without this collection. An import
checks every file against MD5SUMS, and every marker key and ETag export.json carries, before
any write.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re

from ansible_collections.mlops.migration.plugins.module_utils.atomic import durable_replace, read_text_if_exists, write_text_atomic
from ansible_collections.mlops.migration.plugins.module_utils.checksums import md5_file
from ansible_collections.mlops.migration.plugins.module_utils.files.manifest import (
    compare_manifests,
    iter_tree_files,
    ManifestError,
    read_manifest,
    render_manifest,
)
from ansible_collections.mlops.migration.plugins.module_utils.concurrency import bounded_map, prefetch
from ansible_collections.mlops.migration.plugins.module_utils.s3.client import ApiError
from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import S3Error, s3_error, s3_errors, S3NotFound
from ansible_collections.mlops.migration.plugins.module_utils.s3.objects import (
    known_md5,
    list_objects,
    listed_keys,
    ObjectInfo,
    part_sizes,
    put_verified,
    same_content,
    SourceCheck,
    StaleUpload,
    TransferReport,
)
from ansible_collections.mlops.migration.plugins.module_utils.s3.sync import merge_listings

OBJECTS, MANIFEST, INFO = "objects", "MD5SUMS", "export.json"
INFO_ENTRY = "../" + INFO  # export.json's line in MD5SUMS, as md5sum -c sees it from objects/
CHUNK = 1024 * 1024
ETAG_FORMAT = re.compile(r'^"?[0-9a-fA-F]{32}(-[1-9][0-9]{0,4})?"?$')


NAME_MAX = 255  # bytes in one path component on the file systems bundles are written to
PART_SUFFIX = ".part"


def unsafe_key_reason(rel, size=0):
    """Why a key (below the prefix) cannot be written as a path, or None."""
    parts = rel.rstrip("/").split("/")
    if rel.startswith("/") or any(part in ("", ".", "..") for part in parts):
        return "the key has an empty, '.' or '..' path segment and cannot be written as a file"
    if "\0" in rel:
        return "the key holds a NUL character, which no file name can"
    if rel.endswith("/") and size:
        return f"the key ends in '/' but holds {size} bytes: a file system cannot hold it as a file"
    longest = max(len(part.encode("utf-8", "surrogateescape")) for part in parts)
    if longest > NAME_MAX or len(parts[-1].encode("utf-8", "surrogateescape")) + len(PART_SUFFIX) > NAME_MAX:
        return (f"a path segment of the key is {longest} bytes; file names hold at most "
                f"{NAME_MAX - len(PART_SUFFIX)} here (with the {PART_SUFFIX} of a download in progress)")
    return None


def _wanted(rel, include, exclude):
    if include and not any(fnmatch.fnmatchcase(rel, p) for p in include):
        return False
    return not any(fnmatch.fnmatchcase(rel, p) for p in exclude)


def _read_json(path):
    text = read_text_if_exists(path)
    return json.loads(text) if text else {}


def download(src, info, path):
    """Stream one object of the Location ``src`` to ``path`` (through a ``.part`` file), checked against its ETag."""
    label = src.url(info.key)
    with s3_errors(src.endpoint, src.bucket, info.key):
        sizes = part_sizes(src.client, src.bucket, info.key, info.size, info.etag) if info.multipart else None
        body = src.client.get_object(Bucket=src.bucket, Key=info.key)["Body"]
    check = SourceCheck(info, sizes)
    partial = path + ".part"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(partial, "wb") as out:
            for chunk in iter(lambda: body.read(CHUNK), b""):
                check.update(chunk)
                out.write(chunk)
        reason = check.mismatch()
        if reason:
            os.unlink(partial)
            raise S3Error(f"{label}: {reason}")
        durable_replace(partial, path)
    except OSError as exc:
        if os.path.isfile(partial):
            os.unlink(partial)
        cause = "disk full" if exc.errno == 28 else (exc.strerror or str(exc))
        raise S3Error(f"cannot write {path} for {label}: {cause}") from exc
    finally:
        body.close()
    return check.md5


def local_copy_matches(src, info, path):
    """The md5 of ``path`` when its bytes match the object's ETag, else None."""
    sizes = part_sizes(src.client, src.bucket, info.key, info.size, info.etag) if info.multipart else None
    check = SourceCheck(info, sizes)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            check.update(chunk)
    return check.md5 if check.mismatch() is None else None


def export_bucket(source, dest, include=(), exclude=(), parallel=8, check_mode=False, progress=None, keys=None):
    """Make ``dest`` a bundle of the objects under ``source.prefix`` (only those of ``keys``, relative to it,
    when given); objects already there are kept."""
    objects_dir = os.path.join(dest, OBJECTS)
    try:
        old_entries = read_manifest(os.path.join(dest, MANIFEST)) if os.path.exists(os.path.join(dest, MANIFEST)) else {}
    except ManifestError:
        old_entries = {}  # a damaged manifest only means nothing is known to be exported yet
    old_entries.pop(INFO_ENTRY, None)
    old_etags = _read_json(os.path.join(dest, INFO)).get("etags", {})
    report, entries, etags, markers = TransferReport(progress=progress, dry_run=check_mode), {}, {}, []

    def work(info):
        rel = info.key[len(source.prefix):]
        if rel.endswith("/") and info.size == 0:
            return "marker", None
        reason = unsafe_key_reason(rel, info.size)
        if reason:
            return "failed", reason
        path = os.path.join(objects_dir, rel)
        if os.path.isdir(path):
            return "failed", f"a directory stands where the file {rel} would go (a marker or other keys below {rel}/)"
        if os.path.isfile(path) and os.path.getsize(path) == info.size:
            if old_etags.get(rel) == info.etag and rel in old_entries:
                return "present", old_entries[rel]
            md5 = local_copy_matches(source, info, path)  # left by an interrupted export
            if md5:
                return "present", md5
        if check_mode:
            return "would-copy", None
        try:
            return "copied", download(source, info, path)
        except S3Error as exc:
            return "failed", str(exc)

    missing = []
    objects = list_objects(source.client, source.endpoint, source.bucket, source.prefix) if keys is None else \
        listed_keys(source.client, source.endpoint, source.bucket, source.prefix, keys, missing, parallel)
    listing = (info for info in objects if _wanted(info.key[len(source.prefix):], include, exclude))
    for info, (outcome, value) in bounded_map(work, listing, parallel):
        rel = info.key[len(source.prefix):]
        report.found += 1
        if outcome == "marker":
            markers.append(rel)
        elif outcome == "failed":
            report.fail(info.key, value)
        else:
            report.record(outcome, rel, info.size, "multipart-etag" if info.multipart else "md5")
            if value:
                entries[rel], etags[rel] = value, info.etag
    for rel in missing:
        report.found += 1
        report.fail(source.prefix + rel, "a listed key that is not at the source")
    for rel in list(markers):  # a marker is a directory in the bundle; one that cannot be fails alone
        reason = unsafe_key_reason(rel)
        try:
            if not reason and not check_mode:
                os.makedirs(os.path.join(objects_dir, rel), exist_ok=True)
        except OSError as exc:
            reason = f"the marker cannot be a directory here ({exc.strerror or exc}: the object " \
                     f"{rel.rstrip('/')} is a file)"
        if reason:
            markers.remove(rel)
            report.fail(source.prefix + rel, reason)
        else:
            report.record("present", rel, 0)
    changed = report.copied > 0
    if not check_mode:
        removed = _remove_stale(objects_dir, entries)
        changed = changed or bool(removed)
        info_text = json.dumps({"bucket": source.bucket, "prefix": source.prefix, "endpoint": source.endpoint.label,
                                "objects": len(entries), "markers": markers, "etags": etags},
                               indent=1, sort_keys=True) + "\n"
        text = render_manifest(dict(entries, **{INFO_ENTRY: hashlib.md5(info_text.encode()).hexdigest()}))
        os.makedirs(dest, exist_ok=True)
        for name, content in ((MANIFEST, text), (INFO, info_text)):
            if read_text_if_exists(os.path.join(dest, name)) != content:
                write_text_atomic(os.path.join(dest, name), content)
                changed = True
    result = report.as_dict()
    result["changed"] = changed
    return result


def _remove_stale(objects_dir, entries):
    """Delete files a previous export left that the bucket no longer has."""
    if not os.path.isdir(objects_dir):
        return []
    stale = [name for name, _path in iter_tree_files(objects_dir) if name not in entries]
    for name in stale:
        os.unlink(os.path.join(objects_dir, name))
    return stale


def bundle_paths(root, manifest=None):
    """``(objects_dir, manifest_path)`` of a bundle, or of a plain tree with a separate manifest."""
    if manifest:
        return root, manifest
    return os.path.join(root, OBJECTS), os.path.join(root, MANIFEST)


class BundleFiles(dict):
    """``{rel: (md5, size)}`` of a checked bundle; ``unread`` names the files ``check_bundle`` left to be checked as
    they are uploaded."""

    unread = frozenset()


def check_bundle(root, parallel=2, manifest=None, read_later=None):
    """Verify every file of a bundle against its manifest; returns ``BundleFiles`` (``{rel: (md5, size)}``).

    ``manifest`` names the md5sum manifest of a plain directory tree ``root`` instead. Files larger than
    ``read_later`` bytes are only found here, not read: ``import_bundle`` checks their md5 as it uploads them,
    and completes their uploads (nothing is visible at the target before) only once every one matched, so a file
    of many GiB is read once.
    """
    objects_dir, manifest_path = bundle_paths(root, manifest)
    if not os.path.exists(manifest_path):
        raise S3Error(f"{root} is not a bundle: it has no {MANIFEST}" if not manifest
                      else f"the manifest {manifest} does not exist")
    expected = read_manifest(manifest_path)
    info_md5 = expected.pop(INFO_ENTRY, None)
    for rel in expected:
        reason = unsafe_key_reason(rel) if not rel.startswith("../") else "it leaves objects/"
        if reason:
            raise S3Error(f"the bundle's {MANIFEST} lists {rel!r}, which cannot be imported ({reason}); "
                          "nothing was uploaded")
    if not manifest:
        check_info(root, info_md5)
    unread = set()

    def digest(item):
        rel, path = item
        if read_later is not None and rel in expected and os.path.getsize(path) > read_later:
            unread.add(rel)
            return expected[rel]
        return md5_file(path)[0]

    found = {}
    if os.path.isdir(objects_dir):
        for (rel, _path), md5 in bounded_map(digest, iter_tree_files(objects_dir), parallel):
            found[rel] = md5
    diff = compare_manifests(expected, found)
    if not diff.ok:
        raise S3Error(f"the bundle does not match its manifest, nothing was uploaded: {diff.summary()}")
    files = BundleFiles((rel, (md5, os.path.getsize(os.path.join(objects_dir, rel)))) for rel, md5 in expected.items())
    files.unread = frozenset(unread)
    return files


def check_info(root, listed_md5):
    """export.json matches its line in MD5SUMS, and every marker and ETag in it is well formed."""
    path = os.path.join(root, INFO)
    text = read_text_if_exists(path)
    if text is None:
        raise S3Error(f"the bundle {root} has no {INFO}; nothing was uploaded")
    if listed_md5 is None:
        raise S3Error(f"the bundle's {MANIFEST} does not cover {INFO} (a bundle from before 0.2.0, or edited): "
                      "export it again; nothing was uploaded")
    if hashlib.md5(text.encode("utf-8", "surrogateescape")).hexdigest() != listed_md5:
        raise S3Error(f"the bundle's {INFO} does not match its md5 in {MANIFEST}; nothing was uploaded")
    try:
        info = json.loads(text)
    except ValueError as exc:
        raise S3Error(f"the bundle's {INFO} is not valid JSON ({exc}); nothing was uploaded") from exc
    return validated_info(info)


def validated_info(info):
    """export.json's content, once every marker key and ETag in it is well formed."""
    if not isinstance(info, dict):
        raise S3Error(f"the bundle's {INFO} is not a mapping; nothing was uploaded")
    markers, etags = info.get("markers", []), info.get("etags", {})
    if not isinstance(markers, list) or not isinstance(etags, dict):
        raise S3Error(f"the bundle's {INFO}: 'markers' must be a list and 'etags' a mapping; nothing was uploaded")
    for rel in markers:
        reason = "it is not a text ending in '/'" if not isinstance(rel, str) or not rel.endswith("/") else (
            unsafe_key_reason(rel) or ("it holds a control character" if any(ord(c) < 32 for c in rel) else None))
        if reason:
            raise S3Error(f"the bundle's {INFO} lists the marker {rel!r}, which cannot be imported ({reason}); "
                          "nothing was uploaded")
    for rel, etag in etags.items():
        if not isinstance(etag, str) or not ETAG_FORMAT.match(etag):
            raise S3Error(f"the bundle's {INFO} gives {rel!r} the ETag {str(etag)[:80]!r}, which is not an S3 ETag; "
                          "nothing was uploaded")
    return info


def ensure_markers(target, markers, report, check_mode=False):
    """Put each directory marker (an empty object) of ``markers`` the target lacks. Only a marker that is
    not there is written: any other answer (credentials refused, server unreachable) fails as its typed error."""
    for rel in markers:
        report.found += 1
        key = target.prefix + rel
        try:
            with s3_errors(target.endpoint, target.bucket, key):
                target.client.head_object(Bucket=target.bucket, Key=key)
            report.already_present += 1
        except S3NotFound:
            if not check_mode:
                with s3_errors(target.endpoint, target.bucket, key):
                    target.client.put_object(Bucket=target.bucket, Key=key, Body=b"")
            report.record("would-copy" if check_mode else "copied", rel, 0, "md5")


def import_bundle(root, target, overwrite="different", parallel=8, check_mode=False,
                  part_size=8 * 1024 * 1024, threshold=16 * 1024 * 1024, files=None, manifest=None, progress=None,
                  sealed=None):
    """Upload a verified bundle into ``target.bucket`` under ``target.prefix``.

    ``files`` is what ``check_bundle`` returned, when the caller checked the bundle already. Its ``unread`` files
    (too large to read twice) are uploaded first, their md5 checked on the way, and their uploads completed only
    after the others went well: a file that does not match its manifest fails the import with nothing visible at
    the target. ``sealed`` is the bundle's seal as ``check_seal`` returned it: the unread files' SHA-256 is checked
    on the way too. A multipart upload a killed import left is carried on.
    """
    if files is None:
        files = check_bundle(root, parallel=min(parallel, 4), manifest=manifest)
    objects_dir = bundle_paths(root, manifest)[0]
    info = {} if manifest else validated_info(_read_json(os.path.join(root, INFO)))
    markers, source_etags = info.get("markers", []), info.get("etags", {})
    report = TransferReport(progress=progress, dry_run=check_mode)
    if progress:
        progress.update(total=len(files) + len(markers))
    local = (ObjectInfo(rel, size, md5) for rel, (md5, size) in sorted(files.items()))
    remote = prefetch(list_objects(target.client, target.endpoint, target.bucket, target.prefix))
    unread = getattr(files, "unread", frozenset())

    def upload(rel, mine, key, complete=True):
        path = os.path.join(objects_dir, rel)
        for resume in (True, False):
            try:
                with open(path, "rb") as body:
                    digest = (sealed or {}).get(f"{OBJECTS}/{rel}") if rel in unread else None
                    return put_verified(body, SourceCheck(mine, sha256=digest), path, known_md5(mine.etag), target, key, part_size,
                                        threshold, source_etag=source_etags.get(rel), resume=resume,
                                        complete=complete)
            except StaleUpload:
                if not resume:
                    raise
        raise AssertionError("unreachable")

    def work(pair):
        rel, mine, theirs = pair
        key = target.prefix + rel
        if theirs is not None and (overwrite == "never" or (overwrite == "different" and same_content(
                mine, theirs, lambda: target.client.head_object(Bucket=target.bucket, Key=key)))):
            return "present", None
        if check_mode:
            return "would-copy", None
        try:
            return "copied", upload(rel, mine, key, complete=rel not in unread)
        except (S3Error, OSError) as exc:
            return "failed", str(exc)

    pairs = [pair for pair in merge_listings(local, remote, "", target.prefix) if pair[1] is not None]
    later = [pair for pair in pairs if pair[0] in unread]
    pending = []
    try:
        # the files read only now first: a tampered one fails the import before any object is visible
        for (rel, mine, _theirs), (outcome, value) in bounded_map(work, later, parallel):
            if outcome == "failed":
                raise S3Error(f"the bundle's {rel} was not imported, so nothing was (no object is visible at the "
                              f"target): {value}")
            pending.append((rel, mine, outcome, value))
        for (rel, mine, _theirs), (outcome, value) in bounded_map(
                work, (pair for pair in pairs if pair[0] not in unread), parallel):
            count(report, target, rel, mine, outcome, value)
        for rel, mine, outcome, value in pending:
            if outcome == "copied":
                try:
                    value = value.complete() if hasattr(value, "complete") else value
                except ApiError as exc:
                    outcome, value = "failed", str(s3_error(exc, target.endpoint, target.bucket, target.prefix + rel))
                except S3Error as exc:
                    outcome, value = "failed", str(exc)
            count(report, target, rel, mine, outcome, value)
        pending = []
    finally:
        for _rel, _mine, outcome, value in pending:
            if outcome == "copied" and hasattr(value, "abort"):
                value.abort()
    ensure_markers(target, markers, report, check_mode)
    result = report.as_dict()
    result["changed"] = report.copied > 0
    result["read_once"] = len(unread)
    return result


def count(report, target, rel, mine, outcome, value):
    """One bundle file's outcome in the report."""
    report.found += 1
    if outcome == "failed":
        report.fail(target.prefix + rel, value)
    elif outcome == "copied":
        report.record(outcome, rel, mine.size, value.method, value.resumed_bytes)
    else:
        report.record(outcome, rel, mine.size)
