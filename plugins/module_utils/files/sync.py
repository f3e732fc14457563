# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving file trees and file lists between hosts with rsync or tar over ssh, and verifying them.

One end of a transfer is the host the module runs on; the other is reached over ssh.
Both ends are described by :class:`Side`, so the same code lists, hashes and stats files
on either end. Keys are passed by file path; nothing secret is put on a command line.
Importable without Ansible.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field

from ansible_collections.mlops.migration.plugins.module_utils.files.manifest import compare_manifests
from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError
from ansible_collections.mlops.migration.plugins.module_utils.counts import Counts

RSYNC_EXIT_CODES = {
    1: "syntax or usage error",
    2: "protocol incompatibility",
    3: "errors selecting input/output files or directories",
    4: "requested action not supported",
    5: "error starting client-server protocol",
    6: "daemon unable to append to log file",
    10: "error in socket I/O",
    11: "error in file I/O (disk full, or a path that cannot be written?)",
    12: "error in rsync protocol data stream (the connection broke, or the remote rsync failed)",
    13: "errors with program diagnostics",
    14: "error in IPC code",
    20: "received SIGUSR1 or SIGINT (interrupted)",
    21: "some error returned by waitpid()",
    22: "error allocating core memory buffers",
    23: "partial transfer due to error (a missing or unreadable source file?)",
    24: "partial transfer due to vanished source files",
    25: "the --max-delete limit stopped deletions",
    30: "timeout in data send/receive",
    35: "timeout waiting for daemon connection",
}

SSH_FAILURES = (
    ("Permission denied", "ssh authentication failed (wrong key or user)"),
    ("Host key verification failed", "the remote host key is not in known_hosts or has changed"),
    ("Connection refused", "the host refused the connection (no ssh server on that port?)"),
    ("Connection timed out", "the host did not answer (unreachable host or port)"),
    ("No route to host", "no route to host"),
    ("Could not resolve hostname", "the host name does not resolve"),
    ("Identity file", "the private key file cannot be read"),
    ("Load key", "the private key file cannot be read"),
)

_ITEM = re.compile(r"^(?P<change>[<>ch.*][^|]*)\|(?P<name>.*)$")
_STATS = {
    "files_transferred": re.compile(r"^Number of regular files transferred: ([\d,]+)", re.M),
    "bytes": re.compile(r"^Total transferred file size: ([\d,]+) bytes", re.M),
    "deleted": re.compile(r"^Number of deleted files: ([\d,]+)", re.M),
    "bytes_sent": re.compile(r"^Total bytes sent: ([\d,]+)", re.M),
    "bytes_received": re.compile(r"^Total bytes received: ([\d,]+)", re.M),
}


class SyncError(MigrationError):
    """A transfer could not be made; the message says which host and path, and why."""

    def __init__(self, msg, rc=None, stderr=None, cmd=None, result=None):
        super().__init__(msg, result)
        self.rc = rc
        self.stderr = stderr
        self.cmd = cmd


@dataclass
class SshTarget:
    """How to reach the far end over ssh. Host keys are checked unless told otherwise."""

    host: str
    port: int = 22
    user: str | None = None
    private_key_file: str | None = None
    known_hosts: str | None = None
    host_key_checking: bool = True
    connect_timeout: int = 10
    control_path: str | None = None

    def ssh_argv(self, shared=True):
        """ssh options; ``shared`` lets the call ride the connection of :func:`shared_connection`."""
        argv = ["ssh", "-p", str(self.port), "-o", "BatchMode=yes",
                "-o", f"ConnectTimeout={self.connect_timeout}",
                "-o", "StrictHostKeyChecking=" + ("yes" if self.host_key_checking else "no")]
        if self.private_key_file:
            argv += ["-i", self.private_key_file, "-o", "IdentitiesOnly=yes"]
        if self.known_hosts:
            argv += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        elif not self.host_key_checking:
            argv += ["-o", "UserKnownHostsFile=/dev/null"]
        if self.control_path and shared:
            # One connection carries the short calls of a module run (listings, stats, md5s).
            argv += ["-o", "ControlMaster=auto", "-o", f"ControlPath={self.control_path}",
                     "-o", "ControlPersist=60"]
        if self.user:
            argv += ["-l", self.user]
        return argv

    def close(self):
        """Stop the shared connection, if one was opened."""
        if self.control_path and os.path.exists(self.control_path):
            subprocess.run(self.ssh_argv() + ["-O", "exit", self.host], capture_output=True, check=False)

    @property
    def label(self):
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"


@contextmanager
def shared_connection(*targets):
    """Let every ssh call to these targets reuse one connection for the duration of the block."""
    targets = [t for t in targets if t is not None]
    with tempfile.TemporaryDirectory(prefix="mlops-ssh-") as control_dir:
        for index, target in enumerate(targets):
            target.control_path = os.path.join(control_dir, f"c{index}")
        try:
            yield
        finally:
            for target in targets:
                target.close()
                target.control_path = None


@dataclass
class Side:
    """One end of a transfer: a directory, on this host (``remote`` is None) or over ssh."""

    path: str
    remote: SshTarget | None = None

    @property
    def label(self):
        return f"{self.remote.label}:{self.path}" if self.remote else self.path

    def rsync_spec(self):
        """The path as rsync takes it, with a trailing slash: the directory's contents."""
        path = self.path.rstrip("/") + "/"
        return f"{self.remote.host}:{path}" if self.remote else path

    def shell_argv(self, script):
        """argv running a POSIX shell script on this side."""
        if self.remote:
            return self.remote.ssh_argv() + [self.remote.host, script]
        return ["sh", "-c", script]


def explain_failure(tool, rc, stderr, where):
    """A message that names the tool, the place and the most likely cause of a failure."""
    text = (stderr or "").strip()
    reason = None
    for needle, meaning in SSH_FAILURES:
        if needle in text:
            reason = meaning
            break
    if reason is None and tool == "rsync":
        reason = RSYNC_EXIT_CODES.get(rc)
        if "No such file or directory" in text:
            reason = "a source path does not exist"
    if reason is None and rc == 255:
        reason = "ssh failed"
    last = text.splitlines()[-1] if text else ""
    detail = f": {last}" if last and last not in (reason or "") else ""
    return f"{tool} to/from {where} failed with exit code {rc} ({reason or 'see stderr'}){detail}"


def unescape_rsync_name(name):
    """rsync prints unprintable bytes of names as ``\\#ooo`` (octal)."""
    if "\\#" not in name:
        return name
    raw = re.sub(rb"\\#([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]),
                 os.fsencode(name))
    return os.fsdecode(raw)


@dataclass
class Item:
    """One line of rsync's --itemize-changes: what happened to which path."""

    change: str
    name: str

    @property
    def is_file_transfer(self):
        return self.change[:2] in (">f", "<f")

    @property
    def is_regular_file(self):
        return len(self.change) > 1 and self.change[1] == "f"

    @property
    def is_deletion(self):
        return self.change.startswith("*deleting")

    def as_text(self):
        return f"{self.change} {self.name}"


def parse_itemized(output):
    """Items from rsync output printed with ``--out-format='%i|%n%L'``; other lines are ignored."""
    items = []
    for line in output.splitlines():
        match = _ITEM.match(line)
        if match:
            items.append(Item(match.group("change").strip(), unescape_rsync_name(match.group("name"))))
    return items


def parse_stats(output):
    """The counters of rsync's ``--stats`` block that results report."""
    stats = {}
    for key, pattern in _STATS.items():
        match = pattern.search(output)
        stats[key] = int(match.group(1).replace(",", "")) if match else 0
    return stats


@dataclass
class RsyncOptions:
    delete: bool = False
    checksum: bool = False
    hard_links: bool = False
    acls: bool = False
    xattrs: bool = False
    partial: bool = True
    bwlimit: int | None = None
    include: list = field(default_factory=list)
    exclude: list = field(default_factory=list)
    files_from: str | None = None
    timeout: int = 0
    extra: list = field(default_factory=list)


RSYNC_SWITCHES = (("hard_links", "-H"), ("acls", "-A"), ("xattrs", "-X"), ("partial", "--partial"),
                  ("checksum", "--checksum"), ("delete", "--delete"))


def rsync_argv(src, dest, opts, dry_run=False):
    """The rsync command for ``src`` → ``dest``; at most one of the two is remote."""
    argv = ["rsync", "-a", "--itemize-changes", "--out-format=%i|%n%L", "--stats"]
    argv += [flag for option, flag in RSYNC_SWITCHES if getattr(opts, option)]
    if opts.bwlimit:
        argv.append(f"--bwlimit={opts.bwlimit}")
    if opts.timeout:
        argv.append(f"--timeout={opts.timeout}")
    if opts.files_from:
        argv += ["-r", f"--files-from={opts.files_from}"]
    argv += [f"--include={pattern}" for pattern in opts.include]
    argv += [f"--exclude={pattern}" for pattern in opts.exclude]
    argv += list(opts.extra)
    if dry_run:
        argv.append("--dry-run")
    remote = src.remote or dest.remote
    if remote:
        # Bulk data gets a connection of its own: multiplexed, it ran 5-10% slower here.
        argv += ["-e", shlex.join(remote.ssh_argv(shared=dry_run))]
        if dest.remote and not dry_run:
            # rsync makes the last directory of a path but not its parents.
            argv.append("--rsync-path=" + f"mkdir -p {shlex.quote(dest.path)} && rsync")
    return argv + [src.rsync_spec(), dest.rsync_spec()]


def run(argv, stdin=None, where="", tool=None):
    """Run a command; raise SyncError explaining a non-zero exit."""
    proc = subprocess.run(argv, input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace")
        raise SyncError(explain_failure(tool or argv[0], proc.returncode, stderr, where),
                        rc=proc.returncode, stderr=stderr, cmd=argv)
    return proc.stdout


@dataclass
class RsyncResult:
    items: list
    stats: dict

    @property
    def changed(self):
        return bool(self.items)


def rsync(src, dest, opts, dry_run=False):
    """Run rsync and return what it changed (or, in a dry run, would change)."""
    if not dest.remote and not dry_run:
        os.makedirs(dest.path, exist_ok=True)
    argv = rsync_argv(src, dest, opts, dry_run)
    out = run(argv, where=f"{src.label} -> {dest.label}", tool="rsync").decode("utf-8", "surrogateescape")
    return RsyncResult(parse_itemized(out), parse_stats(out))


def transfer_set(src, opts):
    """The regular files an rsync of ``src`` with these filters covers (rsync decides, not us)."""
    with tempfile.TemporaryDirectory(prefix="mlops-filesync-") as empty:
        listing = RsyncOptions(include=opts.include, exclude=opts.exclude, files_from=opts.files_from,
                               partial=False)
        result = rsync(src, Side(empty), listing, dry_run=True)
    return sorted(item.name for item in result.items if item.is_regular_file)


def _nul_records(output):
    return [record for record in output.split(b"\0") if record]


def md5_listing(side, names):
    """``{name: md5}`` of the named files on one side, from ``md5sum -z``; absent files are left out."""
    if not names:
        return {}
    script = f"cd {shlex.quote(side.path)} && xargs -0 -r md5sum -z -- 2>/dev/null; true"
    out = run(side.shell_argv(script), stdin=b"\0".join(os.fsencode(n) for n in names),
              where=side.label, tool="md5sum")
    digests = {}
    for record in _nul_records(out):
        md5_hex, _sep, name = record.partition(b"  ")
        digests[os.fsdecode(name)] = md5_hex.decode()
    return digests


def stat_listing(side, names):
    """``{name: (size, mtime)}`` of the named files on one side; absent files are left out."""
    if not names:
        return {}
    script = (f"cd {shlex.quote(side.path)} 2>/dev/null && "
              "xargs -0 -r stat --printf '%s\\t%Y\\t%n\\0' -- 2>/dev/null; true")
    out = run(side.shell_argv(script), stdin=b"\0".join(os.fsencode(n) for n in names),
              where=side.label, tool="stat")
    stats = {}
    for record in _nul_records(out):
        size, mtime, name = record.split(b"\t", 2)
        stats[os.fsdecode(name)] = (int(size), int(mtime))
    return stats


def verify(src, dest, names):
    """Hash ``names`` on both sides and compare; returns a ManifestDiff (``extra`` stays empty)."""
    expected = md5_listing(src, names)
    missing_at_source = sorted(set(names) - set(expected))
    if missing_at_source:
        raise SyncError(f"cannot verify: {len(missing_at_source)} file(s) missing at the source "
                        f"{src.label}: {', '.join(missing_at_source[:10])}")
    return compare_manifests(expected, md5_listing(dest, names))


def tar_plan(src, dest, names, checksum=False):
    """Which of ``names`` differ at the destination: by md5 with ``checksum``, else size and mtime."""
    if checksum:
        theirs = md5_listing(dest, names)
        ours = md5_listing(src, names)
    else:
        theirs = stat_listing(dest, names)
        ours = stat_listing(src, names)
    absent = sorted(set(names) - set(ours))
    if absent:
        raise SyncError(f"{len(absent)} listed file(s) do not exist at the source {src.label}: "
                        f"{', '.join(absent[:10])}")
    return [name for name in names if theirs.get(name) != ours[name]]


def tar_copy(src, dest, names):
    """Stream ``tar`` from one side into ``tar`` on the other: no archive is written anywhere.

    Paths are kept relative to the two directories; modes and mtimes are preserved (and
    owners, when the receiving side runs as root).
    """
    if not names:
        return
    sender = src.shell_argv(f"cd {shlex.quote(src.path)} && tar --null -T - -cf -")
    receiver = dest.shell_argv(f"mkdir -p {shlex.quote(dest.path)} && cd {shlex.quote(dest.path)} "
                               "&& tar -xpf -")
    with tempfile.TemporaryFile() as sender_err, tempfile.TemporaryFile() as receiver_err:
        with subprocess.Popen(sender, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=sender_err) as send, \
                subprocess.Popen(receiver, stdin=send.stdout, stdout=subprocess.DEVNULL,
                                 stderr=receiver_err) as receive:
            send.stdout.close()
            try:
                send.stdin.write(b"\0".join(os.fsencode(n) for n in names) + b"\0")
            except BrokenPipeError:
                pass
            send.stdin.close()
            receive.wait()
            send.wait()
        for proc, err, side in ((send, sender_err, src), (receive, receiver_err, dest)):
            if proc.returncode:
                err.seek(0)
                stderr = err.read().decode("utf-8", "replace")
                raise SyncError(explain_failure("tar", proc.returncode, stderr, side.label),
                                rc=proc.returncode, stderr=stderr)


def read_file_list(path):
    """Relative paths from a file, one a line (blank lines and ``#`` comments skipped)."""
    try:
        with open(path, "r", encoding="utf-8", errors="surrogateescape") as handle:
            return [line.rstrip("\n") for line in handle if line.strip() and not line.startswith("#")]
    except OSError as exc:
        raise SyncError(f"cannot read the file list {path}: {exc.strerror or exc}") from exc


def check_relative(names):
    """File lists name paths under the source directory: no absolute paths, no '..'."""
    bad = [n for n in names if n.startswith("/") or ".." in n.split("/")]
    if bad:
        raise SyncError(f"file list entries must be relative paths inside src: {', '.join(bad[:10])}")
    return names


def file_counts(result, verifying=False, dry_run=False):
    """A file_sync result in the counts vocabulary: files found, sent, verified by md5, failed."""
    checked = "verified" in result
    bad = list(result.get("mismatched") or []) + list(result.get("missing") or [])
    return Counts(
        dry_run=dry_run, found=result["verified"] + len(bad) if checked else None,
        copied=None if verifying else result.get("transferred"), verified=result.get("verified"),
        failed=len(bad) if checked else 0, bytes=result.get("bytes"), seconds=result.get("seconds"),
        failures=[{"object": path, "reason": "differs"} for path in result.get("mismatched") or []]
        + [{"object": path, "reason": "missing at the target"} for path in result.get("missing") or []])
