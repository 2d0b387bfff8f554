"""A blocking control-API client for the CLI.

Touches only the node's control socket.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from omerta_core.control import protocol
from omerta_core.errors import ControlError
from omerta_core.paths import control_socket_path

DEFAULT_TIMEOUT_S = 10.0


def call(
    state_dir: Path, method: str, params: dict[str, Any] | None = None, *, timeout: float = DEFAULT_TIMEOUT_S
) -> Any:
    """Send one request to the node using ``state_dir`` and return its result."""
    path = control_socket_path(state_dir)
    if not path.exists():
        raise ControlError(f"no node is running with state directory {state_dir} (no {path.name})")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(protocol.encode_frame(protocol.request(1, method, params)))
            response = _read_one(sock)
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            raise ControlError(f"no node is answering on {path}") from exc
        except TimeoutError as exc:
            raise ControlError(f"node on {path} did not answer within {timeout:.0f} s") from exc
    if not response.get("ok"):
        err = response.get("error") or {}
        raise ControlError(f"{method}: {err.get('message', 'failed')}")
    return response.get("result")


def _read_one(sock: socket.socket) -> dict[str, Any]:
    decoder = protocol.FrameDecoder()
    while True:
        data = sock.recv(65536)
        if not data:
            raise ControlError("node closed the control connection")
        messages = decoder.feed(data)
        if messages:
            return messages[0]
