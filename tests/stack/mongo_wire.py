"""A MongoDB endpoint for tests: a real server from ``MONGO_URI_<NAME>``, or a mongoeco wire server.

No mongod can be installed from this machine's package registries, so by default the
stack serves the MongoDB wire protocol with ``mongoeco[wire]`` (Python >= 3.13, kept in a
side virtualenv) and the code under test talks to it with the real pymongo client. Its
known differences from MongoDB are listed in ``MONGO_WIRE_QUIRKS.md`` beside this file.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

from tests.stack.process import LOOPBACK, ManagedProcess, StackError, free_port, require_loopback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_PYTHON = os.path.join(REPO, ".venv-mongo", "bin", "python")


def wire_python():
    python = os.environ.get("MONGOECO_PYTHON", DEFAULT_PYTHON)
    if not os.path.exists(python):
        raise StackError(f"no mongoeco interpreter at {python}: run 'make deps' (it builds .venv-mongo "
                         "with Python >= 3.13 and mongoeco[wire]) or set MONGOECO_PYTHON")
    return python


@dataclass
class MongoServer:
    name: str
    workdir: str
    host: str = LOOPBACK
    username: str = "admin"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    port: int = 0
    external_uri: str | None = None
    process: ManagedProcess | None = None

    @property
    def uri(self):
        if self.external_uri:
            return self.external_uri
        # mongoeco speaks SCRAM-SHA-256 only; real servers negotiate it too.
        return (f"mongodb://{self.username}:{self.password}@{self.host}:{self.port}/"
                "?directConnection=true&authSource=admin&authMechanism=SCRAM-SHA-256")

    @property
    def is_wire_server(self):
        return self.external_uri is None

    def start(self, timeout=60.0):
        self.external_uri = os.environ.get(f"MONGO_URI_{self.name.upper()}")
        if self.external_uri:
            self.client().admin.command("ping")
            return self
        require_loopback(self.host)
        os.makedirs(self.workdir, exist_ok=True)
        self.port = free_port(self.host)
        argv = [wire_python(), os.path.join(HERE, "mongo_wire_server.py"), "--host", self.host,
                "--port", self.port, "--username", self.username]
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env["MONGO_WIRE_PASSWORD"] = self.password
        self.process = ManagedProcess(f"mongo wire {self.name}", argv,
                                      os.path.join(self.workdir, "mongo.log"), env=env)
        self.process.start().wait_ready(self._answers, timeout=timeout, interval=0.3)
        return self

    def client(self, **kwargs):
        import pymongo  # pylint: disable=import-outside-toplevel

        kwargs.setdefault("serverSelectionTimeoutMS", 3000)
        return pymongo.MongoClient(self.uri, **kwargs)

    def _answers(self):
        with self.client() as client:
            return client.admin.command("ping").get("ok") == 1.0

    def stop(self):
        if self.process:
            self.process.stop()

    def describe(self):
        return {"uri": self.uri, "wire_server": self.is_wire_server,
                "pid": self.process.pid if self.process else None}
