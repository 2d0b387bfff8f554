"""The control API: framing, uid check, and a node that survives bad clients."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import subprocess
from pathlib import Path

import pytest

from omerta_core.control import client, protocol
from omerta_core.control.server import ControlServer
from omerta_core.errors import ControlError, ProtocolError

from .test_node import running_node


def test_decoder_reassembles_split_frames() -> None:
    frame = protocol.encode_frame(protocol.request(7, "status"))
    decoder = protocol.FrameDecoder()
    assert decoder.feed(frame[:3]) == []
    assert decoder.feed(frame[3:10]) == []
    (message,) = decoder.feed(frame[10:] + frame)[:1]
    assert protocol.check_request(message) == (7, "status", {})


def test_decoder_refuses_oversized_frame_before_buffering_it() -> None:
    decoder = protocol.FrameDecoder()
    with pytest.raises(ProtocolError, match="exceeds"):
        decoder.feed(struct.pack(">I", protocol.MAX_FRAME_BYTES + 1))
    with pytest.raises(ProtocolError):
        decoder.feed(b"more")


@pytest.mark.parametrize("body", [b"\xff\xfe", b"{not json", b"[1, 2]"])
def test_decoder_refuses_non_object_frames(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.FrameDecoder().feed(struct.pack(">I", len(body)) + body)


def test_wrong_version_and_missing_method_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError, match="version"):
        protocol.check_request({"v": 99, "method": "status"})
    with pytest.raises(ProtocolError, match="method"):
        protocol.check_request({"v": protocol.PROTOCOL_VERSION, "params": {}})


def test_client_of_another_uid_is_refused(tmp_path: Path) -> None:
    async def scenario() -> tuple[dict, int]:
        server = ControlServer(tmp_path / "control.sock", {"status": lambda p: "ok"}, allowed_uid=os.getuid() + 1)
        await server.start()
        try:
            reader, writer = await asyncio.open_unix_connection(str(tmp_path / "control.sock"))
            writer.write(protocol.encode_frame(protocol.request(1, "status")))
            await writer.drain()
            data = await reader.read(65536)
            writer.close()
            return protocol.FrameDecoder().feed(data)[0], server.refused
        finally:
            await server.stop()

    response, refused = asyncio.run(scenario())
    assert response["ok"] is False
    assert response["error"]["code"] == "forbidden"
    assert refused == 1


def test_socket_file_is_private(tmp_path: Path) -> None:
    with running_node(tmp_path / "state") as state:
        sock = state / "control.sock"
        assert oct(sock.stat().st_mode & 0o777) == "0o600"
        if os.getuid() == 0:
            # Another user cannot even open it.
            probe = subprocess.run(
                ["python3", "-c", f"import socket;s=socket.socket(socket.AF_UNIX);s.connect({str(sock)!r})"],
                user=65534,
                capture_output=True,
                text=True,
                check=False,
            )
            assert "PermissionError" in probe.stderr


def raw_exchange(sock_path: Path, payload: bytes) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(sock_path))
        sock.sendall(payload)
        data = sock.recv(65536)
    return json.loads(data[4:])


def test_node_rejects_malformed_and_oversized_frames_and_keeps_serving(tmp_path: Path) -> None:
    with running_node(tmp_path / "state") as state:
        sock = state / "control.sock"
        assert raw_exchange(sock, struct.pack(">I", 1 << 30))["error"]["code"] == "protocol"
        assert raw_exchange(sock, struct.pack(">I", 5) + b"nope!")["error"]["code"] == "protocol"
        bad_version = protocol.encode_frame({"v": 0, "id": 1, "method": "status", "params": {}})
        assert "version" in raw_exchange(sock, bad_version)["error"]["message"]
        unknown = protocol.encode_frame(protocol.request(2, "no.such.method"))
        assert raw_exchange(sock, unknown)["error"]["code"] == "unknown-method"
        status = client.call(state, "status")
        assert status["control"]["malformed"] == 3


def test_client_without_a_node_gets_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="no node is running"):
        client.call(tmp_path, "status")


# -- replays of the inputs fuzzing found (issue 12) -------------------------------------------

DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
LONG_INTEGER = b'{"v": 1, "id": ' + b"9" * 5000 + b', "method": "status", "params": {}}'


@pytest.mark.parametrize("body", [DEEP_ARRAY, LONG_INTEGER], ids=["deep-array", "5000-digit-integer"])
def test_decoder_turns_recursion_and_digit_limits_into_protocol_errors(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.FrameDecoder().feed(struct.pack(">I", len(body)) + body)


def test_reply_id_echoes_only_numbers_and_short_strings() -> None:
    assert protocol.reply_id({"id": 7}) == 7
    assert protocol.reply_id({"id": "x" * 10}) == "x" * 10
    assert protocol.reply_id({"id": [[[]]]}) is None
    assert protocol.reply_id({"id": "x" * 10_000}) is None


def serve_and_exchange(tmp_path: Path, methods: dict, payloads: list[bytes]) -> tuple[list[dict | None], ControlServer]:
    """Send each payload on its own connection to a real server; collect each reply (None: closed without one)."""

    async def scenario() -> tuple[list[dict | None], ControlServer]:
        server = ControlServer(tmp_path / "control.sock", methods)
        await server.start()
        replies: list[dict | None] = []
        try:
            for payload in payloads:
                reader, writer = await asyncio.open_unix_connection(str(tmp_path / "control.sock"))
                writer.write(payload)
                await writer.drain()
                writer.write_eof()
                data = await asyncio.wait_for(reader.read(), 10)
                writer.close()
                messages = protocol.FrameDecoder().feed(data) if data else []
                replies.append(messages[0] if messages else None)
        finally:
            await server.stop()
        return replies, server

    return asyncio.run(scenario())


def test_server_answers_every_bad_frame_with_a_protocol_error_and_counts_it(tmp_path: Path) -> None:
    # The replay: RecursionError, ValueError and an oversize reply each ended in
    # "Unhandled exception in client_connected_cb" with no reply and nothing counted.
    big = {"status": lambda p: "ok", "dump": lambda p: "x" * (protocol.MAX_FRAME_BYTES + 1)}
    frames = [
        struct.pack(">I", len(DEEP_ARRAY)) + DEEP_ARRAY,
        struct.pack(">I", len(LONG_INTEGER)) + LONG_INTEGER,
        protocol.encode_frame(protocol.request(3, "dump")),
        protocol.encode_frame({"v": 1, "id": [[1]] * 100, "method": "status", "params": {}}),
    ]
    replies, server = serve_and_exchange(tmp_path, big, frames)
    assert all(r is not None and r["ok"] is False and r["error"]["code"] == "protocol" for r in replies), replies
    assert replies[2] is not None and replies[2]["id"] == 3 and "exceeds" in replies[2]["error"]["message"]
    assert server.malformed == 3  # the deep array, the long integer and the unechoable id
    assert server.unsendable == 1
    assert replies[3] is not None and replies[3]["id"] is None and "'id'" in replies[3]["error"]["message"]


def test_server_counts_a_connection_that_ends_inside_a_frame(tmp_path: Path) -> None:
    frame = protocol.encode_frame(protocol.request(1, "status"))
    replies, server = serve_and_exchange(tmp_path, {"status": lambda p: "ok"}, [frame[:2], frame[:-3]])
    assert [r["error"]["code"] if r else None for r in replies] == ["protocol", "protocol"]
    assert server.malformed == 2
