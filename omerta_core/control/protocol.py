"""Control-API framing as a pure state machine: bytes in, requests out.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8
JSON. A request is ``{"v": 1, "id": N, "method": "...", "params": {...}}``; a
response is ``{"v": 1, "id": N, "ok": true, "result": ...}`` or
``{"v": 1, "id": N, "ok": false, "error": {"code": "...", "message": "..."}}``.
While a slow method runs, the server may send any number of progress notes
first, ``{"v": 1, "id": N, "progress": "..."}``; a client that hangs up before
the response cancels the method (a half-created VM is rolled back).
No I/O here; the server and client adapters feed and drain it.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

from omerta_core.errors import ProtocolError

PROTOCOL_VERSION = 1
HEADER = struct.Struct(">I")
#: Largest frame either side accepts. Status and listings are a few KiB; 1 MiB
#: leaves room for chain ranges while bounding what a bad client can make us buffer.
MAX_FRAME_BYTES = 1 << 20
#: Longest method name and string request id accepted: names are short dotted words.
MAX_METHOD_CHARS = 128
MAX_ID_CHARS = 128


def encode_frame(message: dict[str, Any]) -> bytes:
    """Frame ``message``; raise :class:`ProtocolError` if it cannot be encoded or exceeds the frame bound."""
    try:
        body = json.dumps(message, separators=(",", ":"), default=str).encode()
    except (ValueError, RecursionError) as exc:  # a circular value, or an integer past the digit limit
        raise ProtocolError(f"message cannot be encoded as JSON: {_one_line(exc)}") from exc
    if len(body) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(body)} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
    return HEADER.pack(len(body)) + body


def request(request_id: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "id": request_id, "method": method, "params": params or {}}


def ok(request_id: Any, result: Any) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "id": request_id, "ok": True, "result": result}


def error(request_id: Any, code: str, message: str) -> dict[str, Any]:
    return {
        "v": PROTOCOL_VERSION,
        "id": request_id,
        "ok": False,
        "error": {"code": code, "message": message},
    }


def progress(request_id: Any, note: str) -> dict[str, Any]:
    """A note on what a slow request is doing; the response still follows."""
    return {"v": PROTOCOL_VERSION, "id": request_id, "progress": note}


def is_progress(message: dict[str, Any]) -> bool:
    return "progress" in message and "ok" not in message


@dataclass
class FrameDecoder:
    """Accumulates bytes and yields whole decoded JSON objects.

    After a :class:`ProtocolError` the decoder stays broken: the connection's
    framing can no longer be trusted and must be closed.
    """

    buffer: bytearray = field(default_factory=bytearray)
    broken: bool = False

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        if self.broken:
            raise ProtocolError("connection already failed")
        self.buffer += data
        messages = []
        while len(self.buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(self.buffer)
            if length > MAX_FRAME_BYTES:
                self.broken = True
                raise ProtocolError(f"frame of {length} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
            if len(self.buffer) < HEADER.size + length:
                break
            body = bytes(self.buffer[HEADER.size : HEADER.size + length])
            del self.buffer[: HEADER.size + length]
            messages.append(self._decode(body))
        return messages

    def _decode(self, body: bytes) -> dict[str, Any]:
        try:
            message = json.loads(body.decode())
        except RecursionError as exc:
            self.broken = True
            raise ProtocolError("frame nests JSON too deeply") from exc
        except ValueError as exc:  # not UTF-8, not JSON, or an integer past Python's digit limit
            self.broken = True
            raise ProtocolError(f"frame is not UTF-8 JSON: {_one_line(exc)}") from exc
        if not isinstance(message, dict):
            self.broken = True
            raise ProtocolError("frame is not a JSON object")
        return message


def check_request(message: dict[str, Any]) -> tuple[Any, str, dict[str, Any]]:
    """Validate a decoded request; return ``(id, method, params)``.

    The id is echoed in the reply, so it must be a number, a short string or null.
    """
    if message.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {_short(message.get('v'))}, want {PROTOCOL_VERSION}")
    method = message.get("method")
    params = message.get("params", {})
    if not isinstance(method, str) or len(method) > MAX_METHOD_CHARS or not isinstance(params, dict):
        raise ProtocolError("request needs a string 'method' and an object 'params'")
    if reply_id(message) != message.get("id"):
        raise ProtocolError(f"request 'id' must be a number, a string of at most {MAX_ID_CHARS} characters, or null")
    return message.get("id"), method, params


def reply_id(message: dict[str, Any]) -> int | float | str | None:
    """The request id to echo in a reply: the client's if it is a number or a short string, else null."""
    request_id = message.get("id")
    if isinstance(request_id, (int, float)) or (isinstance(request_id, str) and len(request_id) <= MAX_ID_CHARS):
        return request_id
    return None


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, (str, int, float, bool)) or value is None else type(value).__name__
    return text if len(text) <= 40 else text[:40] + "..."


def _one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
