# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""S3 objects: streamed listings and object copies verified by md5 at both ends.

Verification rules (see STYLE.md: a multipart ETag is not an md5):
  - bytes read from a source object are checked against its ETag: a plain md5, or for a
    multipart object the md5 of its part md5s, with the part sizes the server reports
    (``HEAD ?partNumber=N``), never an assumed chunk size;
  - every PUT and every uploaded part carries Content-MD5, so the target checks each byte;
  - the target's resulting ETag is checked against the md5 (single part) or the multipart
    ETag of the parts we sent.
Importable without Ansible; the clients come from s3/connection.py.
"""

from __future__ import annotations

import hashlib
import base64
import os
import time
import binascii
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ansible_collections.mlops.migration.plugins.module_utils.checksums import (
    etag_part_count,
    is_multipart_etag,
    multipart_etag,
    new_md5,
    normalize_etag,
)
from ansible_collections.mlops.migration.plugins.module_utils.concurrency import bounded_map
from ansible_collections.mlops.migration.plugins.module_utils.counts import by_kind, Counts
from ansible_collections.mlops.migration.plugins.module_utils.s3.client import ApiError
from ansible_collections.mlops.migration.plugins.module_utils.s3.connection import S3Error, s3_error, s3_errors, S3NotFound


MIB = 1024 * 1024
KIND = "s3 objects"
FAILURE_LIMIT = 20
LIST_LIMIT = 100


@dataclass
class TransferReport:
    """Counts of one transfer, as every S3 module returns them: its own keys, and ``kinds``/``counts``
    (module_utils/counts.py) under the one vocabulary of every module."""

    found: int = 0
    copied: int = 0
    already_present: int = 0  # not 'skipped': Ansible reserves that result key
    verified: int = 0
    failed_count: int = 0  # not 'failed': Ansible reserves that result key for the task status
    deleted: int = 0
    bytes: int = 0
    bytes_resumed: int = 0  # of ``bytes``: parts a killed run had uploaded, checked and kept, not sent again
    verified_by: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    to_copy: list = field(default_factory=list)
    to_delete: list = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    dry_run: bool = False  # check mode: copied are the objects that would be copied
    progress: object = None  # a module_utils.state.progress.Progress, told after every object

    def tick(self):
        if self.progress is not None:
            self.progress.update(done=self.copied + self.already_present + self.failed_count, size=self.bytes)

    def fail(self, key, reason):
        self.failed_count += 1
        if len(self.failures) < FAILURE_LIMIT:
            self.failures.append({"key": key, "reason": reason})
        if self.progress is not None:
            self.progress.event(f"{self.progress.what}: {key} failed: {reason}")
        self.tick()

    def record(self, outcome, rel, size, method=None, resumed=0):
        """Count one object: ``present``, ``would-copy`` (check mode) or ``copied`` (verified by ``method``)."""
        if outcome == "present":
            self.already_present += 1
            self.tick()
            return
        self.copied += 1
        self.bytes += size
        if outcome == "would-copy":
            if len(self.to_copy) < LIST_LIMIT:
                self.to_copy.append(rel)
        else:
            self.verified += 1
            self.verified_by[method] = self.verified_by.get(method, 0) + 1
            self.bytes_resumed += resumed
        self.tick()

    def as_dict(self):
        result = {name: getattr(self, name) for name in (
            "found", "copied", "already_present", "verified", "failed_count", "deleted", "bytes", "bytes_resumed",
            "verified_by", "failures", "to_copy", "to_delete")}
        result["seconds"] = round(time.monotonic() - self.started, 3)
        result.update(by_kind({KIND: Counts(
            dry_run=self.dry_run, found=self.found, copied=self.copied, present=self.already_present,
            verified=self.verified, failed=self.failed_count, bytes=self.bytes,
            failures=[{"object": f["key"], "reason": f["reason"]} for f in self.failures],
            pending=self.to_copy)}, result["seconds"]))
        return result


MD5_METADATA = "md5chksum"  # whole-object md5, base64, as rclone stores it: each tool reads the other's
SOURCE_ETAG_METADATA = "mlops-source-etag"  # the source ETag a copy was made from, for re-runs


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str

    @property
    def multipart(self):
        return is_multipart_etag(self.etag)


def list_objects(client, endpoint, bucket, prefix="", start_after=None, stop_after=None):
    """Stream the objects under a prefix, page by page, in the server's key order; with ``start_after`` and
    ``stop_after`` (whole keys) only the keys after the one and up to the other: a key range listed on its own."""
    token, seen = None, set()
    first = {"StartAfter": start_after} if start_after and start_after > prefix else {}
    try:
        while True:
            page = client.list_objects_v2(Bucket=bucket, Prefix=prefix, **({"ContinuationToken": token} if token else first))
            for item in page.get("Contents", ()):
                if stop_after is not None and item["Key"] > stop_after:
                    return
                yield ObjectInfo(item["Key"], int(item["Size"]), normalize_etag(item["ETag"]))
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")
            if not token or token in seen:  # a listing we cannot finish is never taken as complete
                raise S3Error(f"the listing of bucket {bucket} at {endpoint.label} says more keys follow but gives "
                              + ("no continuation token" if not token else "a continuation token it gave before")
                              + "; the listing is incomplete, so nothing is taken as missing or extra")
            seen.add(token)
    except ApiError as exc:
        raise s3_error(exc, endpoint, bucket) from exc


HEAD_LIMIT = 1000  # up to this many keys, one HEAD each beats listing a large bucket


def head_info(client, endpoint, bucket, key):
    """The ObjectInfo of one key, or None when the key is not there (any other error is raised, typed)."""
    try:
        with s3_errors(endpoint, bucket, key):
            head = client.head_object(Bucket=bucket, Key=key)
    except S3NotFound:
        return None
    return ObjectInfo(key, int(head.get("ContentLength") or 0), normalize_etag(head.get("ETag") or ""))


def listed_keys(client, endpoint, bucket, prefix, keys, missing=None, parallel=8):
    """The objects of an explicit list of ``keys`` (relative to ``prefix``), in key order, as
    ``list_objects`` yields them: a HEAD per key when there are at most HEAD_LIMIT of them (no listing
    of the bucket), else the listing under the keys' common prefix, filtered. Keys not there are
    appended to ``missing`` (when given) and left out."""
    wanted = sorted(set(keys))
    if not wanted:
        return
    if len(wanted) <= HEAD_LIMIT:
        for rel, info in bounded_map(lambda rel: head_info(client, endpoint, bucket, prefix + rel), wanted, parallel):
            if info is None:
                if missing is not None:
                    missing.append(rel)
            else:
                yield info
        return
    common = os.path.commonprefix([prefix + rel for rel in wanted])
    remaining = set(wanted)
    for info in list_objects(client, endpoint, bucket, common):
        rel = info.key[len(prefix):]
        if rel in remaining:
            remaining.discard(rel)
            yield info
    if missing is not None:
        missing.extend(sorted(remaining))


def in_shard(key, shard_index, shard_count):
    """Whether a key belongs to this host's shard (a stable hash, the same on every host)."""
    return shard_count <= 1 or zlib.crc32(key.encode("utf-8", "surrogatepass")) % shard_count == shard_index


def b64_to_hex(value):
    try:
        return binascii.hexlify(base64.b64decode(value, validate=True)).decode()
    except (binascii.Error, ValueError):
        return None


def hex_to_b64(value):
    return base64.b64encode(binascii.unhexlify(value)).decode()


def stored_md5(head):
    """The whole-object md5 an uploader stored as metadata, or None."""
    value = (head.get("Metadata") or {}).get(MD5_METADATA)
    md5 = b64_to_hex(value) if value else None
    return md5 if md5 and len(md5) == 32 else None


def known_md5(etag, head=None):
    """The md5 of an object when it can be known without reading it."""
    if not is_multipart_etag(etag):
        return normalize_etag(etag)
    return stored_md5(head) if head else None


def part_sizes(client, bucket, key, size, etag):
    """Sizes of the parts a multipart object was uploaded in, as the server reports them."""
    parts = etag_part_count(etag)
    first = int(client.head_object(Bucket=bucket, Key=key, PartNumber=1)["ContentLength"])
    if parts == 1:
        return [size]
    if first * (parts - 1) < size <= first * parts:
        return [first] * (parts - 1) + [size - first * (parts - 1)]
    return [int(client.head_object(Bucket=bucket, Key=key, PartNumber=n)["ContentLength"])
            for n in range(1, parts + 1)]


class SourceCheck:
    """Feeds on the bytes read from a source object and tells whether they match its ETag.

    With ``whole=False`` (a multipart source whose part md5s are enough) no whole-object md5
    is kept, saving a pass over the bytes; :attr:`md5` is then None. With ``sha256`` (a bundle's
    seal, module_utils/bundle_seal.py) the bytes must also have that SHA-256.
    """

    def __init__(self, info, sizes=None, whole=True, sha256=None):
        self.info = info
        self.sha256 = (hashlib.sha256(), sha256) if sha256 else None
        self.whole = new_md5() if whole or not (info.multipart and sizes) else None
        self.sizes = list(sizes or [])
        self.part_digests = []
        self.part = new_md5()
        self.in_part = 0
        self.length = 0

    def update(self, data):
        if self.whole is not None:
            self.whole.update(data)
        if self.sha256:
            self.sha256[0].update(data)
        self.length += len(data)
        view = memoryview(data)
        while view and len(self.part_digests) < len(self.sizes):  # bytes past the parts only count
            want = self.sizes[len(self.part_digests)] - self.in_part
            take = view[:want]
            self.part.update(take)
            self.in_part += len(take)
            view = view[len(take):]
            if self.in_part == self.sizes[len(self.part_digests)]:
                self.part_digests.append(self.part.digest())
                self.part, self.in_part = new_md5(), 0

    def mismatch(self):
        """None when the bytes match the source's size and ETag, else the reason."""
        if self.length != self.info.size:
            return f"read {self.length} bytes of {self.info.size}"
        if self.info.multipart:
            got = multipart_etag(self.part_digests) if self.part_digests else None
        else:
            got = self.whole.hexdigest()
        if got != self.info.etag:
            return f"content gives ETag {got}, the source says {self.info.etag}"
        if self.sha256 and self.sha256[0].hexdigest() != self.sha256[1]:
            return f"content gives SHA-256 {self.sha256[0].hexdigest()}, the bundle's seal says {self.sha256[1]}"
        return None

    @property
    def md5(self):
        return self.whole.hexdigest() if self.whole is not None else None


@dataclass
class CopyResult:
    bytes: int
    method: str  # how the target was verified: "md5" (single part ETag) or "multipart-etag"
    resumed_bytes: int = 0  # parts of a killed run's upload kept (checked by md5), not sent again


class StaleUpload(S3Error):
    """A resumed multipart upload was started for another version of the source (its metadata says so): the
    object it made is removed and the copy is made afresh."""


def _read_exact(body, size):
    chunks, left = [], size
    while left:
        chunk = body.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def copy_object(src, dst, info, target_key, part_size=8 * MIB, threshold=16 * MIB, resume=True):
    """Stream one object from the Location ``src`` to ``target_key`` of the Location ``dst``, verified; a
    multipart upload a killed run left for the key is resumed (``resume``)."""
    with s3_errors(src.endpoint, src.bucket, info.key):
        head = src.client.head_object(Bucket=src.bucket, Key=info.key) if info.multipart else None
        sizes = part_sizes(src.client, src.bucket, info.key, info.size, info.etag) if info.multipart else None
        body = src.client.get_object(Bucket=src.bucket, Key=info.key)["Body"]
    try:
        # a multipart source copied in parts is vouched for by its part md5s: no whole-object md5 pass
        check = SourceCheck(info, sizes, whole=info.size <= threshold)
        return put_verified(body, check, src.url(info.key),
                            known_md5(info.etag, head), dst, target_key, part_size, threshold, resume=resume)
    except StaleUpload:
        if not resume:
            raise
    finally:
        body.close()
    return copy_object(src, dst, info, target_key, part_size, threshold, resume=False)


def put_verified(body, check, source_label, md5, dst, target_key, part_size=8 * MIB, threshold=16 * MIB,
                 source_etag=None, resume=False, complete=True):
    """Upload what ``body`` yields to ``dst``, verified at both ends; ``check`` vouches for the source.

    Nothing is left at the target unless every check passed: a single PUT is refused by the
    server on a Content-MD5 mismatch, and a multipart upload is completed only after the
    source bytes matched what ``check`` expects (and aborted otherwise). ``md5`` is the
    whole-object md5 when known up front; it is stored as metadata, with ``source_etag`` (the
    ETag of the object the bytes first came from; by default the one ``check`` holds). A
    single-part copy whose ETag will equal the source's needs neither and gets no metadata. With ``resume``, a
    multipart upload of the key already in progress (a killed run's) is carried on: see ``_copy_multipart``;
    with ``complete=False`` a multipart upload is returned checked and not completed (a :class:`PendingUpload`).
    """
    dst_client, dst_bucket = dst.client, dst.bucket
    metadata = {SOURCE_ETAG_METADATA: source_etag or check.info.etag}
    if md5:
        metadata[MD5_METADATA] = hex_to_b64(md5)
    try:
        if check.info.size <= threshold:
            data = _read_exact(body, check.info.size + 1)
            check.update(data)
            reason = check.mismatch()
            if reason:
                raise S3Error(f"{source_label}: {reason}")
            if metadata[SOURCE_ETAG_METADATA] == check.md5:
                metadata = {}  # a single-part copy of a single-part source: its ETag is the md5 and the source's
            else:
                metadata[MD5_METADATA] = hex_to_b64(check.md5)
            reply = dst_client.put_object(Bucket=dst_bucket, Key=target_key, Body=data,
                                          ContentMD5=hex_to_b64(check.md5), Metadata=metadata)
            if normalize_etag(reply.get("ETag")) != check.md5:
                raise S3Error(f"{dst.url(target_key)}: stored ETag "
                              f"{normalize_etag(reply.get('ETag'))} is not the md5 {check.md5}")
            return CopyResult(check.info.size, "md5")
        return _copy_multipart(body, check, metadata, dst, target_key, part_size, resume, complete)
    except ApiError as exc:
        raise s3_error(exc, dst.endpoint, dst_bucket, target_key) from exc


MAX_REUSED_PART = 64 * MIB  # a part is held in memory while it uploads (two per copy at most)


def reusable_parts(sizes):
    """The source's part sizes when the copy can be uploaded in the same parts, else None.

    Then each part's md5, computed once to check the source, is also its Content-MD5, and
    the copy gets the source's very ETag. Parts over MAX_REUSED_PART (a source uploaded in
    parts of up to 5 GiB) are not reused: the copy is re-chunked into ``part_size`` parts,
    the source is still checked against its own ETag by the md5 of each source part, hashed
    as the bytes stream past (nothing of it held whole), and the copy is checked against the
    multipart ETag of the parts it was uploaded in.
    """
    if sizes and len(sizes) <= 10000 and all(5 * MIB <= size <= MAX_REUSED_PART for size in sizes[:-1]) \
            and sizes[-1] <= MAX_REUSED_PART:
        return sizes
    return None


def upload_in_progress(dst, target_key):
    """``(upload id, {part number: (md5, size)}, older upload ids)`` of the newest multipart upload of a key that
    a killed run left at the target; ``(None, {}, [])`` when there is none (or the server cannot list them)."""
    client, bucket = dst.client, dst.bucket
    try:
        uploads = sorted((upload for upload in client.list_multipart_uploads(Bucket=bucket, Prefix=target_key)
                          .get("Uploads", ()) if upload["Key"] == target_key), key=lambda upload: upload["Initiated"])
        if not uploads:
            return None, {}, []
        newest, parts, marker = uploads[-1]["UploadId"], {}, 0
        while True:
            page = client.list_parts(Bucket=bucket, Key=target_key, UploadId=newest, PartNumberMarker=marker)
            for part in page.get("Parts", ()):
                parts[int(part["PartNumber"])] = (normalize_etag(part["ETag"]), int(part["Size"]))
            if not page.get("IsTruncated") or not page.get("NextPartNumberMarker"):
                break
            marker = page["NextPartNumberMarker"]
    except ApiError:
        return None, {}, []
    return newest, parts, [upload["UploadId"] for upload in uploads[:-1]]


@dataclass
class PendingUpload:
    """A multipart upload whose parts are all sent and checked, not yet completed (nothing visible at the target):
    ``complete()`` makes the object, ``abort()`` drops it."""

    dst: object
    target_key: str
    upload_id: str
    parts: list
    digests: list
    metadata: dict
    carried_on: bool  # the upload a killed run had begun
    stale: list  # older uploads of the key, aborted once this one completes
    length: int
    resumed: int

    def complete(self):
        client, bucket, key = self.dst.client, self.dst.bucket, self.target_key
        try:
            reply = client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=self.upload_id,
                                                     MultipartUpload={"Parts": self.parts})
        except BaseException:
            self.abort()
            raise
        expected = multipart_etag(self.digests)
        if normalize_etag(reply.get("ETag")) != expected:
            client.delete_object(Bucket=bucket, Key=key)
            raise S3Error(f"{self.dst.url(key)}: stored ETag "
                          f"{normalize_etag(reply.get('ETag'))} is not the multipart ETag {expected}; removed")
        stored = (client.head_object(Bucket=bucket, Key=key).get("Metadata") or {}) if self.carried_on else {}
        if self.carried_on and {name: stored.get(name) for name in self.metadata} != self.metadata:
            client.delete_object(Bucket=bucket, Key=key)
            raise StaleUpload(f"{self.dst.url(key)}: the upload resumed was begun for another version of the "
                              "source; removed")
        for older in self.stale:  # uploads of the key older still: their parts are of no use now
            try:
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=older)
            except ApiError:
                pass
        return CopyResult(self.length, "multipart-etag", self.resumed)

    def abort(self):
        self.dst.client.abort_multipart_upload(Bucket=self.dst.bucket, Key=self.target_key, UploadId=self.upload_id)


def _copy_multipart(body, check, metadata, dst, target_key, part_size, resume=False, complete=True):
    """Upload in parts; while one part uploads the next is read, so at most two parts are in memory.

    With ``resume``, the newest upload of the key already in progress is carried on: each part it holds is kept
    when its size and md5 are those of the bytes read for that part now (they are read, and checked against the
    source, all the same), and only the others are sent. The object it makes must carry this copy's metadata
    (the upload's cannot be read before): otherwise it is removed and :class:`StaleUpload` raised. With
    ``complete=False`` the checked upload is returned as a :class:`PendingUpload`, to be completed later.
    """
    dst_client, dst_bucket = dst.client, dst.bucket
    plan = reusable_parts(check.sizes)
    upload_id, held, stale = upload_in_progress(dst, target_key) if resume else (None, {}, [])
    carried_on = upload_id is not None
    if not carried_on:
        upload_id = dst_client.create_multipart_upload(Bucket=dst_bucket, Key=target_key, Metadata=metadata)["UploadId"]

    def send(number, data, digest, upload_id):
        reply = dst_client.upload_part(Bucket=dst_bucket, Key=target_key, UploadId=upload_id, PartNumber=number,
                                       Body=data, ContentMD5=base64.b64encode(digest).decode())
        return {"ETag": reply["ETag"], "PartNumber": number}

    resumed = 0
    try:
        parts, digests, pending = [], [], None
        with ThreadPoolExecutor(max_workers=1) as uploader:
            while True:
                number = len(digests) + 1
                data = _read_exact(body, plan[number - 1] if plan and number <= len(plan) else part_size)
                if not data:
                    break
                check.update(data)
                if plan and len(check.part_digests) == number and len(data) == plan[number - 1]:
                    digest = check.part_digests[-1]  # this part is exactly the source's part
                else:
                    digest = new_md5()
                    digest.update(data)
                    digest = digest.digest()
                digests.append(digest)
                if pending is not None:
                    parts.append(pending.result())
                    pending = None
                if held.get(number) == (digest.hex(), len(data)):
                    parts.append({"ETag": f'"{digest.hex()}"', "PartNumber": number})
                    resumed += len(data)
                    continue
                if number in held and not parts:  # the upload holds other bytes from its first part on: a new one
                    stale.append(upload_id)
                    upload_id = dst_client.create_multipart_upload(Bucket=dst_bucket, Key=target_key,
                                                                   Metadata=metadata)["UploadId"]
                    held, carried_on = {}, False
                pending = uploader.submit(send, number, data, digest, upload_id)
            if pending is not None:
                parts.append(pending.result())
        reason = check.mismatch()
        if reason:
            raise S3Error(f"source of s3://{dst_bucket}/{target_key}: {reason}")
    except BaseException:
        dst_client.abort_multipart_upload(Bucket=dst_bucket, Key=target_key, UploadId=upload_id)
        raise
    upload = PendingUpload(dst, target_key, upload_id, parts, digests, metadata, carried_on, stale, check.length,
                           resumed)
    return upload.complete() if complete else upload


def same_content(source, target, head_target):
    """Whether a target object already holds the source's bytes (``head_target()`` only if needed)."""
    if target is None or target.size != source.size:
        return False
    if target.etag == source.etag:
        return True
    head = head_target()
    if (head.get("Metadata") or {}).get(SOURCE_ETAG_METADATA) == source.etag:
        return True
    source_md5 = known_md5(source.etag)
    return source_md5 is not None and source_md5 == known_md5(target.etag, head)
