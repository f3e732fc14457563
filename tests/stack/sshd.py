"""An ssh "host": OpenSSH's sshd on its own loopback address, reached with a generated key.

Two of these on 127.0.0.2 and 127.0.0.3 give an Ansible inventory two real hosts that
share this machine's filesystem (each host gets its own root directory for data).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass

from tests.stack.process import ManagedProcess, StackError, free_port, require_loopback

SSHD = "/usr/sbin/sshd"


def ssh_keygen(path, comment):
    if not os.path.exists(path):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
                       check=True, stdin=subprocess.DEVNULL)
    return path


def _banner(host, port):
    with socket.create_connection((host, port), timeout=1) as sock:
        return sock.recv(64).startswith(b"SSH-2.0-")


@dataclass
class SshHost:
    """One sshd. ``client_key`` logs in as the current user; ``known_hosts`` pins its host key."""

    name: str
    workdir: str
    host: str
    client_key: str
    port: int = 0
    process: ManagedProcess | None = None

    @property
    def user(self):
        return getpass.getuser()

    @property
    def root(self):
        """The directory that stands for this host's filesystem in tests and the demo."""
        return os.path.join(self.workdir, "fs")

    @property
    def known_hosts(self):
        return os.path.join(self.workdir, "known_hosts")

    def start(self, timeout=30.0):
        require_loopback(self.host)
        if not os.path.exists(SSHD):
            raise StackError(f"{SSHD} is missing: install openssh-server (make test does, as root)")
        os.makedirs(self.root, exist_ok=True)
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
        host_key = ssh_keygen(os.path.join(self.workdir, "ssh_host_ed25519_key"), f"{self.name}-host")
        authorized = os.path.join(self.workdir, "authorized_keys")
        shutil.copyfile(self.client_key + ".pub", authorized)
        os.chmod(authorized, 0o600)
        self.port = free_port(self.host)
        config = os.path.join(self.workdir, "sshd_config")
        with open(config, "w", encoding="utf-8") as handle:
            handle.write("\n".join([
                f"ListenAddress {self.host}:{self.port}",
                f"HostKey {host_key}",
                f"PidFile {self.workdir}/sshd.pid",
                f"AuthorizedKeysFile {authorized}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                "AllowTcpForwarding local",  # ssh_tunnel: local forwards only
                "X11Forwarding no",
                "PrintMotd no",
                # bash started by sshd reads ~/.bashrc unless it is a nested shell (SHLVL >= 1): on a developer's
                # machine that file may start pyenv or conda (100 ms and more per command, and ansible runs a few
                # per task); a migrated host's login shell has nothing to do with the test
                "SetEnv SHLVL=1",
                "MaxStartups 50:30:100",
                "MaxSessions 50",
                "Subsystem sftp internal-sftp",
                "LogLevel INFO",
                "",
            ]))
        with open(host_key + ".pub", encoding="utf-8") as handle:
            key_type, key_data = handle.read().split()[:2]
        with open(self.known_hosts, "w", encoding="utf-8") as handle:
            handle.write(f"[{self.host}]:{self.port} {key_type} {key_data}\n")
        self.process = ManagedProcess(f"sshd {self.name}", [SSHD, "-D", "-e", "-f", config],
                                      os.path.join(self.workdir, "sshd.log"))
        self.process.start().wait_ready(lambda: _banner(self.host, self.port), timeout=timeout)
        return self

    def ssh_argv(self):
        """ssh options that reach this host non-interactively, for rsync -e and tests."""
        return ["ssh", "-p", str(self.port), "-i", self.client_key, "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-l", self.user]

    def run(self, command, check=True):
        """Run a shell command on this host over ssh (for assertions in tests)."""
        return subprocess.run(self.ssh_argv() + [self.host, command], check=check,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)

    def stop(self):
        if self.process:
            self.process.stop()

    def describe(self):
        return {"host": self.host, "port": self.port, "user": self.user, "root": self.root,
                "known_hosts": self.known_hosts, "client_key": self.client_key,
                "pid": self.process.pid if self.process else None}
