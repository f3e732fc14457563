# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors, and the runner every module's work goes through.

Typed errors say what kind of failure it was (something missing, credentials refused, an endpoint
unreachable), so callers such as the preflight checks decide on the type, never on the text.
"""

from __future__ import annotations

import time


class MigrationError(Exception):
    """A failure a module reports with ``fail_json``: the message names the object and the cause.

    ``result`` is what the module returns with the failure (counts so far, the paths that differ).
    """

    def __init__(self, msg="", result=None):
        super().__init__(msg)
        self.result = dict(result or {})


class NotFound(MigrationError):
    """A bucket, key, database, collection, index, experiment or file that is not there."""


class CredentialsRefused(MigrationError):
    """The endpoint answered and refused the credentials (or has none to check)."""


class Unreachable(MigrationError):
    """The endpoint did not answer: DNS, connection refused, timeout, TLS."""


def failure_summary(counts, what="object(s) failed"):
    """``N <what> (object: reason; ...)`` from a counts record's ``failed`` and first failures."""
    first = "; ".join(f"{f['object']}: {f['reason']}" for f in counts["failures"][:5])
    return f"{counts['failed']} {what} ({first})"


def run_module(module, work, what="object(s) failed"):
    """Run ``work()`` (which returns the result dict) and end the module with it.

    A MigrationError fails the module with its message (and the partial result the error carries
    as ``result``, if any); the result gets ``seconds`` when it has none; a result whose ``counts``
    record failures fails through ``failure_summary`` with the whole result attached.
    """
    started = time.monotonic()
    try:
        result = work()
    except MigrationError as exc:
        module.fail_json(msg=str(exc), **exc.result)
    result.setdefault("seconds", round(time.monotonic() - started, 3))
    counts = result.get("counts") or {}
    if counts.get("failed"):
        module.fail_json(msg=failure_summary(counts, what), **result)
    module.exit_json(**result)


def split_userinfo(uri):
    """``(uri without its userinfo, username, password)``; names and passwords percent-decoded.

    A URI shown as a label, tag, ledger key, log line or result is the first element: a
    password inside a URI appears nowhere but in the connection that needs it.
    """
    from urllib.parse import unquote, urlsplit, urlunsplit  # pylint: disable=import-outside-toplevel

    parts = urlsplit(uri or "")
    if "@" not in parts.netloc:
        return uri, None, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    username, _sep, password = userinfo.partition(":")
    return (urlunsplit(parts._replace(netloc=host)), unquote(username) or None,
            unquote(password) if _sep else None)


def masked_uri(uri):
    """The URI with the password of its userinfo (if any) shown as ``***``."""
    from urllib.parse import quote  # pylint: disable=import-outside-toplevel

    bare, username, password = split_userinfo(uri)
    if username is None and password is None:
        return uri
    scheme, _sep, rest = bare.partition("://")
    shown = quote(username or "", safe="") + (":***" if password is not None else "")
    return f"{scheme}://{shown}@{rest}"


def protect_uri_secrets(module, *uris):
    """Have Ansible mask, in every output of ``module``, the passwords carried inside ``uris``."""
    from urllib.parse import quote  # pylint: disable=import-outside-toplevel

    for uri in uris:
        _bare, _username, password = split_userinfo(uri)
        if password:
            module.no_log_values.update({password, quote(password, safe="")})
