# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors and result conventions shared by every module of the collection."""

from __future__ import annotations


class MigrationError(Exception):
    """A failure a module reports with ``fail_json``: the message names the object and the cause."""


def failure_summary(result, what):
    """``N object(s) <what> (key: reason; ...)`` from a transfer result's count and first failures."""
    first = "; ".join(f"{f['key']}: {f['reason']}" for f in result["failures"][:5])
    return f"{result['failed_count']} object(s) {what} ({first})"


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
