"""The TCP relay: bytes cross the TCP delivery model in order, with head-of-line stalls, and a
receiver that stops reading cannot make the relay buffer without bound."""

from __future__ import annotations

import asyncio
import socket
import struct

import numpy as np

from translab.emulate.emulator import LiveEmulator
from translab.emulate.scheduler import now
from translab.link.chain import LinkChain
from translab.link.delay import Delay
from translab.link.loss import BernoulliLoss


async def _sink_server(record: list[tuple[float, bytes]]) -> asyncio.base_events.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            record.append((now(), data))
            writer.write(data[:1])  # a little traffic back
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_relay_delivers_in_order_with_delay_and_hol_stalls() -> None:
    """20 ms writes over a 20 ms + 20 % loss link: every byte arrives intact and in order; some
    writes are held back by a retransmission (delivery >> 20 ms), none arrives early."""

    async def main() -> tuple[bytes, list[float], dict]:
        rec: list[tuple[float, bytes]] = []
        server = await _sink_server(rec)
        port = server.sockets[0].getsockname()[1]
        emu = LiveEmulator("test", seed=4, chain_factory=lambda d: LinkChain([BernoulliLoss(0.2), Delay(0.02)]))
        await emu.start()
        relay = await emu.tcp_relay(("127.0.0.1", port))
        sock, _ = await relay.connect()
        reader, writer = await asyncio.open_connection(sock=sock)
        sent = []
        for i in range(40):
            sent.append(now())
            writer.write(struct.pack("!I", i) * 50)  # 200 bytes per write
            await writer.drain()
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.5)  # room for an RTO
        report = emu.report()
        writer.close()
        await emu.close()
        server.close()
        await server.wait_closed()
        data = b"".join(d for _, d in rec)
        # per write: when its last byte arrived
        ends = np.cumsum([len(d) for _, d in rec])
        times = [t for t, _ in rec]
        delays = []
        for i in range(40):
            j = int(np.searchsorted(ends, (i + 1) * 200))
            delays.append(times[j] - sent[i] if j < len(times) else np.nan)
        return data, delays, report

    data, delays, report = asyncio.run(main())
    assert data == b"".join(struct.pack("!I", i) * 50 for i in range(40))
    d = np.array(delays)
    assert np.all(d >= 0.02 - 1e-3)
    assert np.nanmax(d) > 0.06  # at least one head-of-line stall behind a retransmission
    assert report["emu_tcp_up_retransmissions"] > 0
    assert report["emu_tcp_up_app_bytes_out"] == 8000
    assert report["emu_tcp_up_acks"] > 0


def test_relay_bounds_buffering_when_receiver_stops_reading() -> None:
    async def main() -> tuple[int, int]:
        stop = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            await stop.wait()  # never reads
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        emu = LiveEmulator("test", seed=1, chain_factory=lambda d: Delay(0.001))
        await emu.start()
        relay = await emu.tcp_relay(("127.0.0.1", port), high_water=64 * 1024)
        sock, _ = await relay.connect()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        reader, writer = await asyncio.open_connection(sock=sock)
        chunk = b"x" * 65536
        written = 0
        for _ in range(200):  # up to 13 MB; the writer must block well before that
            writer.write(chunk)
            try:
                await asyncio.wait_for(writer.drain(), 0.2)
            except asyncio.TimeoutError:
                break
            written += len(chunk)
        report = emu.report()
        stop.set()
        writer.close()
        await emu.close()
        server.close()
        await server.wait_closed()
        return written, report["emu_tcp_up_max_buffered_bytes"]

    written, max_buf = asyncio.run(main())
    # back-pressure reached the writer: what it got rid of fits in the (bounded) buffers on the way
    assert written < 4 * 1024 * 1024
    assert max_buf < 64 * 1024 + 2 * 65536 + 300_000  # relay's own buffer stays near high water
