"""Unit tests of module_utils/s3/client.py's retries, against a scripted loopback listener."""

import socket
import threading

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.s3 import client as s3_client


class Scripted:
    """Answers each request with the next scripted reply; ``drop`` closes the connection after it, unannounced."""

    def __init__(self, replies):
        self.replies, self.requests, self.connections = list(replies), [], 0
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.getsockname()[1]}"

    def serve(self):
        while self.replies:
            try:
                peer, _addr = self.server.accept()
            except OSError:
                return
            self.connections += 1
            with peer, peer.makefile("rb") as stream:
                while self.replies:
                    lines = []
                    while (line := stream.readline()) not in (b"\r\n", b""):
                        lines.append(line)
                    if not lines:
                        break
                    self.requests.append(lines[0].decode().split()[:2])
                    reply, drop = self.replies.pop(0)
                    peer.sendall(reply)
                    if drop:
                        break

    def close(self):
        self.server.close()


def ok(body=b""):
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


@pytest.fixture
def scripted():
    made = []

    def start(replies):
        made.append(Scripted(replies))
        return made[-1]

    yield start
    for server in made:
        server.close()


def test_a_dropped_kept_alive_connection_is_retried_on_a_new_one(scripted):
    server = scripted([(ok(), True), (ok(), False)])
    client = s3_client.S3Client(server.url, "ak", "sk")
    client.head_bucket(Bucket="b")
    client.head_bucket(Bucket="b")  # the pooled connection was closed by the server: no error
    assert server.connections == 2 and server.requests == [["HEAD", "/b"], ["HEAD", "/b"]]


def test_slow_down_is_retried_and_other_errors_are_not(scripted, monkeypatch):
    monkeypatch.setattr(s3_client.time, "sleep", lambda _seconds: None)
    slow = b"<Error><Code>SlowDown</Code><Message>reduce your rate</Message></Error>"
    denied = b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>"
    server = scripted([(b"HTTP/1.1 503 Slow Down\r\nContent-Length: %d\r\n\r\n%s" % (len(slow), slow), False),
                       (ok(b"<ListAllMyBucketsResult><Buckets><Bucket><Name>b</Name></Bucket></Buckets>"
                           b"</ListAllMyBucketsResult>"), False),
                       (b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n%s" % (len(denied), denied), False)])
    client = s3_client.S3Client(server.url, "ak", "sk")
    assert client.list_buckets() == {"Buckets": [{"Name": "b"}]}
    with pytest.raises(s3_client.ClientError) as caught:
        client.list_buckets()
    assert caught.value.response["Error"]["Code"] == "AccessDenied" and len(server.requests) == 3


def test_complete_multipart_reporting_an_error_in_a_200_reply_raises(scripted):
    error = b"<Error><Code>InternalError</Code><Message>try again</Message></Error>"
    server = scripted([(ok(error), False)])
    client = s3_client.S3Client(server.url, "ak", "sk")
    with pytest.raises(s3_client.ClientError, match="InternalError"):
        client.complete_multipart_upload(Bucket="b", Key="k", UploadId="u", MultipartUpload={"Parts": []})
