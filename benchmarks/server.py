"""A fast loopback HTTP/1.1 target for the benchmarks: it counts what it receives and must
never be the bottleneck.

One asyncio process, raw protocol (no framework): keep-alive, Content-Length bodies, a tiny
JSON answer. It keeps a count per millisecond of arrival (so counts can be lined up with the
run's own clock), and with `--delay-ms LOW:HIGH` it answers after a uniform random delay and
keeps the delay it actually served (first byte in -> answer written), the true distribution.

Control paths (not counted): `GET /__health`, `GET /__count` (a number), `GET /__stats` (JSON),
`GET /__reset`.

    python benchmarks/server.py --port 0 [--delay-ms 10:50] [--seed 1]
prints `listening http://127.0.0.1:PORT` once ready.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from typing import Any

BODY = b'{"items":[{"id":1}],"ok":true}'
OK = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
      + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


class Counts:
    def __init__(self, delay_ms: tuple[float, float] | None, seed: int) -> None:
        self.delay_ms = delay_ms
        self.rng = random.Random(seed)
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.connections = 0
        self.per_ms: dict[int, int] = {}
        self.served_ms: list[float] = []

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "connections": self.connections, "per_ms": self.per_ms,
                "served_ms": self.served_ms}


class Http(asyncio.Protocol):
    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.counts.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            length = 0
            lower = head.lower()
            at = lower.find(b"content-length:")
            if at >= 0:
                length = int(lower[at + 15:].split(b"\r\n", 1)[0])
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length:]
            path = head.split(b" ", 2)[1]
            self.answer(path)

    def answer(self, path: bytes) -> None:
        transport = self.transport
        assert transport is not None
        counts = self.counts
        if path.startswith(b"/__"):
            if path == b"/__stats":
                body = json.dumps(counts.to_json()).encode()
            elif path == b"/__count":
                body = str(counts.count).encode()
            else:
                if path == b"/__reset":
                    counts.reset()
                body = b"{}"
            transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            return
        now = time.time()
        counts.count += 1
        ms = int(now * 1000.0)
        counts.per_ms[ms] = counts.per_ms.get(ms, 0) + 1
        if counts.delay_ms is None:
            transport.write(OK)
            return
        low, high = counts.delay_ms
        began = time.perf_counter()

        def reply() -> None:
            if not transport.is_closing():
                transport.write(OK)
                counts.served_ms.append((time.perf_counter() - began) * 1000.0)

        asyncio.get_running_loop().call_later(counts.rng.uniform(low, high) / 1000.0, reply)


async def serve(port: int, delay_ms: tuple[float, float] | None, seed: int) -> None:
    counts = Counts(delay_ms, seed)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Http(counts), "127.0.0.1", port, backlog=1024)
    print(f"listening http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", default=None, help="LOW:HIGH, uniform")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    delay = None
    if args.delay_ms:
        low, high = (float(x) for x in args.delay_ms.split(":"))
        delay = (low, high)
    try:
        asyncio.run(serve(args.port, delay, args.seed))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
