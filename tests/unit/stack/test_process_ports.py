"""How the stack picks ports for its servers and tells that a server lost one."""

import socket
import sys

from tests.stack import process


def test_ports_are_distinct_and_below_the_ephemeral_range():
    ports = process.free_ports(50)
    assert len(set(ports)) == 50
    port_range = process._pick_range()  # pylint: disable=protected-access
    if port_range is None:
        print("the kernel's ephemeral range leaves no room below it: ports come from bind(0)")
        return
    assert all(port_range[0] <= port <= port_range[1] for port in ports)


def test_a_port_in_use_is_never_handed_out():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind((process.LOOPBACK, 0))
        held.listen()
        taken = held.getsockname()[1]
        for _round in range(20):
            assert taken not in process.free_ports(20)


def test_a_log_saying_a_port_is_in_use_is_recognised_after_the_offset_only(tmp_path):
    log = tmp_path / "server.log"
    log.write_text("E1204 mini.go:1244 Port allocation failed: port 52717 for Filer is not available on 127.0.0.1\n")
    offset = log.stat().st_size
    assert process.port_was_taken(str(log))
    assert not process.port_was_taken(str(log), offset)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write("listen tcp 127.0.0.1:4000: bind: address already in use\n")
    assert process.port_was_taken(str(log), offset)
    assert not process.port_was_taken(str(tmp_path / "missing.log"))


class _HttpServer(process.CommandServer):
    """Python's own http.server: its first command is given a port that is already taken."""

    implementation = "http.server"

    def __init__(self, workdir, taken):
        self.name, self.workdir, self.host, self.process = "probe", str(workdir), process.LOOPBACK, None
        self.ports = [taken]
        self.port = None

    def command(self):
        self.port = self.ports.pop(0) if self.ports else process.free_port(self.host)
        argv = [sys.executable, "-m", "http.server", "--bind", self.host, str(self.port)]
        return argv, None, "http.log"

    def _answers(self):
        return process.port_open(self.host, self.port)


def test_a_server_that_loses_its_port_is_started_again_on_fresh_ports(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind((process.LOOPBACK, 0))
        taken = held.getsockname()[1]
        server = _HttpServer(tmp_path, taken)
        try:
            server.launch(timeout=20)
            assert server.port != taken
            assert process.port_open(process.LOOPBACK, server.port)
            assert "address already in use" in (tmp_path / "http.log").read_text().lower()
        finally:
            server.stop()
        assert not process.port_open(process.LOOPBACK, server.port)
