"""A UDP reflector for lab assertions: answers each datagram with the source it observed.

The answer is ``b"seen HOST PORT"`` sent from the socket that received the
probe. A reflector can also be told to send from its socket to an endpoint
(``b"send HOST PORT"``), which lets a test check a NAT's filtering from a
chosen remote address and port. Touches only the socket it is given and one
thread of its own.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Self

#: Largest datagram the reflector reads; probes are tiny.
MAX_DATAGRAM = 2048
#: How long a blocking read waits before the thread checks for close().
POLL_INTERVAL_S = 0.2
#: Probes sent before observe() gives up: the first packet of a new path can be lost (neighbour discovery).
OBSERVE_ATTEMPTS = 3


def parse_seen(reply: bytes) -> tuple[str, int]:
    """Decode a ``seen HOST PORT`` answer into ``(host, port)``."""
    word, host, port = reply.decode().split()
    if word != "seen":
        raise ValueError(f"not a reflector answer: {reply!r}")
    return host, int(port)


class Reflector:
    """Serves one bound UDP socket on a background thread until closed."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(POLL_INTERVAL_S)
        self.address: tuple[str, int] = sock.getsockname()[:2]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"reflector-{self.address}", daemon=True)
        self._thread.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_from_here(self, target: tuple[str, int], payload: bytes = b"unsolicited") -> None:
        """Send ``payload`` to ``target`` from this reflector's address and port."""
        self.sock.sendto(payload, target)

    def close(self) -> None:
        self._closed.set()
        self._thread.join()
        self.sock.close()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                data, source = self.sock.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(OSError):
                self._answer(data, source)

    def _answer(self, data: bytes, source: tuple[str, int]) -> None:
        if data.startswith(b"send "):
            _, host, port = data.decode().split()
            self.sock.sendto(b"unsolicited", (host, int(port)))
            return
        self.sock.sendto(f"seen {source[0]} {source[1]}".encode(), source)


def observe(sock: socket.socket, reflector: Reflector, attempts: int = OBSERVE_ATTEMPTS) -> tuple[str, int]:
    """The source endpoint ``reflector`` saw for a probe sent from ``sock`` (each try waits ``sock``'s timeout)."""
    for attempt in range(attempts):
        sock.sendto(b"probe", reflector.address)
        try:
            return parse_seen(sock.recv(MAX_DATAGRAM))
        except TimeoutError:
            if attempt == attempts - 1:
                raise
    raise ValueError("attempts must be positive")


def receives(sock: socket.socket) -> bool:
    """Whether a datagram reaches ``sock`` before its timeout."""
    try:
        sock.recv(MAX_DATAGRAM)
    except TimeoutError:
        return False
    return True
