"""Lent receive buffers: what the connections read into, on asyncio's loops and uvloop."""

from __future__ import annotations

import asyncio

from aiofasthttp.engine import dial
from aiofasthttp.engine.connection import BufferedConnection, Connection
from aiofasthttp.h1.url import Origin


def test_connections_read_into_lent_buffers_where_it_pays() -> None:
    import uvloop

    # asyncio's loops always; uvloop over TLS only (its SSL layer would otherwise
    # decrypt each read into a fresh 256 KiB bytes object: see dial.py's figures).
    for loop, plain in ((asyncio.new_event_loop(), True), (uvloop.new_event_loop(), False)):
        try:
            assert dial.lends_buffers(loop) is plain
            assert dial.lends_buffers(loop, tls=True) is True
            conn: Connection = BufferedConnection(Origin("http", "127.0.0.1", 1), loop)
            assert isinstance(conn, asyncio.BufferedProtocol)
        finally:
            loop.close()


def test_a_buffer_lent_for_a_read_that_brought_nothing_goes_back_when_lost() -> None:
    loop = asyncio.new_event_loop()
    try:
        conn = BufferedConnection(Origin("http", "127.0.0.1", 1), loop)
        dial.spare_buffers.clear()
        view = conn.get_buffer(-1)  # the loop lends it, then the read finds EOF
        assert conn.get_buffer(-1) is view  # the next read uses the same one
        conn.connection_lost(None)
        assert dial.spare_buffers == [view]
        other = BufferedConnection(Origin("http", "127.0.0.1", 1), loop)
        assert other.get_buffer(-1) is view  # and the next connection gets it
        other.buffer_updated(0)
        assert dial.spare_buffers == [view]
    finally:
        dial.spare_buffers.clear()
        loop.close()
