"""The stdlib OAuth calls against a scripted local HTTP server: requests sent, answers mapped."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from conftest import free_port

from streamscout.auth.errors import AuthServiceUnavailable, ClientCredentialsError, RefreshTokenRevoked
from streamscout.auth.oauth import refresh_token, validate_token

pytestmark = pytest.mark.unit


class Scripted:
    def __init__(self):
        self.status, self.body, self.requests = 200, b"{}", []


@pytest.fixture
def server():
    script = Scripted()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            script.requests.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
            self.send_response(script.status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(script.body)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    script.url = f"http://127.0.0.1:{httpd.server_address[1]}/oauth2/"
    yield script
    httpd.shutdown()
    httpd.server_close()


def answer(server, status, body):
    server.status, server.body = status, json.dumps(body).encode()


def test_validate_sends_the_token_in_an_oauth_header(server):
    answer(server, 200, {"client_id": "c", "login": "bot", "user_id": "7", "scopes": ["chat:read"], "expires_in": 99})
    result = validate_token(server.url, "tok")
    assert result == ("c", "7", "bot", ("chat:read",), 99)
    method, path, headers, _ = server.requests[0]
    assert (method, path, headers["Authorization"]) == ("GET", "/oauth2/validate", "OAuth tok")


def test_validate_401_means_stale(server):
    answer(server, 401, {"status": 401, "message": "invalid access token"})
    assert validate_token(server.url, "tok") is None


def test_refresh_posts_a_form_and_returns_the_pair(server):
    answer(server, 200, {"access_token": "a2", "refresh_token": "r2", "expires_in": 14400, "scope": ["chat:read"]})
    assert refresh_token(server.url, "cid", "sec", "r1") == ("a2", "r2", 14400)
    method, path, _, body = server.requests[0]
    assert (method, path) == ("POST", "/oauth2/token")
    assert parse_qs(body.decode()) == {
        "grant_type": ["refresh_token"], "refresh_token": ["r1"], "client_id": ["cid"], "client_secret": ["sec"]
    }


@pytest.mark.parametrize(
    "status, body, error",
    [
        (400, {"status": 400, "message": "Invalid refresh token"}, RefreshTokenRevoked),
        (401, {"status": 401, "message": "invalid"}, RefreshTokenRevoked),
        (403, {"status": 403, "message": "invalid client secret"}, ClientCredentialsError),
        (400, {"status": 400, "message": "Invalid client secret"}, ClientCredentialsError),
        (500, {"status": 500}, AuthServiceUnavailable),
        (503, {}, AuthServiceUnavailable),
        (200, {"access_token": "only-half"}, AuthServiceUnavailable),
        (429, {"status": 429}, AuthServiceUnavailable),
    ],
)
def test_refresh_failures_map_to_reasons_without_echoing_the_body(server, status, body, error):
    body = dict(body, echo="secret-refresh-token")
    answer(server, status, body)
    with pytest.raises(error) as caught:
        refresh_token(server.url, "cid", "sec", "secret-refresh-token")
    assert "secret-refresh-token" not in str(caught.value) and "sec" not in str(caught.value).split()


def test_non_json_answers_do_not_crash(server):
    server.status, server.body = 502, b"<html>bad gateway</html>"
    with pytest.raises(AuthServiceUnavailable, match="answered 502 to token validation"):
        validate_token(server.url, "tok")


def test_nothing_listening_is_unavailable():
    url = f"http://127.0.0.1:{free_port()}/oauth2/"
    with pytest.raises(AuthServiceUnavailable, match="cannot reach Twitch OAuth for token refresh"):
        refresh_token(url, "cid", "sec", "r1", timeout=2)
