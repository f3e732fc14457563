"""file_sync through ansible-playbook between the two real sshd hosts."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid

import psutil
import pytest

from tests.integration.ansible_run import run_playbook, start_playbook

pytestmark = pytest.mark.integration

TASK = "file sync"


@pytest.fixture
def hosts(ssh_stack):
    return ssh_stack["ssh"]["source"], ssh_stack["ssh"]["target"]


@pytest.fixture
def dirs(hosts):
    """A source directory on the source host and a destination path on the target host."""
    source, target = hosts
    name = f"fs-{uuid.uuid4().hex[:8]}"
    src, dest = os.path.join(source.root, name), os.path.join(target.root, "landing", name)
    os.makedirs(src)
    yield src, dest
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(dest, ignore_errors=True)


def push(hosts, src, dest, **options):
    """A play running file_sync on the source host, pushing to the target host."""
    _source, target = hosts
    args = dict(src=src, dest_path=dest, dest_host=target.host, dest_port=target.port,
                dest_user=target.user, ssh_private_key_file=target.client_key,
                known_hosts=target.known_hosts)
    args.update(options)
    return [{"name": "file_sync", "hosts": "source", "gather_facts": False,
             "tasks": [{"name": TASK, "mlops.migration.file_sync": args}]}]


def write(path, data=b"", mode=None, mtime=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    if mode is not None:
        os.chmod(path, mode)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def snapshot(root):
    """Everything that archive mode should carry: type, mode, size, mtime, link target, content."""
    state = {}
    for base, subdirs, files in os.walk(root):
        for name in subdirs + files:
            path = os.path.join(base, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if os.path.islink(path):
                state[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                state[rel] = ("dir", oct(st.st_mode & 0o7777))
            else:
                with open(path, "rb") as handle:
                    state[rel] = ("file", oct(st.st_mode & 0o7777), st.st_size, int(st.st_mtime),
                                  handle.read())
    return state


def seed_tree(src):
    write(os.path.join(src, "config.json"), b'{"lr": 0.01}', 0o640, 1_600_000_000)
    write(os.path.join(src, "run.sh"), b"#!/bin/sh\necho hi\n", 0o755)
    write(os.path.join(src, "Projekt Ü/step 10+val%.png"), os.urandom(70_000))
    write(os.path.join(src, "models/mnist.pt"), os.urandom(1_500_000))
    os.makedirs(os.path.join(src, "empty/dir"))
    os.chmod(os.path.join(src, "models"), 0o750)
    os.symlink("models/mnist.pt", os.path.join(src, "latest.pt"))
    os.link(os.path.join(src, "models/mnist.pt"), os.path.join(src, "models/mnist-hardlink.pt"))


def test_tree_push_keeps_everything_and_reruns_clean(playbook, hosts, dirs):
    src, dest = dirs
    seed_tree(src)

    first = playbook(push(hosts, src, dest, hard_links=True, verify=True))
    result = first.task(TASK)["result"]
    assert result["changed"] is True
    assert result["transferred"] == 4  # the hard link is made, not sent
    assert result["verified"] == 5 and result["mismatched"] == result["missing"] == []
    assert snapshot(dest) == snapshot(src)
    assert os.stat(os.path.join(dest, "models/mnist.pt")).st_ino == \
        os.stat(os.path.join(dest, "models/mnist-hardlink.pt")).st_ino
    assert os.path.isdir(os.path.join(dest, "empty/dir"))

    again = playbook(push(hosts, src, dest, hard_links=True))
    assert again.task(TASK)["result"]["changed"] is False
    assert again.task(TASK)["result"]["transferred"] == 0


def test_check_mode_lists_changes_and_writes_nothing(playbook, hosts, dirs):
    src, dest = dirs
    seed_tree(src)
    checked = playbook(push(hosts, src, dest), check=True)
    result = checked.task(TASK)["result"]
    assert result["changed"] is True
    assert "<f+++++++++ models/mnist.pt" in result["items"]
    assert not os.path.exists(dest)

    playbook(push(hosts, src, dest))
    before = snapshot(dest)
    write(os.path.join(src, "config.json"), b'{"lr": 0.5}')
    checked = playbook(push(hosts, src, dest), check=True)
    assert checked.task(TASK)["result"]["changed"] is True
    assert snapshot(dest) == before


def test_two_stage_bulk_then_delta_moves_exactly_the_changes(playbook, hosts, dirs):
    src, dest = dirs
    seed_tree(src)
    playbook(push(hosts, src, dest))
    write(os.path.join(dest, "stale-at-target.txt"), b"left from an old copy")

    # The source keeps living between the bulk copy and the downtime window.
    write(os.path.join(src, "config.json"), b'{"lr": 0.02}', 0o640, 1_600_000_000)  # same size+mtime
    write(os.path.join(src, "models/new.pt"), b"new model")
    os.unlink(os.path.join(src, "run.sh"))

    delta = playbook(push(hosts, src, dest, delete=True, checksum=True, verify=True))
    result = delta.task(TASK)["result"]
    changed_files = {item.split(" ", 1)[1] for item in result["items"] if not item.startswith(".d")}
    assert changed_files == {"config.json", "models/new.pt", "run.sh", "stale-at-target.txt"}
    assert result["deleted"] == 2
    assert result["transferred"] == 2
    assert snapshot(dest) == snapshot(src)


def test_tar_file_list_sends_only_what_differs(playbook, hosts, dirs):
    src, dest = dirs
    seed_tree(src)
    listed = ["models/mnist.pt", "config.json", "Projekt Ü/step 10+val%.png"]
    first = playbook(push(hosts, src, dest, method="tar", files_from=listed, verify=True))
    result = first.task(TASK)["result"]
    assert result["transferred"] == 3 and result["verified"] == 3
    assert result["bytes"] == sum(os.path.getsize(os.path.join(src, n)) for n in listed)
    for name in listed:
        s, d = os.stat(os.path.join(src, name)), os.stat(os.path.join(dest, name))
        assert (s.st_mode, s.st_size, int(s.st_mtime)) == (d.st_mode, d.st_size, int(d.st_mtime))
    assert not os.path.exists(os.path.join(dest, "run.sh"))

    assert playbook(push(hosts, src, dest, method="tar", files_from=listed)).task(TASK)["result"]["changed"] is False

    write(os.path.join(src, "config.json"), b'{"lr": 0.9}')
    checked = playbook(push(hosts, src, dest, method="tar", files_from=listed), check=True)
    assert checked.task(TASK)["result"]["items"] == ["send config.json"]
    with open(os.path.join(dest, "config.json"), "rb") as handle:
        assert handle.read() == b'{"lr": 0.01}'
    again = playbook(push(hosts, src, dest, method="tar", files_from=listed))
    assert again.task(TASK)["result"]["items"] == ["send config.json"]


def test_rsync_file_list_from_a_file(playbook, hosts, dirs):
    src, dest = dirs
    seed_tree(src)
    list_file = src + ".list"
    with open(list_file, "w", encoding="utf-8") as handle:
        handle.write("# written by a database query\nmodels/mnist.pt\nconfig.json\n")
    try:
        run = playbook(push(hosts, src, dest, files_from=list_file, verify=True))
    finally:
        os.unlink(list_file)
    result = run.task(TASK)["result"]
    assert result["verified"] == 2
    assert sorted(os.listdir(dest)) == ["config.json", "models"]


def test_pull_from_the_source_host(ssh_stack, hosts, dirs, tmp_path):
    source, _target = hosts
    src, dest = dirs
    seed_tree(src)
    plays = [{"name": "pull", "hosts": "target", "gather_facts": False, "tasks": [{
        "name": TASK, "mlops.migration.file_sync": dict(
            src=src, dest_path=dest, src_host=source.host, src_port=source.port, src_user=source.user,
            ssh_private_key_file=source.client_key, known_hosts=source.known_hosts, verify=True)}]}]
    run = run_playbook(plays, ssh_stack.inventory_file, str(tmp_path))
    assert run.task(TASK)["result"]["verified"] == 5
    assert snapshot(dest) == snapshot(src)


def test_verify_state_names_a_tampered_file(playbook, hosts, dirs):
    src, dest = dirs
    seed_tree(src)
    playbook(push(hosts, src, dest))
    assert playbook(push(hosts, src, dest, state="verified")).task(TASK)["result"]["verified"] == 5
    with open(os.path.join(dest, "models/mnist.pt"), "r+b") as handle:
        handle.write(b"bitrot")
    os.unlink(os.path.join(dest, "config.json"))
    bad = playbook(push(hosts, src, dest, state="verified"), expect_rc=2)
    result = bad.task(TASK)["result"]
    assert "models/mnist.pt" in result["mismatched"]
    assert result["missing"] == ["config.json"]
    assert "models/mnist.pt" in result["msg"] and "config.json" in result["msg"]


def _rsync_writing(dest):
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["name"] == "rsync" and "--server" not in cmd and any(dest in arg for arg in cmd):
            return proc
    return None


def test_interrupted_large_file_resumes(ssh_stack, hosts, dirs, tmp_path):
    """A 200 MB file cut off mid-transfer: the re-run sends only what is missing (--partial)."""
    src, dest = dirs
    size = 200 * 1024 * 1024
    with open(os.path.join(src, "big.bin"), "wb") as handle:
        for _chunk in range(size // (8 * 1024 * 1024)):
            handle.write(os.urandom(8 * 1024 * 1024))
    slow = push(hosts, src, dest, bwlimit=25_000)  # about 8 s for the whole file
    ansible = start_playbook(slow, ssh_stack.inventory_file, str(tmp_path))
    deadline = time.monotonic() + 60
    proc = None
    while time.monotonic() < deadline:
        proc = _rsync_writing(dest)
        landed = os.listdir(dest) if os.path.isdir(dest) else []
        if proc and landed and sum(os.path.getsize(os.path.join(dest, f)) for f in landed) > size // 4:
            break
        time.sleep(0.2)
    assert proc is not None, "rsync never started"
    proc.terminate()  # the transfer is cut off, as by a dropped link
    ansible.wait(timeout=60)
    assert ansible.returncode != 0
    kept = sum(os.path.getsize(os.path.join(dest, f)) for f in os.listdir(dest))
    assert size // 4 < kept < size

    resumed = run_playbook(push(hosts, src, dest, verify=True), ssh_stack.inventory_file, str(tmp_path))
    result = resumed.task(TASK)["result"]
    assert result["verified"] == 1
    assert result["bytes_sent"] < size - kept // 2, "the kept part was sent again"


def test_unreachable_host_is_a_clear_error(playbook, hosts, dirs):
    src, dest = dirs
    seed_tree(src)
    run = playbook(push(hosts, src, dest, dest_port=1), expect_rc=2)
    msg = run.task(TASK)["result"]["msg"]
    assert "refused the connection" in msg and "127.0.0.3" in msg
    assert not os.path.exists(dest)


def test_wrong_key_is_a_clear_error(playbook, hosts, dirs, tmp_path):
    src, dest = dirs
    seed_tree(src)
    other = str(tmp_path / "not-authorized")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other], check=True)
    run = playbook(push(hosts, src, dest, ssh_private_key_file=other), expect_rc=2)
    assert "authentication failed" in run.task(TASK)["result"]["msg"]
    assert not os.path.exists(dest)


def test_unknown_host_key_is_refused(playbook, hosts, dirs, tmp_path):
    src, dest = dirs
    seed_tree(src)
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    run = playbook(push(hosts, src, dest, known_hosts=str(empty)), expect_rc=2)
    assert "host key" in run.task(TASK)["result"]["msg"]


def test_missing_source_is_a_clear_error(playbook, hosts, dirs):
    src, dest = dirs
    run = playbook(push(hosts, src + "-nope", dest), expect_rc=2)
    assert run.task(TASK)["result"]["msg"] == f"src {src}-nope is not a directory on this host"
    missing_listed = playbook(push(hosts, src, dest, method="tar", files_from=["not/there.pt"]), expect_rc=2)
    assert "do not exist at the source" in missing_listed.task(TASK)["result"]["msg"]
    assert "not/there.pt" in missing_listed.task(TASK)["result"]["msg"]
