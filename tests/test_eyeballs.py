"""Happy Eyeballs: a dead first address costs the stagger delay, not the connect timeout.

The test runs a child in a network namespace of its own (``unshare -n``), where
nothing it sends can leave the machine: a veth pair whose far end answers
nothing, and permanent neighbour entries that send frames for fd00::2 and fd00::3
to a MAC nobody has, so SYNs to them are silently dropped. A resolver answers a
name with those two first, then the loopback server's 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest

from servers import LOOPS
from test_faults import unshare_works

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)

CHILD = textwrap.dedent(
    """
    import asyncio, json, subprocess, sys, time
    from aiofasthttp import Client, ConnectTimeout

    def ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("link", "set", "lo", "up")
    ip("link", "add", "eb0", "type", "veth", "peer", "name", "eb1")
    ip("-6", "addr", "add", "fd00::1/64", "dev", "eb0", "nodad")
    ip("link", "set", "eb0", "up")
    ip("link", "set", "eb1", "up")
    for dead in ("fd00::2", "fd00::3"):
        ip("-6", "neigh", "add", dead, "lladdr", "02:00:00:00:00:02", "dev", "eb0",
           "nud", "permanent")

    class Events:
        def __init__(self):
            self.attempts = []
        def connect_attempt(self, *, origin, address, outcome, seconds, error):
            self.attempts.append([address, outcome, round(seconds, 3)])

    async def handle(reader, writer):
        while (await reader.readuntil(b"\\r\\n\\r\\n")):
            writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
            await writer.drain()

    async def dual(host, port):
        assert host == "dual.test"
        return ["fd00::2", "fd00::3", "127.0.0.1"]

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        url = f"http://dual.test:{port}/"
        out = {"port": port}
        events = Events()
        async with Client(resolver=dual, connect_timeout=10, trace=events) as client:
            t = time.monotonic()
            r = await client.get(url)
            out["raced"] = [r.status, r.content.decode(), time.monotonic() - t]
        out["attempts"] = events.attempts
        async with Client(resolver=dual, connect_timeout=1, happy_eyeballs_delay=None,
                          retry=False) as client:
            t = time.monotonic()
            try:
                await client.get(url)
            except ConnectTimeout as exc:
                out["sequential"] = [str(exc), time.monotonic() - t]
        server.close()
        await server.wait_closed()
        return out

    if sys.argv[1] == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    print(json.dumps(loop.run_until_complete(asyncio.wait_for(main(), 60))))
    """
)


def test_a_silent_first_address_costs_the_stagger_not_the_timeout(loop_kind: str) -> None:
    if not unshare_works():
        pytest.skip("needs `unshare -n` and veth pairs (root or CAP_NET_ADMIN + CAP_SYS_ADMIN)")
    proc = subprocess.Popen(
        ["unshare", "-n", sys.executable, "-c", CHILD, loop_kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    facts = json.loads(out)
    port = facts["port"]
    status, body, seconds = facts["raced"]
    assert (status, body) == (200, "ok")
    # The second attempt starts 0.25 s after the first, and the families are
    # interleaved: 127.0.0.1 goes second, before the other dead IPv6 address.
    assert 0.2 < seconds < 1.0, facts
    addresses = [a[0] for a in facts["attempts"]]
    assert addresses == [f"[fd00::2]:{port}", f"127.0.0.1:{port}"], facts
    outcomes = {a[0]: a[1] for a in facts["attempts"]}
    assert outcomes == {f"[fd00::2]:{port}": "abandoned", f"127.0.0.1:{port}": "connected"}
    # Without the race, the dead first address holds the dial until the timeout,
    # and the error names the address that never answered, and for how long.
    text, seconds = facts["sequential"]
    assert 0.9 < seconds < 5, facts
    assert "connect_timeout=1 s" in text and "http://dual.test" in text
    found = re.search(rf"tried \[fd00::2\]:{port}: no answer in ([0-9.]+) s\)", text)
    assert found is not None and float(found.group(1)) > 0.9, text
