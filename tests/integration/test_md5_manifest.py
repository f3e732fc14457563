"""md5_manifest through ansible-playbook on a real ssh host: create, verify, fail, re-run, check mode."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import uuid

import pytest

pytestmark = pytest.mark.integration

TASK = "md5 manifest"


def play(**options):
    return [{"name": "md5_manifest", "hosts": "source", "gather_facts": False,
             "tasks": [{"name": TASK, "mlops.migration.md5_manifest": options}]}]


@pytest.fixture
def dataset(ssh_stack):
    """A fresh tree on the source host's filesystem, removed afterwards."""
    root = os.path.join(ssh_stack["ssh"]["source"].root, f"ds-{uuid.uuid4().hex[:8]}")
    files = {
        "config.json": b'{"lr": 0.01}',
        "empty.txt": b"",
        "models/mnist.pt": os.urandom(2 * 1024 * 1024 + 3),
        "debug images/step 10+val%.png": os.urandom(4096),
        "Projekt Ü/notes.md": "Ü".encode(),
        "a/b/c/d/e/deep.bin": b"deep",
    }
    for name, data in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
    yield root, files
    shutil.rmtree(root, ignore_errors=True)
    for suffix in (".md5", ".tar.gz"):
        if os.path.exists(root + suffix):
            os.unlink(root + suffix)


def md5sum_of_tree(ssh_stack, root):
    """What GNU md5sum prints for the tree, run on the host over ssh."""
    out = ssh_stack["ssh"]["source"].run(
        f"cd '{root}' && find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 md5sum --").stdout
    return sorted(out.splitlines())


def test_create_then_rerun_then_check_mode(playbook, dataset, ssh_stack):
    root, files = dataset
    manifest = root + ".md5"

    first = playbook(play(path=root))
    result = first.task(TASK)["result"]
    assert result["changed"] is True
    assert result["manifest"] == manifest
    assert result["files"] == len(files)
    assert result["bytes"] == sum(len(data) for data in files.values())
    with open(manifest, encoding="utf-8") as handle:
        written = handle.read()
    assert sorted(written.splitlines()) == md5sum_of_tree(ssh_stack, root)
    assert subprocess.run(["md5sum", "-c", "--quiet", manifest], cwd=root, check=False).returncode == 0

    second = playbook(play(path=root))
    assert second.task(TASK)["result"]["changed"] is False

    with open(os.path.join(root, "config.json"), "wb") as handle:
        handle.write(b'{"lr": 0.02}')
    mtime = os.stat(manifest).st_mtime_ns
    checked = playbook(play(path=root), check=True)
    assert checked.task(TASK)["result"]["changed"] is True
    assert os.stat(manifest).st_mtime_ns == mtime
    with open(manifest, encoding="utf-8") as handle:
        assert handle.read() == written


def test_check_mode_on_a_new_tree_writes_nothing(playbook, dataset):
    root, _files = dataset
    run = playbook(play(path=root), check=True)
    assert run.task(TASK)["result"]["changed"] is True
    assert not os.path.exists(root + ".md5")


def test_diff_mode_shows_the_changed_line(playbook, dataset):
    root, _files = dataset
    playbook(play(path=root))
    with open(os.path.join(root, "empty.txt"), "wb") as handle:
        handle.write(b"now with content")
    run = playbook(play(path=root), diff=True, check=True)
    diff = run.task(TASK)["result"]["diff"]
    removed = set(diff["before"].splitlines()) - set(diff["after"].splitlines())
    assert removed == {f"{hashlib.md5(b'').hexdigest()}  empty.txt"}


def test_verify_ok_and_verify_names_every_bad_path(playbook, dataset):
    root, files = dataset
    playbook(play(path=root))
    ok = playbook(play(path=root, state="verified"))
    result = ok.task(TASK)["result"]
    assert result["changed"] is False
    assert result["verified"] == len(files)
    assert result["mismatched"] == result["missing"] == result["extra"] == []

    with open(os.path.join(root, "models/mnist.pt"), "r+b") as handle:
        handle.seek(1024 * 1024)
        handle.write(b"\x00corrupt")
    os.unlink(os.path.join(root, "Projekt Ü/notes.md"))
    with open(os.path.join(root, "debug images/new one.png"), "wb") as handle:
        handle.write(b"extra")

    bad = playbook(play(path=root, state="verified"), expect_rc=2)
    failed = bad.task(TASK)
    assert failed["status"] == "failed"
    res = failed["result"]
    assert res["mismatched"] == ["models/mnist.pt"]
    assert res["missing"] == ["Projekt Ü/notes.md"]
    assert res["extra"] == ["debug images/new one.png"]
    assert res["verified"] == len(files) - 2
    for name in ("models/mnist.pt", "Projekt Ü/notes.md", "debug images/new one.png"):
        assert name in res["msg"]


def test_archive_members_verify_against_the_tree_manifest(playbook, dataset):
    root, _files = dataset
    playbook(play(path=root))
    archive = root + ".tar.gz"
    with tarfile.open(archive, "w:gz") as out:
        out.add(root, arcname=".")
    run = playbook(play(path=archive, manifest=root + ".md5", archive_contents=True, state="verified"))
    assert run.task(TASK)["result"]["verified"] == 6

    with open(archive, "r+b") as handle:
        handle.seek(200)
        handle.write(b"\xff" * 64)
    bad = playbook(play(path=archive, manifest=root + ".md5", archive_contents=True, state="verified"),
                   expect_rc=2)
    assert "cannot read archive" in bad.task(TASK)["result"]["msg"]


def test_manifest_inside_the_tree_does_not_list_itself(playbook, dataset):
    root, files = dataset
    inside = os.path.join(root, "MD5SUMS")
    playbook(play(path=root, manifest=inside))
    with open(inside, encoding="utf-8") as handle:
        assert "MD5SUMS" not in handle.read()
    again = playbook(play(path=root, manifest=inside, state="verified"))
    assert again.task(TASK)["result"]["verified"] == len(files)


def test_single_file(playbook, dataset):
    root, files = dataset
    model = os.path.join(root, "models/mnist.pt")
    playbook(play(path=model))
    with open(model + ".md5", encoding="utf-8") as handle:
        assert handle.read() == f"{hashlib.md5(files['models/mnist.pt']).hexdigest()}  mnist.pt\n"
    assert playbook(play(path=model, state="verified")).task(TASK)["result"]["verified"] == 1


def test_missing_path_is_a_clear_error(playbook, dataset):
    root, _files = dataset
    run = playbook(play(path=root + "-nope"), expect_rc=2)
    assert run.task(TASK)["result"]["msg"] == f"path {root}-nope does not exist"


def test_malformed_manifest_names_the_line(playbook, dataset):
    root, _files = dataset
    playbook(play(path=root))
    with open(root + ".md5", "a", encoding="utf-8") as handle:
        handle.write("this is not an md5 line\n")
    run = playbook(play(path=root, state="verified"), expect_rc=2)
    msg = run.task(TASK)["result"]["msg"]
    assert f"{root}.md5 line 7" in msg and "not an md5sum line" in msg


def test_missing_manifest_is_a_clear_error(playbook, dataset):
    root, _files = dataset
    run = playbook(play(path=root, state="verified"), expect_rc=2)
    assert run.task(TASK)["result"]["msg"].startswith(f"cannot read manifest {root}.md5")


def test_unreadable_file_is_named(playbook, dataset):
    root, _files = dataset
    if os.geteuid() == 0:
        pytest.skip("root reads a chmod 000 file; the unreadable-file error is covered by "
                    "tests/unit/plugins/module_utils/files/test_manifest.py::test_unreadable_file_fails_naming_it")
    target = os.path.join(root, "config.json")
    os.chmod(target, 0)
    try:
        run = playbook(play(path=root), expect_rc=2)
    finally:
        os.chmod(target, 0o644)
    assert f"cannot read {target}: Permission denied" == run.task(TASK)["result"]["msg"]


def test_module_defaults_group(playbook, dataset):
    """The action group lets module_defaults set options for every module of the collection."""
    root, _files = dataset
    plays = [{"name": "group defaults", "hosts": "source", "gather_facts": False,
              "module_defaults": {"group/mlops.migration.migration": {"manifest": root + ".group.md5"}},
              "tasks": [{"name": TASK, "mlops.migration.md5_manifest": {"path": root}}]}]
    run = playbook(plays)
    assert run.task(TASK)["result"]["manifest"] == root + ".group.md5"
    os.unlink(root + ".group.md5")
