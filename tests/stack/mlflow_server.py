"""An ``mlflow server`` on loopback with a SQLite backend and local artifacts."""

from __future__ import annotations

import os
import sys
import urllib.request
from dataclasses import dataclass

from tests.stack.process import LOOPBACK, ManagedProcess, free_port, require_loopback


@dataclass
class MlflowServer:
    name: str
    workdir: str
    host: str = LOOPBACK
    port: int = 0
    process: ManagedProcess | None = None

    @property
    def tracking_uri(self):
        return f"http://{self.host}:{self.port}"

    def start(self, timeout=120.0):
        require_loopback(self.host)
        os.makedirs(os.path.join(self.workdir, "artifacts"), exist_ok=True)
        self.port = free_port(self.host)
        mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
        argv = [
            mlflow, "server", "--host", self.host, "--port", self.port, "--workers", "1",
            "--backend-store-uri", f"sqlite:///{self.workdir}/mlflow.db",
            "--artifacts-destination", f"{self.workdir}/artifacts",
        ]
        # No server-side jobs: with them on, every start leaves a job store in /dev/shm.
        env = dict(os.environ, MLFLOW_HOME=self.workdir, GUNICORN_CMD_ARGS="",
                   MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        self.process = ManagedProcess(f"mlflow {self.name}", argv,
                                      os.path.join(self.workdir, "mlflow.log"), env=env,
                                      cwd=self.workdir)
        self.process.start().wait_ready(self._healthy, timeout=timeout, interval=0.5)
        return self

    def _healthy(self):
        with urllib.request.urlopen(f"{self.tracking_uri}/health", timeout=2) as response:
            return response.status == 200

    def stop(self):
        if self.process:
            self.process.stop()

    def describe(self):
        return {"tracking_uri": self.tracking_uri, "pid": self.process.pid if self.process else None}
