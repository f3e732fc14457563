"""MongoDB endpoints for tests: a real server from ``MONGO_URI_<NAME>``, FerretDB, or mongoeco.

No mongod can be installed from this machine's package registries. The stack's default MongoDB
is FerretDB v1 with its SQLite backend (``scripts/build-servers.sh`` builds it from the Go
module proxy), a production server that speaks the wire protocol and SCRAM-SHA-256.
``mongoeco[wire]`` (Python >= 3.13, kept in a side virtualenv) is a second wire implementation
for what FerretDB v1 cannot store (Decimal128, MinKey/MaxKey, nested arrays; see
``MONGO_WIRE_QUIRKS.md`` beside this file). Either way the code under test talks to it with the
real pymongo client. ``MONGO_URI_SOURCE`` / ``MONGO_URI_TARGET`` replace the server with a real one.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

from tests.stack import builds
from tests.stack.process import LOOPBACK, CommandServer, ManagedProcess, StackError, free_ports

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PYTHON = os.path.join(builds.REPO, ".venv-mongo", "bin", "python")


def wire_python():
    python = os.environ.get("MONGOECO_PYTHON", DEFAULT_PYTHON)
    if not os.path.exists(python):
        raise StackError(f"no mongoeco interpreter at {python}: run 'make deps' (it builds .venv-mongo "
                         "with Python >= 3.13 and mongoeco[wire]) or set MONGOECO_PYTHON")
    return python


@dataclass
class MongoEndpoint(CommandServer):
    name: str
    workdir: str
    host: str = LOOPBACK
    username: str = "admin"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    port: int = 0
    external_uri: str | None = None
    process: ManagedProcess | None = None
    implementation = "mongodb"
    external_env = "MONGO_URI_{name}"

    @property
    def uri(self):
        if self.external_uri:
            return self.external_uri
        # Both test servers speak SCRAM-SHA-256 only; real servers negotiate it too.
        return (f"mongodb://{self.username}:{self.password}@{self.host}:{self.port}/"
                "?directConnection=true&authSource=admin&authMechanism=SCRAM-SHA-256")

    @property
    def runs_here(self):
        """True when this stack runs the server (so its process can be inspected)."""
        return self.external_uri is None

    @property
    def server(self):
        """Which server answers: ``ferretdb``, ``mongoeco`` or ``external``."""
        return self.implementation if self.runs_here else "external"

    def start(self, timeout=60.0):
        self.external_uri = os.environ.get(self.external_env.format(name=self.name.upper())) or None
        if self.external_uri:
            self.client().admin.command("ping")
            return self
        return self.launch(timeout)

    def client(self, **kwargs):
        import pymongo  # pylint: disable=import-outside-toplevel

        kwargs.setdefault("serverSelectionTimeoutMS", 3000)
        return pymongo.MongoClient(self.uri, **kwargs)

    def _answers(self):
        with self.client() as client:
            return client.admin.command("ping").get("ok") == 1.0

    def describe(self):
        return {"uri": self.uri, "server": self.server,
                "pid": self.process.pid if self.process else None}


@dataclass
class FerretDBServer(MongoEndpoint):
    """FerretDB v1, SQLite backend in the workdir, one user created at start (SCRAM-SHA-256)."""

    implementation = "ferretdb"

    def command(self):
        self.port, debug_port = free_ports(2, self.host)
        os.makedirs(os.path.join(self.workdir, "sqlite"), exist_ok=True)
        argv = [builds.binary("ferretdb"), "--handler=sqlite",
                f"--sqlite-url=file:{self.workdir}/sqlite/", f"--state-dir={self.workdir}",
                f"--listen-addr={self.host}:{self.port}", f"--debug-addr={self.host}:{debug_port}",
                "--telemetry=disable", "--log-level=warn", "--test-enable-new-auth",
                "--setup-database=admin", f"--setup-username={self.username}"]
        # The password reaches FerretDB through its environment variable, never argv.
        env = dict(os.environ, FERRETDB_SETUP_PASSWORD=self.password)
        return argv, env, "ferretdb.log"


@dataclass
class MongoecoServer(MongoEndpoint):
    """mongoeco's wire server (memory engine), for the BSON types FerretDB v1 cannot store."""

    implementation = "mongoeco"
    external_env = "MONGO_URI_WIRE_{name}"

    def command(self):
        (self.port,) = free_ports(1, self.host)
        argv = [wire_python(), os.path.join(HERE, "mongo_wire_server.py"), "--host", self.host,
                "--port", self.port, "--username", self.username]
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env["MONGO_WIRE_PASSWORD"] = self.password
        return argv, env, "mongo.log"
