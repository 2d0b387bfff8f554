"""A blocking control-API client for the CLI.

Touches only the node's control socket.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omerta_core.control import protocol
from omerta_core.errors import ControlError, UnknownMethodError
from omerta_core.paths import control_socket_path

DEFAULT_TIMEOUT_S = 10.0

ProgressCallback = Callable[[str], None]


def call(
    state_dir: Path,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    on_progress: ProgressCallback | None = None,
) -> Any:
    """Send one request to the node using ``state_dir`` and return its result.

    ``timeout`` bounds the wait for each frame, so a method that keeps
    reporting progress may run longer. Closing the connection early (Ctrl-C
    raises :class:`KeyboardInterrupt` out of here) cancels the request on the node.
    """
    path = control_socket_path(state_dir)
    if not path.exists():
        raise ControlError(f"no node is running with state directory {state_dir} (start one with `omerta node`)")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(protocol.encode_frame(protocol.request(1, method, params)))
            response = _read_response(sock, on_progress)
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            raise ControlError(f"no node is answering on {path} (start one with `omerta node`)") from exc
        except TimeoutError as exc:
            raise ControlError(f"node on {path} did not answer within {timeout:.0f} s") from exc
    if not response.get("ok"):
        err = response.get("error") or {}
        if err.get("code") == "unknown-method":
            raise UnknownMethodError(method, state_dir)
        raise ControlError(str(err.get("message", "the node refused the request")))
    return response.get("result")


def _read_response(sock: socket.socket, on_progress: ProgressCallback | None) -> dict[str, Any]:
    decoder = protocol.FrameDecoder()
    while True:
        data = sock.recv(65536)
        if not data:
            raise ControlError("node closed the control connection")
        for message in decoder.feed(data):
            if not protocol.is_progress(message):
                return message
            if on_progress is not None:
                on_progress(str(message["progress"]))
