"""Unit tests of module_utils/files/manifest.py: md5sum manifests, trees, archives, comparisons."""

import hashlib
import os
import subprocess
import tarfile
import zipfile

import pytest

from ansible_collections.mlops.migration.plugins.module_utils import atomic
from ansible_collections.mlops.migration.plugins.module_utils.files import manifest as c


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    files = {
        "a.txt": b"alpha\n",
        "empty": b"",
        "dir/b.bin": os.urandom(3 * 1024 * 1024 + 17),
        "dir/sub dir/ü+%.txt": "unicode ü".encode(),
        "deep/1/2/3/4/5/leaf": b"leaf",
    }
    for name, data in files.items():
        write(str(root / name), data)
    return root, {name: hashlib.md5(data).hexdigest() for name, data in files.items()}


@pytest.mark.parametrize("name", ["plain.txt", "with space", "back\\slash", "new\nline", "ü/ñ", "cr\rx"])
def test_manifest_line_round_trip(name):
    line = c.format_manifest_line("d41d8cd98f00b204e9800998ecf8427e", name)
    assert line.endswith("\n") and line.count("\n") == 1
    assert c.parse_manifest_line(line) == ("d41d8cd98f00b204e9800998ecf8427e", name)


def test_manifest_lines_match_md5sum_output(tmp_path):
    names = ["plain.txt", "back\\slash", "new\nline"]
    for name in names:
        write(str(tmp_path / name), name.encode())
    out = subprocess.run(["md5sum", "--"] + names, cwd=tmp_path, check=True, capture_output=True).stdout.decode()
    ours = "".join(c.format_manifest_line(hashlib.md5(n.encode()).hexdigest(), n) for n in names)
    assert ours == out


def test_manifest_written_by_us_passes_md5sum_check(tree, tmp_path):
    root, _expected = tree
    manifest = tmp_path / "m.md5"
    atomic.write_text_atomic(str(manifest), c.render_manifest(c.hash_tree(str(root)).entries))
    check = subprocess.run(["md5sum", "-c", "--quiet", str(manifest)], cwd=root, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("line,why", [
    ("nothex  file", "not an md5sum line"),
    ("d41d8cd98f00b204e9800998ecf8427e file", "not an md5sum line"),
    ("d41d8cd98f00b204e9800998ecf8427e  ", "the path is empty"),
    ("zz1d8cd98f00b204e9800998ecf8427e  file", "not an md5sum line"),
    ("\\d41d8cd98f00b204e9800998ecf8427e  bad\\qescape", "bad escape"),
])
def test_malformed_lines_name_the_line(line, why):
    with pytest.raises(c.ManifestError, match=rf"m.md5 line 7: .*{why}"):
        c.parse_manifest_line(line, 7, "m.md5")


def test_binary_mode_marker_is_accepted():
    assert c.parse_manifest_line("D41D8CD98F00B204E9800998ECF8427E *f\n") == ("d41d8cd98f00b204e9800998ecf8427e", "f")


def test_read_manifest_rejects_duplicates_and_skips_blank_lines(tmp_path):
    path = tmp_path / "m"
    path.write_text("d41d8cd98f00b204e9800998ecf8427e  a\n\n")
    assert c.read_manifest(str(path)) == {"a": "d41d8cd98f00b204e9800998ecf8427e"}
    path.write_text("d41d8cd98f00b204e9800998ecf8427e  a\nd41d8cd98f00b204e9800998ecf8427e  a\n")
    with pytest.raises(c.ManifestError, match="line 2: 'a' is listed twice"):
        c.read_manifest(str(path))
    with pytest.raises(c.ManifestError, match="cannot read manifest"):
        c.read_manifest(str(tmp_path / "absent"))


@pytest.mark.parametrize("parallel", [1, 3])
def test_hash_tree_hashes_every_regular_file(tree, parallel):
    root, expected = tree
    os.symlink("a.txt", root / "link")
    result = c.hash_tree(str(root), parallel=parallel)
    assert result.entries == expected
    assert result.skipped == ["link"]
    assert result.bytes == sum(os.path.getsize(root / n) for n in expected)


def test_hash_tree_order_is_sorted_within_directories(tree):
    root, _expected = tree
    names = [name for name, _path in c.iter_tree_files(str(root))]
    assert names == ["a.txt", "deep/1/2/3/4/5/leaf", "dir/b.bin", "dir/sub dir/ü+%.txt", "empty"]


def test_hash_tree_exclude_patterns(tree):
    root, expected = tree
    result = c.hash_tree(str(root), exclude=["dir", "*.txt"])
    assert set(result.entries) == {"empty", "deep/1/2/3/4/5/leaf"}
    assert set(expected) - set(result.entries) == {"a.txt", "dir/b.bin", "dir/sub dir/ü+%.txt"}


def test_hash_tree_keeps_undecodable_names(tmp_path):
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    with open(raw, "wb") as handle:
        handle.write(b"x")
    entries = c.hash_tree(str(tmp_path)).entries
    assert len(entries) == 1
    name = next(iter(entries))
    assert os.fsencode(name) == b"caf\xe9"
    manifest = tmp_path.parent / "undecodable.md5"
    atomic.write_text_atomic(str(manifest), c.render_manifest(entries))
    assert c.read_manifest(str(manifest)) == entries


def test_unreadable_file_fails_naming_it(tree, monkeypatch):
    root, _expected = tree
    real_open = open

    def guarded_open(path, *args, **kwargs):
        if str(path).endswith("b.bin"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", guarded_open)
    with pytest.raises(c.ManifestError, match=r"cannot read .*dir/b.bin: Permission denied"):
        c.hash_tree(str(root), parallel=2)


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_archive_members_hash_like_the_tree(tree, tmp_path, kind):
    root, expected = tree
    archive = str(tmp_path / f"bundle.{kind}")
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as out:
            for name in expected:
                out.write(root / name, name)
            out.writestr("dir/", b"")
    else:
        with tarfile.open(archive, "w:gz" if kind.endswith("gz") else "w") as out:
            out.add(str(root), arcname=".")
    assert c.is_archive(archive)
    assert c.hash_archive_members(archive).entries == expected


def test_corrupt_archive_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(c.ManifestError, match=r"cannot read archive .*bad.tar.gz"):
        c.hash_archive_members(str(bad))


def test_compare_manifests_names_each_kind_of_difference():
    diff = c.compare_manifests({"a": "1" * 32, "b": "2" * 32, "c": "3" * 32},
                               {"a": "1" * 32, "b": "f" * 32, "d": "4" * 32})
    assert (diff.verified, diff.mismatched, diff.missing, diff.extra) == (["a"], ["b"], ["c"], ["d"])
    assert not diff.ok
    assert diff.summary() == "1 mismatched (b); 1 missing (c); 1 extra (d)"
    assert c.compare_manifests({"a": "1" * 32}, {"a": "1" * 32}).ok


def test_summary_truncates_long_lists():
    diff = c.compare_manifests({f"f{i:03}": "1" * 32 for i in range(30)}, {})
    assert diff.summary(limit=3) == "30 missing (f000, f001, f002 and 27 more)"
