"""The Helix clip client maps every answer (and non-answer) of a real HTTP server to an Outcome."""

import http.server
import json
import threading
import time

import pytest

from streamscout.detector.clips import HelixClipClient, classify

pytestmark = pytest.mark.unit


class Tokens:
    def __init__(self):
        self.token, self.refreshes = "t1", 0

    def access_token(self):
        return self.token

    def refresh_after_401(self, stale):
        assert stale == self.token
        self.refreshes += 1
        self.token = f"t{self.refreshes + 1}"
        return self.token


class Handler(http.server.BaseHTTPRequestHandler):
    reply = (202, b"{}")
    seen: list = []

    def _answer(self):
        Handler.seen.append((self.command, self.path, self.headers.get("Authorization"), self.headers.get("Client-Id")))
        status, body = Handler.reply
        if status == "hang":
            time.sleep(1.0)
            status, body = 202, b"{}"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/helix"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def client(server):
    Handler.seen = []
    return HelixClipClient(server, "cid", Tokens(), timeout=0.3)


def reply(status, body=b""):
    Handler.reply = (status, body if isinstance(body, bytes) else json.dumps(body).encode())


@pytest.mark.parametrize(
    "status, kind",
    [(200, "ok"), (202, "ok"), (400, "rejected"), (401, "unauthorized"), (403, "forbidden"), (404, "offline"),
     (409, "rejected"), (429, "transient"), (500, "transient"), (503, "transient")],
)
def test_classify(status, kind):
    assert classify(status) == kind


def test_create_posts_with_token_and_client_id(client):
    reply(202, {"data": [{"id": "Abc", "edit_url": "x"}]})
    outcome = client.create(42)
    assert (outcome.kind, outcome.status, outcome.clip["id"]) == ("ok", 202, "Abc")
    assert Handler.seen == [("POST", "/helix/clips?broadcaster_id=42", "Bearer t1", "cid")]


@pytest.mark.parametrize("status, kind", [(401, "unauthorized"), (403, "forbidden"), (404, "offline"), (503, "transient"), (429, "transient"), (400, "rejected")])
def test_create_error_statuses(client, status, kind):
    reply(status, {"error": "x"})
    outcome = client.create(42)
    assert (outcome.kind, outcome.status) == (kind, status)


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"data": [3]}', b'{"data": []}', b'{"data": [{"edit_url": "x"}]}'])
def test_create_with_garbage_body_is_transient(client, body):
    reply(202, body)
    assert client.create(42).kind == "transient"


def test_hanging_server_is_a_transient_timeout(client):
    reply("hang")
    started = time.monotonic()
    outcome = client.create(42)
    assert (outcome.kind, outcome.detail) == ("transient", "timeout")
    assert time.monotonic() - started < 0.9


def test_refused_connection_is_transient():
    port_client = HelixClipClient("http://127.0.0.1:9/helix/", "cid", Tokens(), timeout=0.3)
    assert port_client.create(42).kind == "transient"


def test_get_found_missing_and_errors(client):
    reply(200, {"data": [{"id": "Abc", "embed_url": "e", "thumbnail_url": "t"}]})
    assert client.get("Abc").clip["thumbnail_url"] == "t"
    assert Handler.seen[-1][:2] == ("GET", "/helix/clips?id=Abc")
    reply(200, {"data": []})
    assert client.get("Abc").kind == "missing"
    reply(503)
    assert client.get("Abc").kind == "transient"
    reply(401)
    assert client.get("Abc").kind == "unauthorized"


def test_refreshed_token_is_used_on_the_next_call(client):
    reply(202, {"data": [{"id": "A"}]})
    client.create(1)
    assert client.last_token == "t1"
    client.tokens.refresh_after_401(client.last_token)
    client.create(1)
    assert Handler.seen[-1][2] == "Bearer t2"


def test_broken_token_provider_is_unauthorized_not_a_crash(server):
    class Broken:
        def access_token(self):
            raise OSError("gone")

    assert HelixClipClient(server, "cid", Broken()).create(1).kind == "unauthorized"
