"""Start a server as a child process, wait until it answers, stop it by its PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections import deque

LOOPBACK = "127.0.0.1"


class StackError(RuntimeError):
    """A server of the test stack did not come up; the message carries its log tail."""


def free_port(host=LOOPBACK):
    """A TCP port free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_ports(count, host=LOOPBACK):
    """``count`` distinct free ports, held open together so none is handed out twice."""
    socks = []
    try:
        for _index in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def port_open(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path, lines=40):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))
    except OSError:
        return "(no log)"


def require_loopback(host):
    if not (host.startswith("127.") or host in ("::1", "localhost")):
        raise StackError(f"test servers bind to loopback only, not {host}")


class ManagedProcess:
    """One server process: its argv, its log file, and how to tell that it is ready."""

    def __init__(self, name, argv, log_path, env=None, cwd=None):
        self.name = name
        self.argv = [str(arg) for arg in argv]
        self.log_path = str(log_path)
        self.env = env
        self.cwd = cwd
        self.proc = None
        self.pid = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, cwd=self.cwd, start_new_session=True)
        self.pid = self.proc.pid
        return self

    def wait_ready(self, check, timeout=60.0, interval=0.2):
        """Poll ``check()`` until true; fail with the log tail if the server exits or times out."""
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise StackError(f"{self.name} exited with {self.proc.returncode} while starting; "
                                 f"log {self.log_path}:\n{log_tail(self.log_path)}")
            try:
                if check():
                    return self
            except Exception as exc:  # pylint: disable=broad-except
                last_error = exc
            time.sleep(interval)
        self.stop()
        raise StackError(f"{self.name} was not ready after {timeout:.0f}s (last error: {last_error}); "
                         f"log {self.log_path}:\n{log_tail(self.log_path)}")

    def stop(self, timeout=15.0):
        """Stop the process group this process leads (SIGTERM, then SIGKILL)."""
        if self.pid is None:
            return
        stop_pid(self.pid, timeout)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        self.pid = None


class CommandServer:
    """A server whose subclass says how to run it (``command``) and how to tell it answers (``_answers``).

    Subclasses are dataclasses with ``name``, ``workdir``, ``host`` and ``process`` fields and an
    ``implementation`` class attribute.
    """

    def launch(self, timeout):
        require_loopback(self.host)
        os.makedirs(self.workdir, exist_ok=True)
        argv, env, log_name = self.command()
        self.process = ManagedProcess(f"{self.implementation} {self.name}", argv,
                                      os.path.join(self.workdir, log_name), env=env, cwd=self.workdir)
        self.process.start().wait_ready(self._answers, timeout=timeout, interval=0.3)
        return self

    def command(self):
        """``(argv, env, log file name)`` of the server; sets ``self.port``."""
        raise NotImplementedError

    def _answers(self):
        raise NotImplementedError

    def stop(self):
        if self.process:
            self.process.stop()


def pid_alive(pid):
    """True while ``pid`` runs; a zombie left for a non-reaping init counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "r", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def pid_runs(pid, program):
    """True when ``pid`` is alive and its command line names ``program`` (guards PID reuse)."""
    if not pid or not pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return program.encode() in handle.read()
    except OSError:
        return False


def stop_pid(pid, timeout=15.0):
    """Terminate a server started by this stack (it leads its own process group)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                reaped, _status = os.waitpid(pid, os.WNOHANG)
                if reaped == pid:
                    return
            except ChildProcessError:
                if not pid_alive(pid):
                    return
            time.sleep(0.1)
