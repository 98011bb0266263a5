"""No query string makes the API answer 500: schemathesis from the OpenAPI description, and raw bytes."""

from __future__ import annotations

import socket
from urllib.parse import quote

import pytest
import schemathesis
from api_support import api  # noqa: F401 (fixture)
from hypothesis import HealthCheck, given, settings, strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from streamscout.api.openapi import openapi_document

pytestmark = pytest.mark.integration

schema = schemathesis.openapi.from_dict(openapi_document())
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@schema.parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_operations_never_fail(case, api):
    response = case.call(base_url=api.url)
    case.validate_response(response, checks=CHECKS)


def _raw_get(api, target: bytes) -> int:
    """Send the request line byte for byte (http.client refuses what a hostile client may send)."""
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = sock.recv(64)
    return int(head.split(b" ", 2)[1])


_query_bytes = st.one_of(
    st.binary(max_size=200).map(lambda raw: b"".join(b"%%%02X" % b if b < 0x21 or b > 0x7E else bytes([b]) for b in raw)),
    st.text(max_size=120).map(lambda text: quote(text, safe="=&%+;:,/?").encode()),
    st.lists(
        st.tuples(st.sampled_from(["start", "end", "limit", "cursor", "broadcaster", "min_score"]), st.text(max_size=40)),
        max_size=5,
    ).map(lambda pairs: "&".join(f"{k}={quote(v, safe='+:')}" for k, v in pairs).encode()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(query=_query_bytes)
def test_raw_query_strings_are_200_or_400(api, query):
    assert _raw_get(api, b"/v1.0/clip?" + query) in (200, 400)
