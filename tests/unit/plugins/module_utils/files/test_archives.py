"""Bundle archives are packed reproducibly and extracted safely (module_utils/files/archives.py)."""

import io
import os
import tarfile
import zipfile

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.files import archives
from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError


def bundle(tmp_path):
    root = tmp_path / "bundle"
    (root / "objects" / "deep" / "er").mkdir(parents=True)
    (root / "objects" / "deep" / "er" / "a b.txt").write_bytes(b"hello")
    (root / "objects" / "empty-marker").mkdir()
    (root / "MD5SUMS").write_text("x\n")
    return root


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_a_packed_bundle_opens_beside_its_archive_and_is_removed_after(tmp_path, kind):
    path, _md5 = archives.pack(str(bundle(tmp_path)), kind)
    with archives.opened_bundle(path) as root:
        assert os.path.dirname(root) == os.path.dirname(path)  # on the archive's file system, not a tmpfs
        assert open(os.path.join(root, "objects", "deep", "er", "a b.txt"), "rb").read() == b"hello"
        assert os.path.isdir(os.path.join(root, "objects", "empty-marker"))
    assert not os.path.exists(root)


def tar_with(tmp_path, *members):
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as out:
        for info, data in members:
            out.addfile(info, io.BytesIO(data) if data is not None else None)
    return str(path)


def member(name, data=b"x", kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize("members,complaint", [
    ([member("../outside.txt")], "climbs out"),
    ([member("/etc/cron.d/x")], "not a plain relative path"),
    ([member("link", kind=tarfile.SYMTYPE, link="/etc")], "a link or special file"),
    ([member("hard", kind=tarfile.LNKTYPE, link="../x")], "a link or special file"),
    ([member("dev", kind=tarfile.CHRTYPE)], "a link or special file"),
])
def test_tar_members_that_escape_or_are_special_are_refused(tmp_path, members, complaint):
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(MigrationError, match=complaint):
        archives.extract(tar_with(tmp_path, *members), str(dest))
    assert not (tmp_path / "outside.txt").exists()


def test_zip_members_that_escape_or_are_links_are_refused(tmp_path):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as out:
        out.writestr("../../outside.txt", b"x")
    with pytest.raises(MigrationError, match="climbs out"):
        archives.extract(str(path), str(tmp_path))
    with zipfile.ZipFile(path, "w") as out:
        link = zipfile.ZipInfo("link")
        link.external_attr = (0o120777 << 16)
        out.writestr(link, "/etc/passwd")
    with pytest.raises(MigrationError, match="a link or special file"):
        archives.extract(str(path), str(tmp_path))


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_bombs_stop_at_the_byte_and_entry_limits(tmp_path, kind):
    path = tmp_path / f"bomb.{kind}"
    zeros = b"\0" * (4 << 20)
    if kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
            for n in range(4):
                out.writestr(f"z{n}", zeros)
    else:
        with tarfile.open(path, "w:gz") as out:
            for n in range(4):
                info = tarfile.TarInfo(f"z{n}")
                info.size = len(zeros)
                out.addfile(info, io.BytesIO(zeros))
    assert os.path.getsize(path) < 200_000  # 16 MiB of zeros, compressed
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(MigrationError, match="unpacks to more than its file system has free"):
        archives.extract(str(path), str(tmp_path / "a"), max_bytes=10 << 20)
    with pytest.raises(MigrationError, match="holds more than"):
        archives.extract(str(path), str(tmp_path / "b"), max_entries=3)


def test_no_tarfile_extraction_filter_is_needed(tmp_path, monkeypatch):
    """Pythons without tarfile's extraction filters (before 3.11.4) open tar.gz bundles all the same."""
    path, _md5 = archives.pack(str(bundle(tmp_path)), "tar.gz")
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    monkeypatch.setattr(tarfile.TarFile, "extractall", None)
    with archives.opened_bundle(path) as root:
        assert os.path.isfile(os.path.join(root, "MD5SUMS"))
