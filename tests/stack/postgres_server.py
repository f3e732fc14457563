"""A PostgreSQL cluster on loopback, from Debian's ``postgresql`` package (``make deps`` installs it).

``initdb`` makes a fresh cluster with one superuser whose password is checked by SCRAM-SHA-256, and
``postgres`` serves it on 127.0.0.1 only (no Unix socket outside the cluster's directory). PostgreSQL
refuses to run as root: run as root, the stack runs it as the package's ``postgres`` user, in a
directory of its own that the stack removes when it stops the server. ``POSTGRES_DSN_<NAME>``
replaces the server with a running one.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

from tests.stack.process import LOOPBACK, CommandServer, ManagedProcess, StackError, free_ports

RUN_AS = "postgres"  # the Debian package's system user


def bindir():
    """Where the PostgreSQL server programs are: ``$POSTGRES_BINDIR``, else the newest Debian build."""
    wanted = os.environ.get("POSTGRES_BINDIR")
    found = [wanted] if wanted else sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                           key=lambda path: int(path.split("/")[-2]))
    for path in reversed(found):
        if os.path.exists(os.path.join(path, "initdb")):
            return path
    raise StackError("no PostgreSQL server programs (initdb, postgres): run 'make deps' as root "
                     "(it installs Debian's postgresql package) or set POSTGRES_BINDIR")


@dataclass
class PostgresServer(CommandServer):
    name: str
    workdir: str
    host: str = LOOPBACK
    username: str = "mlops"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    database: str = "postgres"
    port: int = 0
    external_dsn: str | None = None
    process: ManagedProcess | None = None
    datadir: str | None = None
    implementation = "postgres"

    @property
    def dsn(self):
        if self.external_dsn:
            return self.external_dsn
        return f"postgresql://{self.username}:{self.password}@{self.host}:{self.port}/{self.database}"

    @property
    def connection(self):
        """The collection's connection options (host, port, user, password, database) for this server."""
        return {"host": self.host, "port": self.port, "user": self.username, "password": self.password,
                "database": self.database}

    def start(self, timeout=60.0):
        self.external_dsn = os.environ.get(f"POSTGRES_DSN_{self.name.upper()}") or None
        if self.external_dsn:
            self._answers()
            return self
        self._initdb()
        return self.launch(timeout)

    def _run_as(self):
        return RUN_AS if os.geteuid() == 0 else None

    def process_user(self):
        return self._run_as()

    def _initdb(self):
        user = self._run_as()
        if user:
            # a directory the postgres user owns (the workdir's parents may be closed to it)
            self.datadir = tempfile.mkdtemp(prefix=f"mlops-postgres-{self.name}-")
            entry = pwd.getpwnam(user)
            os.chown(self.datadir, entry.pw_uid, entry.pw_gid)
        else:
            self.datadir = os.path.join(self.workdir, "cluster")
            os.makedirs(self.datadir, exist_ok=True)
        pwfile = os.path.join(self.datadir, "pwfile")
        with open(pwfile, "w", encoding="utf-8") as handle:
            handle.write(self.password + "\n")
        if user:
            os.chown(pwfile, pwd.getpwnam(user).pw_uid, -1)
        data = os.path.join(self.datadir, "data")
        done = subprocess.run(
            [os.path.join(bindir(), "initdb"), "-D", data, "-U", self.username, f"--pwfile={pwfile}",
             "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"],
            capture_output=True, text=True, user=user, check=False, cwd=self.datadir)
        os.unlink(pwfile)
        if done.returncode:
            raise StackError(f"initdb for postgres {self.name} failed: {done.stderr.strip() or done.stdout.strip()}")

    def command(self):
        (self.port,) = free_ports(1, self.host)
        argv = [os.path.join(bindir(), "postgres"), "-D", os.path.join(self.datadir, "data"),
                "-c", f"listen_addresses={self.host}", "-c", f"port={self.port}",
                "-c", f"unix_socket_directories={self.datadir}", "-c", "fsync=off",
                "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=50",
                "-c", "shared_buffers=128MB", "-c", "max_wal_size=2GB"]
        return argv, dict(os.environ), "postgres.log"

    def connect(self, **kwargs):
        import psycopg  # pylint: disable=import-outside-toplevel

        return psycopg.connect(self.dsn, connect_timeout=3, **kwargs)

    def _answers(self):
        with self.connect() as conn:
            return conn.execute("SELECT 1").fetchone()[0] == 1

    def stop(self):
        super().stop()
        if self.datadir and self._run_as():
            shutil.rmtree(self.datadir, ignore_errors=True)

    def describe(self):
        return {"dsn": self.dsn, "host": self.host, "port": self.port, "user": self.username,
                "password": self.password, "database": self.database,
                "pid": self.process.pid if self.process else None}
