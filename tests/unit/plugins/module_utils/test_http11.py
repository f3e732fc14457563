"""Unit tests of module_utils/http11.py: reply heads and bodies by length, chunks and close."""

import io
import socket
import threading

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.http11 import (
    BodyReader,
    Connection,
    ProtocolError,
    UnsafeHeader,
)


def reader(raw, method="GET"):
    """A BodyReader over ``raw`` (the bytes after the head), with the head's headers parsed by a Connection."""
    conn = Connection.__new__(Connection)
    conn._stream = io.BufferedReader(io.BytesIO(raw))  # pylint: disable=protected-access
    status, _version, headers = conn._read_head()  # pylint: disable=protected-access
    return status, headers, BodyReader(conn._stream, headers, method, status)  # pylint: disable=protected-access


def test_content_length_body_in_pieces():
    status, headers, body = reader(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nETag: \"abc\"\r\n"
                                   b"X-Amz-Meta-A: 1\r\nX-Amz-Meta-A: 2\r\n\r\n0123456789next reply")
    assert status == 200 and headers["etag"] == '"abc"' and headers["x-amz-meta-a"] == "1, 2"
    assert body.read(4) == b"0123" and not body.done
    assert body.read() == b"456789" and body.done and body.read() == b""


def test_chunked_body_across_chunk_boundaries_with_trailers():
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n"
    _status, _headers, body = reader(raw)
    assert body.read(3) == b"Wik" and body.read(4) == b"iped" and body.read() == b"ia" and body.done


def test_head_and_no_content_replies_have_no_body():
    assert reader(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", method="HEAD")[2].done
    assert reader(b"HTTP/1.1 204 No Content\r\n\r\n")[2].done


def test_body_until_close_when_no_length_is_given():
    _status, _headers, body = reader(b"HTTP/1.0 200 OK\r\n\r\nall the rest")
    assert body.until_close and body.read() == b"all the rest"


@pytest.mark.parametrize("raw,message", [
    (b"", "closed the connection without a reply"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size line"),
])
def test_malformed_replies_are_protocol_errors(raw, message):
    with pytest.raises(ProtocolError, match=message):
        reader(raw)[2].read()


def test_a_short_body_is_an_error_not_a_short_read():
    _status, _headers, body = reader(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
    with pytest.raises(ProtocolError, match="5 bytes before the body's end"):
        body.read()


def test_connection_keeps_alive_over_loopback():
    """Two requests on one connection to a loopback listener; the reply asks to close after the second."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    seen = []

    def serve():
        peer, _addr = server.accept()
        with peer, peer.makefile("rb") as stream:
            for reply in (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
                          b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"):
                lines = []
                while (line := stream.readline()) not in (b"\r\n", b""):
                    lines.append(line)
                length = [int(l.split(b":")[1]) for l in lines if l.lower().startswith(b"content-length")]
                seen.append((lines[0], stream.read(length[0]) if length else b""))
                peer.sendall(reply)

    thread = threading.Thread(target=serve)
    thread.start()
    conn = Connection("127.0.0.1", server.getsockname()[1])
    try:
        first = conn.request("PUT", "/b/k", {"host": "x", "content-length": "5"}, b"hello")
        assert first.body.read() == b"hi" and not first.will_close
        second = conn.request("GET", "/b/k?x=1", {"host": "x"})
        assert second.will_close and second.body.done
    finally:
        conn.close()
        thread.join(5)
        server.close()
    assert seen == [(b"PUT /b/k HTTP/1.1\r\n", b"hello"), (b"GET /b/k?x=1 HTTP/1.1\r\n", b"")]


@pytest.mark.parametrize("target,headers", [
    ("/b/k", {"x-amz-meta-etag": '"abc"\r\nx-injected: 1'}),
    ("/b/k", {"x-bad\nname": "v"}),
    ("/b/k", {"host": "x\0y"}),
    ("/b/k HTTP/1.1\r\nX: y", {"host": "x"}),
])
def test_control_characters_in_a_request_are_refused_before_sending(target, headers):
    """Nothing reaches the listener: the request is refused while it is still being assembled."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    conn = Connection("127.0.0.1", server.getsockname()[1])
    try:
        with pytest.raises(UnsafeHeader):
            conn.request("PUT", target, headers, b"body")
        server.settimeout(0.2)
        try:
            peer, _addr = server.accept()
            with peer:
                peer.settimeout(0.2)
                assert peer.recv(100) == b""
        except (socket.timeout, TimeoutError):
            pass
    finally:
        conn.close()
        server.close()
