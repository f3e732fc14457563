# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MongoDB connections: the shared option spec, connecting with a clear error, and finding which
of a batch of ``_id``s a collection already holds."""

from __future__ import annotations

import atexit
import datetime

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError
from ansible_collections.mlops.migration.plugins.module_utils.tunnel import SshTunnel, tunnel_options

try:
    import bson
    import pymongo
    from bson.codec_options import DatetimeConversion
    from bson.raw_bson import RawBSONDocument
    from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError, ServerSelectionTimeoutError

    HAS_PYMONGO = True
except ImportError:  # reported by the modules with missing_required_lib
    HAS_PYMONGO = False

    class PyMongoError(Exception):
        """Stand-in so ``except`` clauses stay valid without pymongo."""

    ConfigurationError = OperationFailure = ServerSelectionTimeoutError = PyMongoError

AUTH_FAILED = 18


class MongoError(MigrationError):
    """A MongoDB failure, explained."""


def connection_options():
    """Argument spec of one MongoDB connection (the doc fragment mlops.migration.mongo documents it)."""
    return dict(
        uri=dict(type="str", no_log=False),
        host=dict(type="str", default="localhost"),
        port=dict(type="int", default=27017),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        auth_source=dict(type="str"),
        auth_mechanism=dict(type="str"),
        tls=dict(type="bool"),
        tls_ca_file=dict(type="path"),
        tls_certificate_key_file=dict(type="path"),
        tls_allow_invalid_certificates=dict(type="bool", default=False),
        connect_timeout=dict(type="int", default=20),
        ssh_tunnel=tunnel_options(),
    )


def codec_options():
    """Decode every BSON value to a type that encodes back to the same bytes (out-of-range dates too)."""
    return bson.CodecOptions(datetime_conversion=DatetimeConversion.DATETIME_AUTO)


def raw_codec_options():
    return bson.CodecOptions(document_class=RawBSONDocument,
                             datetime_conversion=DatetimeConversion.DATETIME_AUTO)


def describe(params):
    """Where the connection goes, without credentials: ``host:port`` or the URI's host list."""
    if params.get("uri"):
        try:
            nodes = pymongo.uri_parser.parse_uri(params["uri"], warn=True)["nodelist"]
            return ",".join(f"{host}:{port}" for host, port in nodes)
        except (ConfigurationError, ValueError):
            return "the configured URI"
    return f"{params['host']}:{params['port']}"


def connect(params, check=True):
    """A MongoClient for the connection options; with ``check``, proves reachability and credentials."""
    timeout_ms = int(params.get("connect_timeout") or 20) * 1000
    kwargs = dict(serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
                  datetime_conversion=DatetimeConversion.DATETIME_AUTO)
    for option, name in (("username", "username"), ("password", "password"), ("auth_source", "authSource"),
                         ("auth_mechanism", "authMechanism"), ("tls", "tls"), ("tls_ca_file", "tlsCAFile"),
                         ("tls_certificate_key_file", "tlsCertificateKeyFile")):
        if params.get(option) is not None:
            kwargs[name] = params[option]
    if params.get("tls_allow_invalid_certificates"):
        kwargs["tlsAllowInvalidCertificates"] = True
    where = describe(params)
    uri, host, port = params.get("uri"), params.get("host"), params.get("port")
    if params.get("ssh_tunnel"):
        uri, host, port = _through_tunnel(params, where)
        kwargs["directConnection"] = True
    try:
        if uri:
            client = pymongo.MongoClient(uri, **kwargs)
        else:
            client = pymongo.MongoClient(host, port, **kwargs)
    except (ConfigurationError, ValueError, TypeError) as exc:
        raise MongoError(f"invalid MongoDB connection settings for {where}: {exc}") from exc
    if check:
        try:
            client.admin.command("ping")
        except PyMongoError as exc:
            client.close()
            raise MongoError(explain(exc, where)) from exc
    return client


def _through_tunnel(params, where):
    """``(uri, host, port)`` that reach the server through a local forward over ``ssh_tunnel``, kept open
    until the module's process ends."""
    if params.get("uri"):
        try:
            nodes = pymongo.uri_parser.parse_uri(params["uri"])["nodelist"]
        except (ConfigurationError, ValueError) as exc:
            raise MongoError(f"invalid MongoDB connection settings for {where}: {exc}") from exc
        if len(nodes) != 1:
            raise MongoError(f"ssh_tunnel reaches one MongoDB host; the URI names {len(nodes)} ({where})")
        (host, port), = nodes
    else:
        host, port = params["host"], params["port"]
    tunnel = SshTunnel(params["ssh_tunnel"], host, port)
    atexit.register(tunnel.close)
    if params.get("uri"):
        head, _sep, rest = params["uri"].partition("://")
        userinfo, at, hosts_and_more = rest.rpartition("@") if "@" in rest.split("/", 1)[0] else ("", "", rest)
        tail = hosts_and_more[len(hosts_and_more.split("/", 1)[0].split("?", 1)[0]):]
        return f"{head}://{userinfo}{at}127.0.0.1:{tunnel.port}{tail}", None, None
    return None, "127.0.0.1", tunnel.port


def explain(exc, where, what=None):
    """One line naming the server (and object) and the cause of a pymongo error."""
    subject = f"{where}{' ' + what if what else ''}"
    if isinstance(exc, ServerSelectionTimeoutError):
        return f"cannot reach MongoDB at {where}: {str(exc).split(',', maxsplit=1)[0].split(' (configured')[0]}"
    if isinstance(exc, OperationFailure):
        if exc.code == AUTH_FAILED or "authentication failed" in str(exc).lower():
            return f"MongoDB at {where} refused the credentials (authentication failed)"
        if exc.code == 13:
            return f"MongoDB at {where}: not authorized for {what or 'this operation'}: {exc.details.get('errmsg', exc)}"
        return f"MongoDB at {subject}: {(exc.details or {}).get('errmsg', str(exc))} (code {exc.code})"
    return f"MongoDB at {subject}: {exc}"


_RANGE_TYPES = (bson.ObjectId, str, datetime.datetime) if HAS_PYMONGO else ()


def _range_kind(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return "number"
    for kind in _RANGE_TYPES:
        if isinstance(value, kind):
            return kind
    return None


def id_key(value):
    """A hashable key for an ``_id`` of any BSON type (documents and arrays are encoded)."""
    try:
        hash(value)
        return (isinstance(value, bool), value)
    except TypeError:
        return bson.encode({"": value})


def existing(collection, ids, full=False):
    """{id_key: document} for the ``ids`` the collection holds; documents hold only ``_id`` unless ``full``.

    A batch whose ids are all of one ordered BSON type is looked up as one ``_id`` range and
    the answer narrowed to the batch: an index range scan on MongoDB, and much cheaper than
    ``$in`` on servers that evaluate ``$in`` per document.
    """
    if not ids:
        return {}
    wanted = {id_key(i) for i in ids}
    kinds = {_range_kind(i) for i in ids}
    if len(kinds) == 1 and None not in kinds:
        query = {"_id": {"$gte": min(ids), "$lte": max(ids)}}
    else:
        query = {"_id": {"$in": list(ids)}}
    found = {}
    for doc in collection.find(query, None if full else {"_id": 1}, batch_size=max(len(ids), 101)):
        key = id_key(doc["_id"])
        if key in wanted:
            found[key] = doc
    return found
