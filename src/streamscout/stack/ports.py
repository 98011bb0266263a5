"""Port bookkeeping for `stack up`: which addresses a component needs and whether they are free.

Checking before starting turns "a port is taken" into an immediate, named error instead of a
component that dies later with the reason buried in its log.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


class PortInUseError(RuntimeError):
    """Another process listens on a port the stack needs; the message names it."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_host_port(text: str, *, default_host: str = "127.0.0.1") -> Endpoint:
    """``"127.0.0.1:59092"`` (the first of a comma-separated list) -> Endpoint."""
    first = text.split(",")[0].strip()
    host, sep, port = first.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected host:port, got {text!r}")
    return Endpoint(host or default_host, int(port))


def endpoint_of_url(url: str) -> Endpoint:
    """Host and port of a URL such as a DSN or ``http://127.0.0.1:58081``."""
    parts = urlsplit(url)
    if parts.port is None:
        raise ValueError(f"URL has no explicit port: {url!r}")
    return Endpoint(parts.hostname or "127.0.0.1", parts.port)


def port_in_use(endpoint: Endpoint) -> bool:
    """True when binding the address fails because something already holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option servers set, so a port in TIME_WAIT after a clean stop counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((endpoint.host, endpoint.port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def ensure_free(component: str, endpoints: list[Endpoint]) -> None:
    """Raise :class:`PortInUseError` naming the first taken port of ``component``."""
    for endpoint in endpoints:
        if port_in_use(endpoint):
            raise PortInUseError(
                f"{component}: port {endpoint.port} on {endpoint.host} is already in use by another "
                f"process (not started from this state directory); stop it or change the setting"
            )


def find_duplicates(claims: list[tuple[str, Endpoint]]) -> list[str]:
    """Messages for ports claimed by two components (a settings mistake, caught before starting)."""
    seen: dict[int, str] = {}
    problems = []
    for owner, endpoint in claims:
        if endpoint.port in seen and seen[endpoint.port] != owner:
            problems.append(f"port {endpoint.port} is configured for both {seen[endpoint.port]} and {owner}")
        seen.setdefault(endpoint.port, owner)
    return problems
