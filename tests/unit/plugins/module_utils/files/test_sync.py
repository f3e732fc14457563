"""Unit tests of module_utils/files/sync.py: rsync output parsing, argv building, error messages."""

import shlex

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.files import sync as f

OUTPUT = """\
cd+++++++++|./
>f+++++++++|new\\#012line
<f.st......|models/mnist.pt
hf+++++++++|models/hard.pt => models/mnist.pt
cL+++++++++|latest.pt -> models/mnist.pt
.d..t......|models/
*deleting  |old.txt

Number of files: 5 (reg: 3, dir: 2)
Number of deleted files: 1
Number of regular files transferred: 1,204
Total transferred file size: 12,345,678 bytes
Total bytes sent: 99
Total bytes received: 7
"""


def test_parse_itemized():
    items = f.parse_itemized(OUTPUT)
    assert [i.name for i in items] == ["./", "new\nline", "models/mnist.pt",
                                       "models/hard.pt => models/mnist.pt",
                                       "latest.pt -> models/mnist.pt", "models/", "old.txt"]
    assert [i.is_file_transfer for i in items] == [False, True, True, False, False, False, False]
    assert items[-1].is_deletion
    assert items[3].is_regular_file and not items[4].is_regular_file


def test_parse_stats_reads_commas():
    assert f.parse_stats(OUTPUT) == {"files_transferred": 1204, "bytes": 12345678, "deleted": 1,
                                     "bytes_sent": 99, "bytes_received": 7}
    assert f.parse_stats("")["bytes"] == 0


def test_unescape_keeps_non_ascii_bytes():
    assert f.unescape_rsync_name("caf\\#303\\#251") == "café"
    assert f.unescape_rsync_name("plain") == "plain"


def test_rsync_argv_push_quotes_ssh_and_makes_parents():
    remote = f.SshTarget("127.0.0.3", 2222, "migrate", "/keys/id ed", "/kh", True)
    opts = f.RsyncOptions(delete=True, checksum=True, hard_links=True, bwlimit=100,
                          include=["*.pt"], exclude=["*"], files_from="/tmp/list")
    argv = f.rsync_argv(f.Side("/src"), f.Side("/dest dir", remote), opts)
    assert argv[-2:] == ["/src/", "127.0.0.3:/dest dir/"]
    for flag in ("-a", "-H", "--delete", "--checksum", "--bwlimit=100", "--partial", "-r",
                 "--files-from=/tmp/list", "--include=*.pt", "--exclude=*"):
        assert flag in argv
    assert argv.index("--include=*.pt") < argv.index("--exclude=*")
    ssh = shlex.split(argv[argv.index("-e") + 1])
    assert ssh[:3] == ["ssh", "-p", "2222"] and "/keys/id ed" in ssh and "StrictHostKeyChecking=yes" in ssh
    assert "--rsync-path=mkdir -p '/dest dir' && rsync" in argv


def test_rsync_argv_dry_run_never_creates_directories():
    remote = f.SshTarget("h")
    argv = f.rsync_argv(f.Side("/src"), f.Side("/d", remote), f.RsyncOptions(), dry_run=True)
    assert "--dry-run" in argv
    assert not any(arg.startswith("--rsync-path") for arg in argv)


def test_host_key_checking_off_uses_no_known_hosts():
    argv = f.SshTarget("h", host_key_checking=False).ssh_argv()
    assert "StrictHostKeyChecking=no" in argv and "UserKnownHostsFile=/dev/null" in argv


@pytest.mark.parametrize("rc,stderr,expected", [
    (255, "root@127.0.0.3: Permission denied (publickey).", "ssh authentication failed"),
    (255, "ssh: connect to host 127.0.0.3 port 1: Connection refused", "refused the connection"),
    (255, "Host key verification failed.", "not in known_hosts"),
    (23, 'rsync: [sender] link_stat "/x" failed: No such file or directory (2)', "a source path does not exist"),
    (11, "rsync: write failed: No space left on device (28)", "error in file I/O"),
    (30, "", "timeout in data send/receive"),
])
def test_explain_failure(rc, stderr, expected):
    msg = f.explain_failure("rsync", rc, stderr, "a -> b")
    assert f"exit code {rc}" in msg and expected in msg and "a -> b" in msg


def test_file_lists_must_stay_inside_src(tmp_path):
    assert f.check_relative(["a/b", "c"]) == ["a/b", "c"]
    with pytest.raises(f.SyncError, match="relative paths inside src"):
        f.check_relative(["ok", "../etc/passwd"])
    with pytest.raises(f.SyncError, match="relative paths inside src"):
        f.check_relative(["/abs"])
    listing = tmp_path / "list"
    listing.write_text("# comment\nmodels/a.pt\n\nb.pt\n")
    assert f.read_file_list(str(listing)) == ["models/a.pt", "b.pt"]
    with pytest.raises(f.SyncError, match="cannot read the file list"):
        f.read_file_list(str(tmp_path / "absent"))
