"""Codec edge cases: framing, truncation, unknown opcodes, jute's lenient corners."""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import itertools
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkref.wire.codec import (
    DecodeError,
    FrameDecoder,
    FrameTooLarge,
    UnknownOpCode,
    decode_connect_request,
    decode_record,
    decode_reply,
    decode_request,
    decode_txn,
    encode_reply,
    encode_request,
    peek_xid,
)
from zkref.wire.constants import DEFAULT_JUTE_MAXBUFFER, OpCode
from zkref.wire.records import (
    CreateRequest,
    GetChildrenResponse,
    GetDataRequest,
    GetDataResponse,
    MultiRequest,
    SetDataRequest,
    Stat,
)

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
_INDEX = json.loads((GOLDEN / "index.json").read_text())["frames"]
REQUEST_FRAMES = [(GOLDEN / e["file"]).read_bytes() for e in _INDEX if e["kind"] == "request"]
STAT = Stat(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)


@settings(deadline=None)
@given(
    frames=st.lists(st.binary(max_size=40), min_size=1, max_size=8),
    cuts=st.lists(st.integers(0, 400), max_size=10),
)
def test_frame_decoder_reassembles_any_chunking(frames: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(struct.pack(">i", len(f)) + f for f in frames)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    dec = FrameDecoder(DEFAULT_JUTE_MAXBUFFER)
    out: list[bytes] = []
    for a, b in itertools.pairwise(points):
        out.extend(dec.feed(stream[a:b]))
    assert out == frames
    assert dec.buffered == 0


def test_frame_decoder_byte_by_byte_large_frame() -> None:
    body = bytes(range(256)) * 100
    stream = struct.pack(">i", len(body)) + body
    dec = FrameDecoder(DEFAULT_JUTE_MAXBUFFER)
    got = [f for i in range(len(stream)) for f in dec.feed(stream[i : i + 1])]
    assert got == [body]


@pytest.mark.parametrize("length", [-1, -(2**31), DEFAULT_JUTE_MAXBUFFER + 1])
def test_frame_too_large(length: int) -> None:
    dec = FrameDecoder(DEFAULT_JUTE_MAXBUFFER)
    with pytest.raises(FrameTooLarge) as ei:
        dec.feed(struct.pack(">i", length) + b"xx")
    assert ei.value.length == length


def test_frame_at_max_buffer_is_accepted() -> None:
    dec = FrameDecoder(10)
    assert dec.feed(struct.pack(">i", 10) + b"a" * 10) == [b"a" * 10]


def test_four_letter_word_is_a_too_large_length() -> None:
    # the server recognises 4lw by this: "ruok" read as a length is far over jute.maxbuffer
    with pytest.raises(FrameTooLarge) as ei:
        FrameDecoder(DEFAULT_JUTE_MAXBUFFER).feed(b"ruok")
    assert ei.value.length.to_bytes(4, "big") == b"ruok"


def test_unknown_opcode_carries_the_header() -> None:
    with pytest.raises(UnknownOpCode) as ei:
        decode_request(struct.pack(">ii", 77, 999) + b"whatever")
    assert (ei.value.xid, ei.value.op) == (77, 999)
    assert (ei.value.header.xid, ei.value.header.type) == (77, 999)


@pytest.mark.parametrize("op", [OpCode.createSession, 0, 10, 23, 108, -12])
def test_unknown_opcodes(op: int) -> None:
    # ZooKeeper 3.8 answers these Unimplemented (zxid -1) and closes the connection
    with pytest.raises(UnknownOpCode):
        decode_request(struct.pack(">ii", 1, op))


def test_delete_container_from_a_client_is_known_and_its_body_ignored() -> None:
    # ZooKeeper 3.8 answers BadArguments and keeps the connection
    hdr, body = decode_request(struct.pack(">ii", 1, OpCode.deleteContainer) + b"/ctr")
    assert (hdr.type, body) == (OpCode.deleteContainer, None)


@pytest.mark.parametrize("frame", REQUEST_FRAMES, ids=[f"{i}" for i in range(len(REQUEST_FRAMES))])
def test_every_strict_prefix_of_a_request_is_a_decode_error(frame: bytes) -> None:
    for n in range(len(frame)):
        with pytest.raises(DecodeError):
            decode_request(frame[:n])


def test_connect_request_without_read_only_byte() -> None:
    frame = struct.pack(">iqiqi", 0, 5, 30000, 0x1234, 16) + b"p" * 16
    req = decode_connect_request(frame)
    assert (req.last_zxid_seen, req.time_out, req.session_id) == (5, 30000, 0x1234)
    assert not req.read_only and not req.has_read_only
    assert decode_connect_request(frame + b"\x01").read_only
    with pytest.raises(DecodeError):
        decode_connect_request(frame[:-1])


def test_invalid_utf8_path_decodes_with_replacement_like_java() -> None:
    frame = struct.pack(">iii", 1, OpCode.getData, 3) + b"/\xff\xfe" + b"\x00"
    _, body = decode_request(frame)
    assert isinstance(body, GetDataRequest)
    assert body.path == "/\ufffd\ufffd"


def test_non_zero_boolean_reads_true() -> None:
    frame = struct.pack(">iii", 1, OpCode.exists, 2) + b"/a" + b"\x07"
    _, body = decode_request(frame)
    assert body is not None and getattr(body, "watch") is True  # noqa: B009


def test_null_path_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode_request(struct.pack(">iii", 1, OpCode.getData, -1) + b"\x00")


def test_null_data_survives_set_data() -> None:
    frame = encode_request(3, OpCode.setData, SetDataRequest("/a", None, 4))[4:]
    assert decode_request(frame)[1] == SetDataRequest("/a", None, 4)


def test_negative_vector_count_reads_empty_as_jute() -> None:
    b = struct.pack(">i", -5)
    assert decode_record(GetChildrenResponse, b) == GetChildrenResponse(())


def test_huge_vector_count_is_a_decode_error_not_an_allocation() -> None:
    with pytest.raises(DecodeError):
        decode_record(GetChildrenResponse, struct.pack(">i", 2**31 - 1) + b"\0\0\0\0")


def test_multi_request_with_a_read_op_is_a_decode_error() -> None:
    frame = encode_request(
        1, OpCode.multi, MultiRequest(((OpCode.create, CreateRequest("/a", b"", (), 0)),))
    )[4:]
    bad = frame.replace(
        struct.pack(">i?i", OpCode.create, False, -1), struct.pack(">i?i", 4, False, -1)
    )
    with pytest.raises(DecodeError):
        decode_request(bad)


def test_get_data_reply_with_null_data() -> None:
    frame = encode_reply(4, 100, 0, GetDataResponse(None, STAT))
    assert decode_reply(frame[4:], OpCode.getData)[1] == GetDataResponse(None, STAT)


def test_peek_xid() -> None:
    assert peek_xid(encode_reply(-2, 7, 0, None)[4:]) == -2
    with pytest.raises(DecodeError):
        peek_xid(b"\x00")


def test_truncated_txn_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode_txn(b"\x00" * 10)
    with pytest.raises(DecodeError):
        decode_txn(struct.pack(">qiqqi", 1, 1, 1, 1, 999))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64), st.sampled_from([OpCode.multi, OpCode.create, OpCode.setACL, 4]))
def test_garbage_only_ever_raises_codec_errors(tail: bytes, op: int) -> None:
    for frame in (tail, struct.pack(">ii", 9, op) + tail):
        with contextlib.suppress(DecodeError, UnknownOpCode):
            decode_request(frame)
        with contextlib.suppress(DecodeError):
            decode_reply(frame, op)


def test_decoded_records_are_ordinary_frozen_records() -> None:
    frame = encode_request(3, OpCode.getData, GetDataRequest("/a", True))[4:]
    _, body = decode_request(frame)
    assert type(body) is GetDataRequest and body == GetDataRequest("/a", True)
    assert hash(body) == hash(GetDataRequest("/a", True))
    with pytest.raises(dataclasses.FrozenInstanceError):
        body.path = "/b"  # type: ignore[misc]
    rep = encode_reply(4, 100, 0, GetDataResponse(b"x", STAT))[4:]
    _, got = decode_reply(rep, OpCode.getData)
    assert isinstance(got, GetDataResponse) and got.stat == STAT and hash(got.stat) == hash(STAT)
    assert repr(got.stat) == repr(STAT)


FORBIDDEN = {"asyncio", "socket", "time", "random", "os", "io", "pathlib", "threading", "select"}


@pytest.mark.parametrize("module", ["codec", "records", "constants", "__init__"])
def test_wire_core_is_pure(module: str) -> None:
    # zkref.wire.bench is a tool (it reads the clock) and is never imported by the codec
    src = Path(__file__).parent.parent / "impl" / "zkref" / "wire" / f"{module}.py"
    tree = ast.parse(src.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
            pytest.fail(f"{module} opens a file")
    assert not imported & FORBIDDEN, imported & FORBIDDEN
    assert imported <= {
        "__future__",
        "dataclasses",
        "struct",
        "collections",
        "typing",
        "enum",
        "zkref",
    }, imported


def test_frame_too_large_keeps_the_frames_before_it() -> None:
    good = encode_request(1, OpCode.getData, GetDataRequest("/a", False))
    dec = FrameDecoder(DEFAULT_JUTE_MAXBUFFER)
    with pytest.raises(FrameTooLarge) as ei:
        dec.feed(good + good + struct.pack(">i", -7) + b"zz")
    assert ei.value.frames == [good[4:], good[4:]]


GOLDEN_FRAMES = [((GOLDEN / e["file"]).read_bytes(), e) for e in _INDEX]


@settings(max_examples=400, deadline=None)
@given(
    pick=st.integers(0, len(GOLDEN_FRAMES) - 1),
    edits=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 400),
)
def test_mutated_golden_frames_only_raise_codec_errors(
    pick: int, edits: list[tuple[int, int]], cut: int
) -> None:
    frame, entry = GOLDEN_FRAMES[pick]
    b = bytearray(frame)
    for pos, val in edits:
        if b:
            b[pos % len(b)] = val
    mutated = bytes(b[: cut % (len(b) + 1)]) if cut > len(b) // 2 else bytes(b)
    with contextlib.suppress(DecodeError, UnknownOpCode):
        decode_request(mutated)
    with contextlib.suppress(DecodeError):
        decode_reply(mutated, entry.get("op", OpCode.multi))
    with contextlib.suppress(DecodeError):
        decode_connect_request(mutated)


def test_a_multi_with_a_null_op_path_is_told_apart_from_an_undecodable_one() -> None:
    """ZooKeeper's jute reads a null path inside a multi (its prep then fails the multi with an
    empty MultiResponse); bytes that do not form a multi at all are a plain DecodeError."""
    import struct

    import pytest

    from zkref.wire import codec

    def op(t: int, body: bytes) -> bytes:
        return struct.pack(">i?i", t, False, -1) + body

    end = struct.pack(">i?i", -1, True, -1)
    check_null = op(13, struct.pack(">ii", -1, 5)) + end
    with pytest.raises(codec.NullPathInMulti):
        codec.decode_request(struct.pack(">ii", 11, 14) + check_null)
    truncated = op(13, struct.pack(">i", -1))  # no version, no end marker
    with pytest.raises(codec.DecodeError) as e:
        codec.decode_request(struct.pack(">ii", 11, 14) + truncated)
    assert not isinstance(e.value, codec.NullPathInMulti)
    fine = op(13, struct.pack(">i", 1) + b"/" + struct.pack(">i", 5)) + end
    _hdr, body = codec.decode_request(struct.pack(">ii", 11, 14) + fine)
    assert body is not None
