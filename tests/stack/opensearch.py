"""A single-node OpenSearch 2.19 cluster on loopback, security off, heap at most 512 MiB.

``scripts/build-servers.sh`` builds the runner (``tests/stack/opensearch/``, Maven) with the
server jars from Maven Central; the node runs in one JVM with the HTTP transport, reindex /
update-by-query, painless and the common analyzers as class-path plugins. Data in the workdir.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import urllib.request
from dataclasses import dataclass

from tests.stack import builds
from tests.stack.process import LOOPBACK, ManagedProcess, StackError, free_ports, require_loopback

MAIN_CLASS = "mlops.migration.stack.OpenSearchStackNode"


def java_binary():
    home = os.environ.get("JAVA_HOME")
    found = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not found or not os.path.exists(found):
        raise StackError("no 'java' (JDK 17) on PATH or in JAVA_HOME: the OpenSearch node needs it")
    return found


@dataclass
class OpenSearchNode:
    name: str
    workdir: str
    host: str = LOOPBACK
    port: int = 0
    transport_port: int = 0
    heap_mb: int = 512
    basic_auth: str | None = None  # "user:password": the node then refuses other credentials (BasicAuthPlugin)
    process: ManagedProcess | None = None

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def start(self, timeout=120.0):
        require_loopback(self.host)
        os.makedirs(self.workdir, exist_ok=True)
        build = builds.build_dir("opensearch")
        self.port, self.transport_port = free_ports(2, self.host)
        classpath = os.pathsep.join([os.path.join(build, "classes"), os.path.join(build, "lib", "*")])
        argv = [java_binary(), f"-Xms{min(256, self.heap_mb)}m", f"-Xmx{self.heap_mb}m",
                "-XX:+UseSerialGC", "-Djava.net.preferIPv4Stack=true", "-Djava.awt.headless=true", "-Dfile.encoding=UTF-8",
                "-Dlog4j2.disable.jmx=true", f"-Djava.io.tmpdir={self._tmp()}",
                *([f"-Dmlops.stack.basic_auth={self.basic_auth}"] if self.basic_auth else []),
                "-cp", classpath, MAIN_CLASS, os.path.join(self.workdir, "home"), self.host,
                self.port, self.transport_port, self.name]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSEARCH_", "ES_"))}
        self.process = ManagedProcess(f"opensearch {self.name}", argv,
                                      os.path.join(self.workdir, "opensearch.log"), env=env,
                                      cwd=self.workdir)
        self.process.start().wait_ready(self._healthy, timeout=timeout, interval=0.3)
        return self

    def _tmp(self):
        path = os.path.join(self.workdir, "tmp")
        os.makedirs(path, exist_ok=True)
        return path

    def request(self, method, path, body=None, content_type="application/json"):
        """One plain HTTP call; JSON in (a dict, or bytes as given), JSON out."""
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": content_type}
        if self.basic_auth:
            headers["Authorization"] = "Basic " + base64.b64encode(self.basic_auth.encode()).decode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def _healthy(self):
        health = self.request("GET", "/_cluster/health?wait_for_status=yellow&timeout=1s")
        return health.get("status") in ("green", "yellow")

    def stop(self):
        if self.process:
            self.process.stop()

    def describe(self):
        return {"url": self.url, "pid": self.process.pid if self.process else None}
