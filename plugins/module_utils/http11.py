# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A minimal HTTP/1.1 client connection: one request at a time, kept alive, bodies streamed.

The S3 client sends thousands of small requests; ``http.client`` parses every response's
headers with the ``email`` package, which costs more CPU than the rest of a request. This
connection reads the status line and headers itself and reads bodies by Content-Length,
chunked transfer coding, or until the server closes. Nothing else of HTTP is needed here:
no redirects, no compression, no ``Expect: 100-continue``.
"""

from __future__ import annotations

import socket

MAX_LINE = 65536
MAX_HEADERS = 200
SEND_JOIN_LIMIT = 256 * 1024  # smaller bodies go out in the same send as the head


class ProtocolError(ConnectionError):
    """The server's reply is not HTTP/1.x, or stopped before its end."""


class UnsafeHeader(ValueError):
    """A request line or header that carries CR, LF or NUL (it would smuggle another header or request)."""


def refuse_control_characters(target, headers):
    """Raise UnsafeHeader when the request target or any header name or value holds CR, LF or NUL."""
    fields = [("request target", target)] + [(f"header {name!r}", f"{name}{value}") for name, value in headers.items()]
    for what, text in fields:
        if any(c in str(text) for c in "\r\n\0"):
            raise UnsafeHeader(f"the {what} carries a CR, LF or NUL character: {str(text)[:80]!r}")


class Response:
    """Status, headers (names in lower case) and the body reader of one reply."""

    def __init__(self, status, headers, will_close, body):
        self.status, self.headers, self.will_close, self.body = status, headers, will_close, body

    def getheader(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def getheaders(self):
        return list(self.headers.items())


class BodyReader:
    """Reads one reply body: by Content-Length, chunked, or until the connection closes."""

    def __init__(self, stream, headers, method, status):
        self._stream = stream
        self._chunk_left = None  # bytes left in the current chunk (chunked mode)
        self.until_close = False
        self.done = False
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._mode, self._left = "length", 0
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._mode, self._left = "chunked", None
        elif "content-length" in headers:
            try:
                self._mode, self._left = "length", int(headers["content-length"])
            except ValueError as exc:
                raise ProtocolError(f"bad Content-Length {headers['content-length']!r}") from exc
        else:
            self._mode, self._left, self.until_close = "close", None, True
        if self._left == 0:
            self.done = True

    def read(self, amount=None):
        """Up to ``amount`` bytes (all that is left when None); b"" at the end."""
        if self.done:
            return b""
        if self._mode == "length":
            want = self._left if amount is None else min(amount, self._left)
            data = self._stream.read(want)
            if len(data) < want:
                raise ProtocolError(f"the connection closed {self._left - len(data)} bytes before the body's end")
            self._left -= want
            self.done = self._left == 0
            return data
        if self._mode == "close":
            data = self._stream.read() if amount is None else self._stream.read(amount)
            self.done = not data
            return data
        return self._read_chunked(amount)

    def _read_chunked(self, amount):
        pieces, got = [], 0
        while amount is None or got < amount:
            if not self._chunk_left:
                if self._chunk_left == 0:
                    self._stream.readline(MAX_LINE)  # the CRLF after a chunk's data
                line = self._stream.readline(MAX_LINE)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError as exc:
                    raise ProtocolError(f"bad chunk size line {line[:40]!r}") from exc
                if size == 0:
                    while self._stream.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    self.done = True
                    break
                self._chunk_left = size
            want = self._chunk_left if amount is None else min(self._chunk_left, amount - got)
            data = self._stream.read(want)
            if len(data) < want:
                raise ProtocolError("the connection closed inside a chunk")
            pieces.append(data)
            got += want
            self._chunk_left -= want
        return b"".join(pieces)


class Connection:
    """One kept-alive connection to ``host:port`` (TLS when ``ssl_context`` is given)."""

    def __init__(self, host, port, ssl_context=None, connect_timeout=10, read_timeout=120, server_hostname=None):
        sock = socket.create_connection((host, port), timeout=connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ssl_context is not None:
                sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or host)
            sock.settimeout(read_timeout)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._stream = sock.makefile("rb", buffering=MAX_LINE)

    def request(self, method, target, headers, body=b""):
        """Send a request and read the reply's head; the body is read through ``Response.body``."""
        refuse_control_characters(target, headers)
        head = "".join([f"{method} {target} HTTP/1.1\r\n"] + [f"{name}: {value}\r\n" for name, value in headers.items()]
                       + ["\r\n"]).encode("latin-1")
        if body and len(body) <= SEND_JOIN_LIMIT:
            self._sock.sendall(head + body)
        else:
            self._sock.sendall(head)
            if body:
                self._sock.sendall(body)
        while True:
            status, version, reply_headers = self._read_head()
            if status != 100:
                break
        connection = reply_headers.get("connection", "").lower()
        will_close = connection == "close" or (version == b"HTTP/1.0" and connection != "keep-alive")
        reader = BodyReader(self._stream, reply_headers, method, status)
        return Response(status, reply_headers, will_close or reader.until_close, reader)

    def _read_head(self):
        line = self._stream.readline(MAX_LINE)
        if not line:
            raise ProtocolError("the server closed the connection without a reply")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {line[:60]!r}")
        headers = {}
        for _count in range(MAX_HEADERS):
            line = self._stream.readline(MAX_LINE)
            if line in (b"\r\n", b"\n", b""):
                return int(parts[1]), parts[0], headers
            name, _sep, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        raise ProtocolError(f"more than {MAX_HEADERS} header lines")

    def close(self):
        self._stream.close()
        self._sock.close()
