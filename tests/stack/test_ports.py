"""Port parsing and the fail-fast check for taken ports."""

import socket

import pytest

from streamscout.stack.ports import (
    Endpoint,
    PortInUseError,
    endpoint_of_url,
    ensure_free,
    find_duplicates,
    parse_host_port,
    port_in_use,
)

pytestmark = pytest.mark.unit


def test_parse_host_port_takes_the_first_server():
    assert parse_host_port("127.0.0.1:59092,127.0.0.1:59094") == Endpoint("127.0.0.1", 59092)
    assert parse_host_port(":59092") == Endpoint("127.0.0.1", 59092)


@pytest.mark.parametrize("text", ["127.0.0.1", "127.0.0.1:x", ""])
def test_parse_host_port_rejects_garbage(text):
    with pytest.raises(ValueError, match="host:port"):
        parse_host_port(text)


def test_endpoint_of_url_reads_dsns_and_urls():
    assert endpoint_of_url("postgresql://u@127.0.0.1:55432/db") == Endpoint("127.0.0.1", 55432)
    assert endpoint_of_url("redis://127.0.0.1:56379/0") == Endpoint("127.0.0.1", 56379)
    with pytest.raises(ValueError, match="no explicit port"):
        endpoint_of_url("http://127.0.0.1/")


@pytest.fixture
def listening():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield Endpoint("127.0.0.1", sock.getsockname()[1])


def test_a_listening_port_is_in_use(listening):
    assert port_in_use(listening)


def test_a_closed_port_is_free(listening):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = Endpoint("127.0.0.1", sock.getsockname()[1])
    assert not port_in_use(free)


def test_ensure_free_names_component_and_port(listening):
    with pytest.raises(PortInUseError, match=rf"redis: port {listening.port} on 127.0.0.1 is already in use"):
        ensure_free("redis", [listening])


def test_duplicate_ports_across_components_are_reported():
    claims = [
        ("kafka", Endpoint("127.0.0.1", 59092)),
        ("kafka", Endpoint("127.0.0.1", 9093)),
        ("alertmanager", Endpoint("127.0.0.1", 9093)),
    ]
    assert find_duplicates(claims) == ["port 9093 is configured for both kafka and alertmanager"]
    assert find_duplicates(claims[:2]) == []
