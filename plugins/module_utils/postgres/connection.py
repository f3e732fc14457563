# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL connections through psycopg 3: the shared option spec and connecting with a clear error.

Wrong credentials, an unreachable server and a missing database are told apart by their SQLSTATE
(or by psycopg's connection failure), never by the message's text.
"""

from __future__ import annotations

from ansible_collections.mlops.migration.plugins.module_utils.common import CredentialsRefused, MigrationError, NotFound, Unreachable

try:
    import psycopg
    from psycopg import sql

    HAS_PSYCOPG = True
except ImportError:  # reported by the modules with missing_required_lib
    HAS_PSYCOPG = False
    psycopg = sql = None

INVALID_PASSWORD = "28P01"
INVALID_AUTHORIZATION = "28000"
INVALID_CATALOG = "3D000"


class PostgresError(MigrationError):
    """A PostgreSQL failure, explained."""


def connection_options():
    """Argument spec of one PostgreSQL connection (the doc fragment mlops.migration.postgres documents it)."""
    return dict(
        host=dict(type="str", default="localhost"),
        port=dict(type="int", default=5432),
        user=dict(type="str", required=True),
        password=dict(type="str", no_log=True),
        database=dict(type="str", required=True),
        sslmode=dict(type="str", default="prefer",
                     choices=["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]),
        sslrootcert=dict(type="path"),
        connect_timeout=dict(type="int", default=10),
    )


def describe(params):
    """``user@host:port/database``, without the password."""
    return f"{params.get('user')}@{params.get('host')}:{params.get('port')}/{params.get('database')}"


def connect(params, autocommit=False):
    """A psycopg connection for the connection options; typed errors for the usual failures."""
    if not HAS_PSYCOPG:
        raise PostgresError("psycopg (3) is needed on the host that runs this module: pip install 'psycopg[binary]'")
    kwargs = {"host": params.get("host") or "localhost", "port": int(params.get("port") or 5432),
              "user": params["user"], "dbname": params["database"],
              "connect_timeout": int(params.get("connect_timeout") or 10),
              "sslmode": params.get("sslmode") or "prefer", "application_name": "mlops.migration"}
    if params.get("password") is not None:
        kwargs["password"] = params["password"]
    if params.get("sslrootcert"):
        kwargs["sslrootcert"] = params["sslrootcert"]
    where = describe(params)
    try:
        return psycopg.connect(autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as exc:
        state = getattr(exc, "sqlstate", None)
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if state in (INVALID_PASSWORD, INVALID_AUTHORIZATION) or "password authentication failed" in str(exc):
            raise CredentialsRefused(f"PostgreSQL at {where} refused the credentials: {reason}") from exc
        if state == INVALID_CATALOG or "does not exist" in str(exc):
            raise NotFound(f"PostgreSQL at {where}: database {params['database']!r} does not exist") from exc
        raise Unreachable(f"PostgreSQL at {where} did not answer: {reason}") from exc


def server_version(conn):
    """``"15.18"``: the server's version as it reports it."""
    return conn.execute("SHOW server_version").fetchone()[0].split()[0]


def quote_table(name):
    """An SQL identifier for ``schema.table``."""
    schema, table = split_table(name)
    return sql.Identifier(schema, table)


def split_table(name):
    """``("public", "users")`` for ``users`` or ``public.users``."""
    schema, dot, table = str(name).partition(".")
    return (schema, table) if dot else ("public", schema)


def qualified(name):
    """``public.users`` for ``users``."""
    return ".".join(split_table(name))


def copy_chunks(copy, size=1 << 20):
    """The data of a ``COPY ... TO STDOUT`` joined into chunks of about ``size`` bytes (the server sends a
    message a row; writing, compressing and hashing each costs more than the row)."""
    parts, held = [], 0
    for data in copy:
        parts.append(data)
        held += len(data)
        if held >= size:
            yield b"".join(parts)
            parts, held = [], 0
    if parts:
        yield b"".join(parts)
