"""Start a server as a child process, wait until it answers, stop it by its PID."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from collections import deque

LOOPBACK = "127.0.0.1"


class StackError(RuntimeError):
    """A server of the test stack did not come up; the message carries its log tail."""


EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
# Below the kernel's ephemeral range: a port the OS hands out for bind(0) may be taken by any outgoing
# connection (a client's source port) between the pick and the server's own bind; one below it cannot.
PORT_FLOOR = 20000


def _pick_range():
    """``(low, high)`` ports to pick from: under the ephemeral range when it leaves room, else ``None``."""
    try:
        with open(EPHEMERAL_RANGE_FILE, "r", encoding="utf-8") as handle:
            ephemeral_low = int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if ephemeral_low - PORT_FLOOR < 1000:
        return None
    return PORT_FLOOR, ephemeral_low - 1


def _bound_socket(host, port_range, taken):
    """A socket bound on ``host`` to a free port (random in ``port_range``, else the OS's pick)."""
    for _attempt in range(200 if port_range else 0):
        port = random.randint(*port_range)
        if port in taken:
            continue
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((host, port))
            return sock
        except OSError:
            sock.close()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    return sock


def free_ports(count, host=LOOPBACK):
    """``count`` distinct free ports, held open together so none is handed out twice."""
    socks = []
    port_range = _pick_range()
    try:
        for _index in range(count):
            socks.append(_bound_socket(host, port_range, {sock.getsockname()[1] for sock in socks}))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def free_port(host=LOOPBACK):
    """A TCP port free on ``host`` right now."""
    return free_ports(1, host)[0]


def port_open(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


PORT_TAKEN_PHRASES = ("address already in use", "is not available", "bind: address")


def port_was_taken(log_path, offset=0):
    """True when the log written after ``offset`` says a port the server was given is in use."""
    try:
        with open(log_path, "r", encoding="utf-8", errors="replace") as handle:
            handle.seek(offset)
            text = handle.read().lower()
    except OSError:
        return False
    return any(phrase in text for phrase in PORT_TAKEN_PHRASES)


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

    def __init__(self, name, argv, log_path, env=None, cwd=None, user=None):
        self.name = name
        self.user = user
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
                env=self.env, cwd=self.cwd, start_new_session=True, user=self.user)
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

    def launch(self, timeout, attempts=3):
        """Start the server; a port taken between its pick and the server's bind means fresh ports, again."""
        require_loopback(self.host)
        os.makedirs(self.workdir, exist_ok=True)
        for attempt in range(1, attempts + 1):
            argv, env, log_name = self.command()
            log_path = os.path.join(self.workdir, log_name)
            start_offset = os.path.getsize(log_path) if os.path.exists(log_path) else 0
            self.process = ManagedProcess(f"{self.implementation} {self.name}", argv, log_path,
                                          env=env, cwd=self.workdir, user=self.process_user())
            try:
                self.process.start().wait_ready(self._answers, timeout=timeout, interval=0.3)
                return self
            except StackError:
                if attempt == attempts or not port_was_taken(log_path, start_offset):
                    raise
                self.process.stop()
        return self

    def command(self):
        """``(argv, env, log file name)`` of the server; sets ``self.port``."""
        raise NotImplementedError

    def _answers(self):
        raise NotImplementedError

    def process_user(self):
        """The user the server runs as (``None``: the stack's own)."""
        return None

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


def restart_server(server, pause=1.0, timeout=180.0):
    """Stop a running server of the stack and start it again with the same command line - the same ports, the same
    data directory - and wait until it answers (the fault injection's server restart)."""
    ready = getattr(server, "_answers", None) or getattr(server, "_healthy")  # pylint: disable=protected-access
    server.process.stop()
    time.sleep(pause)
    server.process.start().wait_ready(ready, timeout=timeout, interval=0.3)
