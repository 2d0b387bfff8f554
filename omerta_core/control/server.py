"""The control API's asyncio server on a Unix socket in the state directory.

Creates the socket with mode 0600, refuses peers of another uid (SO_PEERCRED),
and dispatches requests to control methods. Touches only that socket file.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import select
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from omerta_core.control import protocol
from omerta_core.control.progress import reporting_to
from omerta_core.errors import OmertaError, ProtocolError

SOCKET_MODE = 0o600
_UCRED = struct.Struct("3i")  # pid, uid, gid
READ_CHUNK = 65536

Method = Callable[[dict[str, Any]], Any]
log = structlog.get_logger("omerta.control")


def _hung_up(writer: asyncio.StreamWriter) -> bool:
    """True when the client closed its socket, not only its sending half (the kernel then reports POLLHUP)."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return True
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLHUP)
    return any(events & select.POLLHUP for _, events in poller.poll(0))


def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    _pid, uid, _gid = _UCRED.unpack(creds)
    return uid


class ControlServer:
    """Serves control methods to local clients of this node's own uid."""

    def __init__(self, path: Path, methods: dict[str, Method], *, allowed_uid: int | None = None) -> None:
        self.path = path
        self.methods = methods
        self.allowed_uid = os.getuid() if allowed_uid is None else allowed_uid
        self.refused = 0
        #: Frames refused (too large, not JSON, wrong version): answered with a protocol error, or closed.
        self.malformed = 0
        #: Replies that could not be sent (over the frame bound): the client got a protocol error instead.
        self.unsendable = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()
        old_umask = os.umask(0o177)  # the socket is born 0600; no window where others may connect
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        finally:
            os.umask(old_umask)
        os.chmod(self.path, SOCKET_MODE)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self.path.exists():
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            uid = peer_uid(sock)
            if uid != self.allowed_uid:
                self.refused += 1
                log.warning("control client refused", uid=uid)
                writer.write(protocol.encode_frame(protocol.error(None, "forbidden", "wrong uid")))
                await writer.drain()
                return
            await self._serve_requests(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _serve_requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = protocol.FrameDecoder()
        unread = bytearray()
        while True:
            data = bytes(unread) or await reader.read(READ_CHUNK)
            unread.clear()
            if not data:
                break
            try:
                messages = decoder.feed(data)
            except ProtocolError as exc:
                # the framing can no longer be trusted: answer once, count, close
                self.malformed += 1
                log.warning("control frame rejected", reason=str(exc))
                writer.write(protocol.encode_frame(protocol.error(None, "protocol", str(exc))))
                await writer.drain()
                return
            for message in messages:
                response = await self._answer(message, reader, writer, unread)
                if response is None:
                    return
                writer.write(self._encode_reply(response))
            await writer.drain()
        if decoder.buffer:
            self.malformed += 1
            log.warning("control connection ended inside a frame", pending_bytes=len(decoder.buffer))
            writer.write(protocol.encode_frame(protocol.error(None, "protocol", "connection ended inside a frame")))
            await writer.drain()

    def _encode_reply(self, reply: dict[str, Any]) -> bytes:
        """Frame a reply; one that cannot be sent (too large, not JSON) becomes a counted protocol error."""
        try:
            return protocol.encode_frame(reply)
        except ProtocolError as exc:
            self.unsendable += 1
            log.warning("control reply not sendable", reason=str(exc))
            return protocol.encode_frame(protocol.error(reply.get("id"), "protocol", f"reply not sent: {exc}"))

    async def _answer(
        self,
        message: dict[str, Any],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        unread: bytearray,
    ) -> dict[str, Any] | None:
        """Run one request while watching the connection; ``None`` when the client hung up first.

        A client that goes away (Ctrl-C on ``omerta vm create``) cancels its
        request, so a method can roll back what it had half made. Bytes of
        pipelined requests that arrive meanwhile are kept in ``unread``.
        """
        request_id = protocol.reply_id(message)

        def send_progress(note: str) -> None:
            writer.write(self._encode_reply(protocol.progress(request_id, note)))

        with reporting_to(send_progress):
            task = asyncio.ensure_future(self._dispatch(message))
        while not task.done():
            more = asyncio.ensure_future(reader.read(READ_CHUNK))
            await asyncio.wait({task, more}, return_when=asyncio.FIRST_COMPLETED)
            if not more.done():  # the request finished first: stop reading, keeping anything already read
                more.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    unread += await more
                continue
            if more.result():
                unread += more.result()
                continue
            if not _hung_up(writer):  # only half-closed (SHUT_WR): the client still waits for its answer
                await task
                break
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            log.info("control client hung up; request cancelled", method=message.get("method"))
            return None
        return task.result()

    async def _dispatch(self, message: dict[str, Any]) -> dict[str, Any]:
        request_id = protocol.reply_id(message)
        try:
            _, method_name, params = protocol.check_request(message)
        except ProtocolError as exc:
            self.malformed += 1
            return protocol.error(request_id, "protocol", str(exc))
        method = self.methods.get(method_name)
        if method is None:
            return protocol.error(request_id, "unknown-method", f"no method {method_name!r}")
        try:
            result = method(params)
            if inspect.isawaitable(result):
                result = await result
        except OmertaError as exc:
            return protocol.error(request_id, "failed", str(exc))
        except Exception:
            log.exception("control method failed", method=method_name)
            return protocol.error(request_id, "internal", "the node failed to carry this out; its log says why")
        return protocol.ok(request_id, result)
