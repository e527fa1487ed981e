"""The one run-time patch of third-party code (translab.emulate.netns.aio): inside netns_sockets the
loop's create_* methods and aioice's host discovery are wrapped; without a binding they behave as
usual; afterwards everything is restored. Needs no root (no namespace is entered)."""

from __future__ import annotations

import asyncio

import aioice.ice

from translab.emulate.netns.aio import netns_sockets


async def test_patch_is_transparent_without_binding_and_restored_after() -> None:
    loop = asyncio.get_running_loop()
    orig_hosts = aioice.ice.get_host_addresses
    with netns_sockets(loop):
        assert "create_datagram_endpoint" in loop.__dict__ and aioice.ice.get_host_addresses is not orig_hosts
        got: asyncio.Future[bytes] = loop.create_future()

        class Rx(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                got.set_result(data)

        rx, _ = await loop.create_datagram_endpoint(Rx, local_addr=("127.0.0.1", 0))
        tx, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                    remote_addr=rx.get_extra_info("sockname"))
        tx.sendto(b"ping")
        assert await asyncio.wait_for(got, 2.0) == b"ping"
        tx.close()
        rx.close()
        assert aioice.ice.get_host_addresses(True, False) == orig_hosts(True, False)  # no binding: as usual
    assert not {"create_datagram_endpoint", "create_connection", "create_server"} & set(loop.__dict__)
    assert aioice.ice.get_host_addresses is orig_hosts
