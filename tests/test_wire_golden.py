"""Golden bytes: frames Apache ZooKeeper 3.8 exchanged with kazoo, decoded and re-encoded.

The fixtures come from `tests/support/golden_capture.py` (run once, committed). Each frame must
decode, and re-encoding the decoded value must give the identical bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zkref.wire.codec import (
    decode_connect_request,
    decode_connect_response,
    decode_notification,
    decode_reply,
    decode_request,
    encode_connect_request,
    encode_connect_response,
    encode_notification,
    encode_reply,
    encode_request,
)
from zkref.wire.constants import EventType, KeeperState, OpCode
from zkref.wire.records import (
    CheckResult,
    ConnectRequest,
    ConnectResponse,
    Create2Response,
    DeleteResult,
    ErrorResponse,
    GetDataResponse,
    MultiReadResponse,
    MultiResponse,
    WatcherEvent,
    WhoAmIResponse,
)

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
INDEX: list[dict[str, Any]] = json.loads((GOLDEN / "index.json").read_text())["frames"]


def _frame(name_part: str) -> tuple[dict[str, Any], bytes]:
    (entry,) = (e for e in INDEX if name_part in e["file"])
    return entry, (GOLDEN / entry["file"]).read_bytes()


def _reencode(entry: dict[str, Any], frame: bytes) -> tuple[object, bytes]:
    kind = entry["kind"]
    if kind == "connect_request":
        req = decode_connect_request(frame)
        return req, encode_connect_request(req)[4:]
    if kind == "connect_response":
        resp = decode_connect_response(frame)
        return resp, encode_connect_response(resp)[4:]
    if kind == "request":
        hdr, body = decode_request(frame)
        assert (hdr.xid, hdr.type) == (entry["xid"], entry["op"])
        return body, encode_request(hdr.xid, hdr.type, body)[4:]
    if kind == "reply":
        rhdr, rbody = decode_reply(frame, entry["op"])
        assert (rhdr.xid, rhdr.err) == (entry["xid"], entry["err"])
        return rbody, encode_reply(rhdr.xid, rhdr.zxid, rhdr.err, rbody)[4:]
    assert kind == "notification", kind
    nhdr, event = decode_notification(frame)
    return event, encode_notification(event, nhdr.zxid)[4:]


def test_index_covers_the_protocol() -> None:
    ops = {e["op"] for e in INDEX if e["kind"] == "request"}
    for op in (
        OpCode.create,
        OpCode.create2,
        OpCode.delete,
        OpCode.exists,
        OpCode.getData,
        OpCode.setData,
        OpCode.getACL,
        OpCode.setACL,
        OpCode.getChildren,
        OpCode.getChildren2,
        OpCode.sync,
        OpCode.ping,
        OpCode.multi,
        OpCode.multiRead,
        OpCode.auth,
        OpCode.whoAmI,
        OpCode.addWatch,
        OpCode.checkWatches,
        OpCode.removeWatches,
        OpCode.setWatches,
        OpCode.setWatches2,
        OpCode.createContainer,
        OpCode.createTTL,
        OpCode.getEphemerals,
        OpCode.getAllChildrenNumber,
        OpCode.reconfig,
        OpCode.closeSession,
    ):
        assert op in ops, OpCode(op).name
    kinds = {e["kind"] for e in INDEX}
    assert kinds == {"connect_request", "connect_response", "request", "reply", "notification"}


@pytest.mark.parametrize("entry", INDEX, ids=[e["file"] for e in INDEX])
def test_golden_frame_reencodes_identically(entry: dict[str, Any]) -> None:
    frame = (GOLDEN / entry["file"]).read_bytes()
    _, again = _reencode(entry, frame)
    assert again.hex() == frame.hex()


def test_kazoo_handshake_carries_read_only_byte() -> None:
    entry, frame = _frame("000_connect_connect_request")
    req, _ = _reencode(entry, frame)
    assert isinstance(req, ConnectRequest)
    assert req.has_read_only and not req.read_only
    assert req.session_id == 0 and req.passwd == b"\0" * 16 and req.time_out == 10000
    entry, frame = _frame("001_connect_connect_response")
    resp, _ = _reencode(entry, frame)
    assert isinstance(resp, ConnectResponse)
    assert resp.has_read_only and resp.time_out == 10000 and len(resp.passwd) == 16


def test_old_client_gets_no_read_only_byte_back() -> None:
    # ZooKeeper 3.8 omits readOnly from its ConnectResponse when the client omitted it
    _, frame = _frame("old_client_connect_connect_request")
    assert len(frame) == 44
    assert not decode_connect_request(frame).has_read_only
    _entry, frame = _frame("old_client_connect_connect_response")
    assert len(frame) == 36
    resp = decode_connect_response(frame)
    assert not resp.has_read_only and resp.session_id != 0


def test_data_changed_notification_has_zxid_minus_one_in_3_8() -> None:
    _, frame = _frame("set_data_notify_notification")
    hdr, event = decode_notification(frame)
    assert (hdr.xid, hdr.zxid, hdr.err) == (-1, -1, 0)
    assert event == WatcherEvent(EventType.NodeDataChanged, KeeperState.SyncConnected, "/golden")


def test_failed_multi_reply() -> None:
    # header err stays 0; ops before the failure report 0, the failing op its code, later -2
    _entry, frame = _frame("multi_fail_reply")
    hdr, body = decode_reply(frame, OpCode.multi)
    assert hdr.err == 0
    assert body == MultiResponse(
        ((-1, ErrorResponse(0)), (-1, ErrorResponse(-103)), (-1, ErrorResponse(-2)))
    )


def test_successful_multi_reply() -> None:
    _, frame = _frame("multi_ok_reply")
    _, body = decode_reply(frame, OpCode.multi)
    assert isinstance(body, MultiResponse)
    assert [op for op, _ in body.results] == [1, 13, 5, 2]
    assert isinstance(body.results[1][1], CheckResult)
    assert isinstance(body.results[3][1], DeleteResult)


def test_multi_read_reply_mixes_results_and_errors() -> None:
    _, frame = _frame("multi_read_reply")
    _, body = decode_reply(frame, OpCode.multiRead)
    assert isinstance(body, MultiReadResponse)
    (op1, r1), (op2, _), (op3, r3) = body.results
    assert (op1, op2, op3) == (OpCode.getData, OpCode.getChildren, OpCode.error)
    assert isinstance(r1, GetDataResponse) and r1.data == b"v1"
    assert r3 == ErrorResponse(-101)


def test_add_watch_reply_carries_error_response_zero() -> None:
    _, frame = _frame("add_watch_persistent_reply")
    assert len(frame) == 20
    _, body = decode_reply(frame, OpCode.addWatch)
    assert body == ErrorResponse(0)


def test_ttl_and_container_stats_hide_the_owner_marker() -> None:
    for part, op in (
        ("create_ttl_reply", OpCode.createTTL),
        ("create_container_reply", OpCode.createContainer),
    ):
        _, frame = _frame(part)
        _, body = decode_reply(frame, op)
        assert isinstance(body, Create2Response)
        assert body.stat.ephemeral_owner == 0
    # and so do reads of a TTL node
    _, frame = _frame("get_data_nowatch_reply")
    _, got = decode_reply(frame, OpCode.getData)
    assert isinstance(got, GetDataResponse) and got.data == b"t"
    assert got.stat.ephemeral_owner == 0


def test_who_am_i_reply() -> None:
    _, frame = _frame("who_am_i_reply")
    _, body = decode_reply(frame, OpCode.whoAmI)
    assert isinstance(body, WhoAmIResponse)
    assert [(c.auth_scheme, c.user) for c in body.client_info] == [("ip", "127.0.0.1")]


def test_error_replies_are_header_only() -> None:
    for e in INDEX:
        if e["kind"] == "reply" and e["err"] != 0:
            assert (GOLDEN / e["file"]).stat().st_size == 16, e["file"]
