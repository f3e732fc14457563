"""Unit tests of module_utils/checksums.py: md5 of files and streams, multipart ETags."""

import hashlib
import io
import os

import pytest

from ansible_collections.mlops.migration.plugins.module_utils import checksums as c


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


def test_md5_file_matches_hashlib_across_chunk_boundaries(tmp_path):
    data = os.urandom(c.CHUNK_SIZE * 2 + 5)
    write(str(tmp_path / "f"), data)
    assert c.md5_file(str(tmp_path / "f"), chunk_size=c.CHUNK_SIZE) == (hashlib.md5(data).hexdigest(), len(data))
    assert c.md5_fileobj(io.BytesIO(data), chunk_size=1000)[0] == hashlib.md5(data).hexdigest()


def test_md5_file_names_the_file_it_cannot_read(tmp_path):
    with pytest.raises(c.ManifestError, match=r"cannot read .*nope"):
        c.md5_file(str(tmp_path / "nope"))


def test_multipart_etag_is_md5_of_part_digests():
    parts = [b"a" * 10, b"b" * 10, b"c" * 3]
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    assert c.multipart_etag(hashlib.md5(p).digest() for p in parts) == expected
    assert c.multipart_etag_of_fileobj(io.BytesIO(b"".join(parts)), part_size=10, chunk_size=4) == expected


def test_multipart_etag_exact_multiple_has_no_empty_last_part():
    data = b"x" * 20
    expected = hashlib.md5(hashlib.md5(b"x" * 10).digest() * 2).hexdigest() + "-2"
    assert c.multipart_etag_of_fileobj(io.BytesIO(data), part_size=10) == expected


def test_multipart_etag_of_empty_stream_is_one_part():
    assert c.multipart_etag_of_fileobj(io.BytesIO(b""), 5).endswith("-1")
    with pytest.raises(ValueError):
        c.multipart_etag([])


@pytest.mark.parametrize("etag,multipart,parts", [
    ('"5d41402abc4b2a76b9719d911017c592"', False, 1),
    ('"a7211aa708204e7d570ff79cb5265d73-3"', True, 3),
    ("a7211aa708204e7d570ff79cb5265d73-x", False, 1),
    ("", False, 1),
])
def test_etag_forms(etag, multipart, parts):
    assert c.is_multipart_etag(etag) is multipart
    assert c.etag_part_count(etag) == parts
