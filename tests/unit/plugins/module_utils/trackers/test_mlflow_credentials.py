"""Each MLflow adapter sends its own credentials only, to its own server, never through os.environ.

Two scripted loopback listeners stand in for two MLflow tracking servers (they answer the one
REST call the check makes) and record every Authorization header they receive.
"""

import base64
import http.server
import json
import os
import threading

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.trackers.mlflow import MlflowSource, MlflowTarget


class Recorder(http.server.BaseHTTPRequestHandler):
    def _answer(self):
        self.server.seen.append(self.headers.get("Authorization"))
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = json.dumps({"experiments": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass


@pytest.fixture
def servers():
    started = []
    for _side in range(2):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        server.seen = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
    yield [(f"http://127.0.0.1:{s.server_address[1]}", s.seen) for s in started]
    for server in started:
        server.shutdown()
        server.server_close()


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_source_and_target_each_send_only_their_own_credentials(servers):
    (source_uri, source_seen), (target_uri, target_seen) = servers
    source = MlflowSource(source_uri, token="source-token")
    target = MlflowTarget(target_uri, username="tgt-user", password="tgt-secret")
    for _round in range(2):  # interleaved, as a copy interleaves them
        source.check()
        target.check()
    assert source_seen and set(source_seen) == {"Bearer source-token"}
    assert target_seen and set(target_seen) == {basic("tgt-user", "tgt-secret")}
    for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert name not in os.environ


def test_a_tracker_given_no_credentials_sends_none(servers):
    (source_uri, source_seen), (target_uri, target_seen) = servers
    MlflowSource(source_uri, token="only-the-source-has-one").check()
    MlflowTarget(target_uri).check()
    assert source_seen == ["Bearer only-the-source-has-one"]
    assert target_seen == [None]
