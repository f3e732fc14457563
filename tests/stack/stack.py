"""The whole loopback stack: a source and a target of each kind of server, started together.

``Stack.start()`` writes ``stack.json`` (endpoints, keys, PIDs) and ``inventory.yml`` (the two
ssh hosts as the ``source`` and ``target`` groups) into its working directory.
"""

from __future__ import annotations

import json
import os
import sys

from tests.stack.mlflow_server import MlflowServer
from tests.stack.mongo_servers import FerretDBServer, MongoecoServer
from tests.stack.opensearch import OpenSearchNode
from tests.stack.postgres_server import PostgresServer
from tests.stack.process import pid_runs, stop_pid
from tests.stack.s3_servers import MinioS3, SeaweedS3
from tests.stack.sshd import SshHost, ssh_keygen

SIDES = ("source", "target")
SSH_ADDRESSES = {"source": "127.0.0.2", "target": "127.0.0.3"}
# Each component: a source and a target server of one kind, in the order they start.
SERVERS = {
    "s3": SeaweedS3,          # SeaweedFS
    "minio": MinioS3,         # MinIO, the second S3 implementation
    "mongo": FerretDBServer,  # FerretDB v1 (SQLite)
    "mongoeco": MongoecoServer,  # mongoeco's wire server, for what FerretDB cannot store
    "search": OpenSearchNode,  # OpenSearch 2.19
    "mlflow": MlflowServer,
    "postgres": PostgresServer,  # PostgreSQL from Debian's packages
}
COMPONENTS = ("ssh", *SERVERS)
DEFAULT_COMPONENTS = ("ssh", "s3", "mlflow", "mongo", "search")
# What each component's process runs, to recognise our own PIDs in ``stop_recorded``.
PROGRAMS = {"ssh": "sshd", "s3": "weed", "minio": "minio", "mlflow": "mlflow", "mongo": "ferretdb",
            "mongoeco": "mongo_wire_server", "search": "OpenSearchStackNode",
            "postgres": "postgres"}


class Stack:
    def __init__(self, workdir, components=DEFAULT_COMPONENTS):
        unknown = set(components) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"unknown stack components: {sorted(unknown)}")
        self.workdir = os.path.abspath(workdir)
        self.components = tuple(components)
        self.servers = {}

    @property
    def state_file(self):
        return os.path.join(self.workdir, "stack.json")

    @property
    def inventory_file(self):
        return os.path.join(self.workdir, "inventory.yml")

    def _dir(self, *parts):
        path = os.path.join(self.workdir, *parts)
        os.makedirs(path, exist_ok=True)
        return path

    def start(self):
        os.makedirs(self.workdir, exist_ok=True)
        try:
            if "ssh" in self.components:
                key = ssh_keygen(os.path.join(self._dir("ssh"), "client_ed25519"), "mlops-migration-tests")
                for side in SIDES:
                    self._start("ssh", side, SshHost(side, self._dir("ssh", side), SSH_ADDRESSES[side], key))
            for component, server in SERVERS.items():
                if component in self.components:
                    for side in SIDES:
                        self._start(component, side, server(side, self._dir(component, side)))
        except BaseException:
            self.stop()
            raise
        self.write_state()
        return self

    def _start(self, component, side, server):
        self.servers.setdefault(component, {})[side] = server
        server.start()

    def __getitem__(self, component):
        return self.servers[component]

    def describe(self):
        state = {"workdir": self.workdir, "python": sys.executable}
        for component, sides in self.servers.items():
            state[component] = {side: server.describe() for side, server in sides.items()}
        return state

    def write_state(self):
        state = self.describe()
        with open(self.state_file, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=2)
        os.chmod(self.state_file, 0o600)
        if "ssh" in self.servers:
            with open(self.inventory_file, "w", encoding="utf-8") as handle:
                handle.write(render_inventory(state))

    def stop(self):
        for sides in reversed(list(self.servers.values())):
            for server in sides.values():
                server.stop()


def render_inventory(state):
    """A YAML inventory of the ssh hosts: groups ``source`` and ``target``, one host each."""
    lines = ["---", "all:", "  vars:", f"    ansible_python_interpreter: {state['python']}",
             "  children:"]
    for side, host in state["ssh"].items():
        lines += [
            f"    {side}:", "      hosts:", f"        {side}-host:",
            f"          ansible_host: {host['host']}",
            f"          ansible_port: {host['port']}",
            f"          ansible_user: {host['user']}",
            f"          ansible_ssh_private_key_file: {host['client_key']}",
            f"          ansible_ssh_common_args: -o UserKnownHostsFile={host['known_hosts']} "
            "-o StrictHostKeyChecking=yes",
            f"          host_root: {host['root']}",
        ]
    return "\n".join(lines) + "\n"


def read_state(workdir):
    path = os.path.join(workdir, "stack.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def recorded_pids(state):
    """``(component, side, pid)`` for every server a state file says this stack started."""
    for component in COMPONENTS:
        for side, info in (state or {}).get(component, {}).items():
            if info.get("pid"):
                yield component, side, info["pid"]


def running(state):
    """True when every server the state file records is still running."""
    pids = list(recorded_pids(state))
    return bool(pids) and all(pid_runs(pid, PROGRAMS[component]) for component, _side, pid in pids)


def stop_recorded(state):
    """Stop the servers a state file records, only those still running our own programs."""
    stopped = []
    for component, side, pid in recorded_pids(state):
        if pid_runs(pid, PROGRAMS[component]):
            stop_pid(pid)
            stopped.append(f"{component}/{side} (pid {pid})")
    return stopped
