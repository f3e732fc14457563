# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small Elasticsearch / OpenSearch REST client: the calls an index copy makes, over one
kept-alive HTTP/1.1 connection (module_utils/http11.py), JSON in and out.

Plain HTTP rather than a vendor library: the official ``elasticsearch`` client refuses to talk
to OpenSearch (its product check) and ``opensearch-py`` to Elasticsearch 8, while the calls used
here (``GET /``, index metadata, ``_search`` with ``scroll``, ``_mget``, ``_bulk``, ``_count``,
``_refresh``) are the same on ES 7, ES 8 and OpenSearch 2. Importable without Ansible.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
from urllib.parse import quote, urlencode, urlsplit

from ansible_collections.mlops.migration.plugins.module_utils.common import (
    CredentialsRefused,
    MigrationError,
    NotFound,
    split_userinfo,
    Unreachable,
)
from ansible_collections.mlops.migration.plugins.module_utils.http11 import Connection, ProtocolError
from ansible_collections.mlops.migration.plugins.module_utils.tunnel import SshTunnel, tunnel_options

MAX_REPLY = 512 * 1024 * 1024  # a reply larger than this is refused, never held


class SearchError(MigrationError):
    """A search server call failed; the message names the server, the index and the cause."""


class SearchNotFound(SearchError, NotFound):
    """The index (or document) does not exist."""


class SearchCredentialsRefused(SearchError, CredentialsRefused):
    """The server refused the credentials (401/403)."""


class SearchUnreachable(SearchError, Unreachable):
    """The server did not answer."""


def connection_options():
    """Argument spec of one search server connection."""
    return dict(
        url=dict(type="str", required=True),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        api_key=dict(type="str", no_log=True),
        validate_certs=dict(type="bool", default=True),
        ca_bundle=dict(type="path"),
        timeout=dict(type="int", default=120),
        ssh_tunnel=tunnel_options(),
    )


class SearchClient:
    """One search server; ``call`` returns the decoded JSON reply or raises a typed SearchError."""

    def __init__(self, url, username=None, password=None, api_key=None, validate_certs=True, ca_bundle=None,
                 timeout=120, ssh_tunnel=None):
        self.settings = dict(url=url, username=username, password=password, api_key=api_key,
                             validate_certs=validate_certs, ca_bundle=ca_bundle, timeout=timeout, ssh_tunnel=ssh_tunnel)
        url, uri_user, uri_password = split_userinfo(url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SearchError(f"search server url {url!r} is not an http:// or https:// URL")
        self.url = url.rstrip("/")
        self.host, self.port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        self.base = parts.path.rstrip("/")
        self.tls = None
        if parts.scheme == "https":
            self.tls = ssl.create_default_context(cafile=ca_bundle)
            if not validate_certs:
                self.tls.check_hostname, self.tls.verify_mode = False, ssl.CERT_NONE
        self.timeout = timeout
        self.auth = None
        username, password = username or uri_user, password or uri_password
        if api_key:
            self.auth = f"ApiKey {api_key}"
        elif username:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self.auth = f"Basic {token}"
        self.conn = None
        self.tunnel = None
        self.address = (self.host, self.port)  # where the connection goes: the server, or a local forward to it
        if ssh_tunnel:
            self.tunnel = SshTunnel(ssh_tunnel, self.host, self.port)
            self.address = ("127.0.0.1", self.tunnel.port)

    def clone(self):
        """Another client of the same server, on its own connection (one per thread)."""
        return SearchClient(**self.settings)

    def _drop(self):
        """Close the connection (the next call opens another)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self):
        """Close the connection and the ssh tunnel, if any."""
        self._drop()
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None

    def _send(self, method, target, body, content_type):
        headers = {"Host": f"{self.host}:{self.port}", "Accept": "application/json",
                   "Content-Length": str(len(body))}
        if body:
            headers["Content-Type"] = content_type
        if self.auth:
            headers["Authorization"] = self.auth
        if self.conn is None:
            self.conn = Connection(*self.address, self.tls, read_timeout=self.timeout, server_hostname=self.host)
        reply = self.conn.request(method, target, headers, body)
        data = reply.body.read()
        if reply.will_close:
            self._drop()
        return reply.status, data

    def call(self, method, path, body=None, query=None, ndjson=None, what=None, missing_ok=False):
        """``method path`` with a JSON ``body`` (or NDJSON lines); the reply decoded, or None when
        ``missing_ok`` and the server says 404."""
        what = what or path
        target = self.base + path + (f"?{urlencode(query)}" if query else "")
        if ndjson is not None:
            payload, content_type = b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n"
                                             for line in ndjson), "application/x-ndjson"
        else:
            payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
            content_type = "application/json"
        for attempt in (1, 2):  # a kept-alive connection the server dropped is reopened once
            try:
                status, data = self._send(method, target, payload, content_type)
                break
            except (ProtocolError, ConnectionError, socket.timeout, OSError) as exc:
                self._drop()
                if attempt == 2 or isinstance(exc, socket.timeout):
                    raise SearchUnreachable(f"cannot reach the search server {self.url} for {what}: {exc}") from exc
        reply = _decode(data)
        if status in (401, 403):
            raise SearchCredentialsRefused(f"the search server {self.url} refused the credentials for {what} "
                                           f"(HTTP {status})")
        if status == 404:
            if missing_ok:
                return None
            raise SearchNotFound(f"{what} does not exist at the search server {self.url}")
        if status >= 400:
            raise SearchError(f"{what} at the search server {self.url}: HTTP {status} {_reason(reply)}")
        return reply

    # the calls an index copy makes ----------------------------------------------------------

    def info(self):
        return self.call("GET", "/", what="the server's version")

    def index(self, name):
        """The index's mappings and settings, or None when it does not exist."""
        reply = self.call("GET", f"/{_name(name)}", what=f"index {name}", missing_ok=True)
        return None if reply is None else reply.get(name) or next(iter(reply.values()), None)

    def matching(self, pattern):
        """The names of the (open, not hidden) indices a wildcard ``pattern`` matches, sorted."""
        reply = self.call("GET", f"/_cat/indices/{_name(pattern)}", query={"format": "json", "h": "index"},
                          what=f"indices {pattern}", missing_ok=True)
        return sorted(row["index"] for row in reply or [] if isinstance(row, dict) and row.get("index"))

    def create_index(self, name, mappings, settings):
        return self.call("PUT", f"/{_name(name)}", {"mappings": mappings, "settings": {"index": settings}},
                         what=f"creating index {name}")

    def scroll(self, index, query, size, keep="5m", part=None, fields=None, sort=None):
        """Every document of ``index`` matching ``query``, a page of ``size`` at a time; with ``part``
        ``(n, of)`` only slice ``n`` of a sliced scroll in ``of`` slices; with ``fields`` only those
        fields of each document's source; in ``sort`` order across pages when given (index order otherwise)."""
        body = {"query": query, "size": size, "sort": sort or ["_doc"]}
        if fields is not None:
            body["_source"] = list(fields)
        if part is not None and part[1] > 1:
            body["slice"] = {"id": part[0], "max": part[1]}
        reply = self.call("POST", f"/{_name(index)}/_search", body, query={"scroll": keep}, what=f"index {index}")
        scroll_id = reply.get("_scroll_id")
        try:
            while True:
                hits = reply.get("hits", {}).get("hits", [])
                if not hits:
                    return
                yield hits
                reply = self.call("POST", "/_search/scroll", {"scroll": keep, "scroll_id": scroll_id},
                                  what=f"the scroll over index {index}")
                scroll_id = reply.get("_scroll_id", scroll_id)
        finally:
            if scroll_id:
                try:
                    self.call("DELETE", "/_search/scroll", {"scroll_id": [scroll_id]}, missing_ok=True)
                except SearchError:
                    pass  # a scroll left behind expires by itself

    def mget(self, index, ids):
        """``{_id: _source}`` of the ids that exist in ``index``."""
        if not ids:
            return {}
        reply = self.call("POST", f"/{_name(index)}/_mget", {"ids": list(ids)}, what=f"index {index}",
                          missing_ok=True) or {}
        return {doc["_id"]: doc.get("_source") for doc in reply.get("docs", []) if doc.get("found")}

    def bulk(self, index, docs):
        """Index ``[(id, source)]`` (ids kept); ``{id: error}`` of those the server refused."""
        lines = []
        for ident, source in docs:
            lines += [{"index": {"_index": index, "_id": ident}}, source]
        reply = self.call("POST", "/_bulk", ndjson=lines, what=f"writing to index {index}")
        if not reply.get("errors"):
            return {}
        refused = {}
        for item in reply.get("items", []):
            result = item.get("index") or {}
            if result.get("error"):
                refused[result.get("_id")] = _reason({"error": result["error"]})
        return refused

    def count(self, index, query=None):
        reply = self.call("POST", f"/{_name(index)}/_count", {"query": query or {"match_all": {}}},
                          what=f"index {index}")
        return int(reply.get("count", 0))

    def refresh(self, index):
        self.call("POST", f"/{_name(index)}/_refresh", what=f"index {index}")


def _name(index):
    return quote(index, safe="*,-_.")


def _decode(data):
    if len(data) > MAX_REPLY:
        raise SearchError(f"a reply of {len(data)} bytes is larger than {MAX_REPLY}")
    try:
        return json.loads(data) if data else {}
    except ValueError:
        return {"error": {"reason": data[:200].decode("utf-8", "replace")}}


def _reason(reply):
    error = reply.get("error") if isinstance(reply, dict) else None
    if isinstance(error, dict):
        return f"{error.get('type', '')} {error.get('reason', '')}".strip()
    return str(error or reply)[:300]
