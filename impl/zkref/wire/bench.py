"""Codec micro-benchmark: `python -m zkref.wire.bench [seconds-per-case]`.

Prints decodes/s and encodes/s for the server's side of the hot path (decode a getData/setData
request frame, encode its reply) and the client's side (encode the request, decode the reply),
plus FrameDecoder splitting a batch of 32 pipelined getData frames.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from zkref.wire.codec import (
    FrameDecoder,
    decode_reply,
    decode_request,
    encode_notification,
    encode_reply,
    encode_request,
)
from zkref.wire.constants import DEFAULT_JUTE_MAXBUFFER, OpCode
from zkref.wire.records import (
    ACL,
    CreateRequest,
    CreateResponse,
    GetDataRequest,
    GetDataResponse,
    Id,
    SetDataRequest,
    SetDataResponse,
    Stat,
    WatcherEvent,
)

VALUE = b"x" * 100
PATH = "/bench/node-000042"
STAT = Stat(0x100000002, 0x100000007, 1700000000000, 1700000000123, 5, 0, 0, 0, 100, 0, 0x100000002)


def _rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of this process's CPU time (so other load on the machine matters less)."""
    n = 0
    batch = 2000
    start = time.process_time()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            fn()
        n += batch
        now = time.process_time()
        if now >= deadline:
            return n / (now - start)


def main(argv: list[str]) -> None:
    seconds = float(argv[1]) if len(argv) > 1 else 1.0
    get_req = encode_request(7, OpCode.getData, GetDataRequest(PATH, False))[4:]
    set_req = encode_request(8, OpCode.setData, SetDataRequest(PATH, VALUE, -1))[4:]
    get_body = GetDataResponse(VALUE, STAT)
    set_body = SetDataResponse(STAT)
    get_rep = encode_reply(7, 0x100000009, 0, get_body)[4:]
    set_rep = encode_reply(8, 0x100000009, 0, set_body)[4:]
    event = WatcherEvent(3, 3, PATH)
    batch = encode_request(7, OpCode.getData, GetDataRequest(PATH, False)) * 32
    create_req = encode_request(
        9, OpCode.create, CreateRequest(PATH, VALUE, (ACL(31, Id("world", "anyone")),), 0)
    )[4:]
    gd = GetDataRequest(PATH, False)
    sd = SetDataRequest(PATH, VALUE, -1)

    def split_batch() -> object:
        return FrameDecoder(DEFAULT_JUTE_MAXBUFFER).feed(batch)

    cases: list[tuple[str, Callable[[], object]]] = [
        ("server decode getData request", lambda: decode_request(get_req)),
        ("server encode getData reply", lambda: encode_reply(7, 9, 0, get_body)),
        ("server decode setData request", lambda: decode_request(set_req)),
        ("server encode setData reply", lambda: encode_reply(8, 9, 0, set_body)),
        ("server decode create request", lambda: decode_request(create_req)),
        ("server encode create reply", lambda: encode_reply(9, 9, 0, CreateResponse(PATH))),
        ("server encode ping reply", lambda: encode_reply(-2, 9, 0, None)),
        ("server encode notification", lambda: encode_notification(event, -1)),
        ("client encode getData request", lambda: encode_request(7, OpCode.getData, gd)),
        ("client decode getData reply", lambda: decode_reply(get_rep, OpCode.getData)),
        ("client encode setData request", lambda: encode_request(8, OpCode.setData, sd)),
        ("client decode setData reply", lambda: decode_reply(set_rep, OpCode.setData)),
    ]
    print(f"zkref.wire codec, {seconds:g} CPU-s per case, 100-byte values, per CPU-second")
    rates = {}
    for name, fn in cases:
        rates[name] = _rate(fn, seconds)
        print(f"  {name:34s} {rates[name]:>12,.0f} /s")
    frames_per_s = _rate(split_batch, seconds) * 32
    print(f"  {'FrameDecoder, 32 getData/batch':34s} {frames_per_s:>12,.0f} frames/s")
    for op in ("getData", "setData"):
        per = (
            1 / rates[f"server decode {op} request"] + 1 / rates[f"server encode {op} reply"]
        ) * 1e6
        print(f"  server codec cost per {op}: {per:.2f} µs (decode request + encode reply)")


if __name__ == "__main__":
    main(sys.argv)
