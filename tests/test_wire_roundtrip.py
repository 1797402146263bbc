"""Round-trip property tests: every jute record, request, reply and txn of `zkref.wire`.

Strategies are derived from each record's field types, with the jute width of every integer
field taken from `zookeeper.jute` (listed here, not read from the codec, so a wrong width in the
codec fails these tests).
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkref.wire import records as R
from zkref.wire.codec import (
    REQUEST_TYPES,
    RESPONSE_TYPES,
    TXN_TYPES,
    decode_connect_request,
    decode_connect_response,
    decode_notification,
    decode_record,
    decode_reply,
    decode_request,
    decode_txn,
    decode_txn_digest,
    encode_connect_request,
    encode_connect_response,
    encode_notification,
    encode_record,
    encode_reply,
    encode_request,
    encode_txn,
)
from zkref.wire.constants import OpCode

# jute `long` fields (everything else typed int is a jute `int`)
LONG_FIELDS = frozenset(
    {
        "czxid",
        "mzxid",
        "ctime",
        "mtime",
        "ephemeral_owner",
        "pzxid",
        "last_zxid_seen",
        "session_id",
        "zxid",
        "ttl",
        "cur_config_id",
        "relative_zxid",
        "client_id",
        "time",
        "tree_digest",
        "dbid",
    }
)

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
BINARY = st.binary(max_size=24)

RECORD_CLASSES = sorted(
    (
        c
        for _, c in inspect.getmembers(R, inspect.isclass)
        if dataclasses.is_dataclass(c) and c.__module__ == R.__name__
    ),
    key=lambda c: c.__name__,
)

_cache: dict[type, st.SearchStrategy[Any]] = {}


def _for_type(tp: Any, name: str) -> st.SearchStrategy[Any]:
    if tp is int:
        return INT64 if name in LONG_FIELDS else INT32
    if tp is bool:
        return st.booleans()
    if tp is str:
        return TEXT
    if tp is bytes:
        return BINARY
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (types.UnionType, typing.Union) and type(None) in args:
        (inner,) = (a for a in args if a is not type(None))
        return st.none() | _for_type(inner, name)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(_for_type(args[0], name), max_size=4).map(tuple)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return record_strategy(tp)
    raise NotImplementedError(f"no strategy for {tp!r} ({name})")


# (op, record) pairs of multi requests/results and multi txns, as ZooKeeper pairs them
MULTI_OPS = st.one_of(
    st.tuples(st.sampled_from([1, 15, 19]), st.deferred(lambda: record_strategy(R.CreateRequest))),
    st.tuples(st.just(21), st.deferred(lambda: record_strategy(R.CreateTTLRequest))),
    st.tuples(st.just(2), st.deferred(lambda: record_strategy(R.DeleteRequest))),
    st.tuples(st.just(5), st.deferred(lambda: record_strategy(R.SetDataRequest))),
    st.tuples(st.just(13), st.deferred(lambda: record_strategy(R.CheckVersionRequest))),
)
MULTI_READ_OPS = st.one_of(
    st.tuples(st.just(4), st.builds(R.GetDataRequest, TEXT, st.just(False))),
    st.tuples(st.just(8), st.builds(R.GetChildrenRequest, TEXT, st.just(False))),
)
ERROR_RESULT = st.tuples(st.just(-1), st.builds(R.ErrorResponse, INT32))
MULTI_RESULTS = st.one_of(
    st.tuples(st.just(1), st.deferred(lambda: record_strategy(R.CreateResponse))),
    st.tuples(
        st.sampled_from([15, 19, 21]), st.deferred(lambda: record_strategy(R.Create2Response))
    ),
    st.tuples(st.just(2), st.just(R.DeleteResult())),
    st.tuples(st.just(13), st.just(R.CheckResult())),
    st.tuples(st.just(5), st.deferred(lambda: record_strategy(R.SetDataResponse))),
    ERROR_RESULT,
)
MULTI_READ_RESULTS = st.one_of(
    st.tuples(st.just(4), st.deferred(lambda: record_strategy(R.GetDataResponse))),
    st.tuples(st.just(8), st.deferred(lambda: record_strategy(R.GetChildrenResponse))),
    ERROR_RESULT,
)
MULTI_SUBTXNS = st.one_of(
    st.tuples(st.sampled_from([1, 15]), st.deferred(lambda: record_strategy(R.CreateTxn))),
    st.tuples(st.just(19), st.deferred(lambda: record_strategy(R.CreateContainerTxn))),
    st.tuples(st.just(21), st.deferred(lambda: record_strategy(R.CreateTTLTxn))),
    st.tuples(st.sampled_from([2, 20]), st.deferred(lambda: record_strategy(R.DeleteTxn))),
    st.tuples(st.just(5), st.deferred(lambda: record_strategy(R.SetDataTxn))),
    st.tuples(st.just(13), st.deferred(lambda: record_strategy(R.CheckVersionTxn))),
    st.tuples(st.just(-1), st.deferred(lambda: record_strategy(R.ErrorTxn))),
)


def _tuples(s: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(s, max_size=4).map(tuple)


SPECIAL: dict[type, st.SearchStrategy[Any]] = {
    R.MultiRequest: st.builds(R.MultiRequest, _tuples(MULTI_OPS)),
    R.MultiReadRequest: st.builds(R.MultiReadRequest, _tuples(MULTI_READ_OPS)),
    R.MultiResponse: st.builds(R.MultiResponse, _tuples(MULTI_RESULTS)),
    R.MultiReadResponse: st.builds(R.MultiReadResponse, _tuples(MULTI_READ_RESULTS)),
    R.MultiTxn: st.builds(R.MultiTxn, _tuples(MULTI_SUBTXNS)),
    # without the trailing byte there is no readOnly to carry
    R.ConnectRequest: st.builds(
        lambda pv, z, t, s, p, ro, has: R.ConnectRequest(pv, z, t, s, p, ro and has, has),
        INT32,
        INT64,
        INT32,
        INT64,
        st.binary(max_size=16),
        st.booleans(),
        st.booleans(),
    ),
    R.ConnectResponse: st.builds(
        lambda pv, t, s, p, ro, has: R.ConnectResponse(pv, t, s, p, ro and has, has),
        INT32,
        INT32,
        INT64,
        st.binary(max_size=16),
        st.booleans(),
        st.booleans(),
    ),
}


def record_strategy(cls: type) -> st.SearchStrategy[Any]:
    if cls in SPECIAL:
        return SPECIAL[cls]
    if cls not in _cache:
        hints = typing.get_type_hints(cls)
        fields = {f.name: _for_type(hints[f.name], f.name) for f in dataclasses.fields(cls)}
        _cache[cls] = st.builds(cls, **fields)
    return _cache[cls]


def test_every_record_class_is_covered() -> None:
    assert len(RECORD_CLASSES) >= 60
    for cls in RECORD_CLASSES:
        assert record_strategy(cls) is not None


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_record_roundtrip(cls: type, data: st.DataObject) -> None:
    rec = data.draw(record_strategy(cls))
    b = encode_record(rec)
    back: object = decode_record(cls, b)
    assert back == rec
    assert encode_record(back) == b
    # jute reads only what the record needs: trailing bytes are ignored (except in the
    # handshake, whose optional last byte is readOnly)
    if cls not in (R.ConnectRequest, R.ConnectResponse):
        assert decode_record(cls, b + b"\x07junk") == rec


# ZooKeeper's pairing of opcodes with request/response records (FinalRequestProcessor,
# PrepRequestProcessor, ClientCnxn), written out independently of the codec's tables.
EXPECTED_REQUESTS: dict[int, type | None] = {
    1: R.CreateRequest,
    2: R.DeleteRequest,
    3: R.ExistsRequest,
    4: R.GetDataRequest,
    5: R.SetDataRequest,
    6: R.GetACLRequest,
    7: R.SetACLRequest,
    8: R.GetChildrenRequest,
    9: R.SyncRequest,
    11: None,
    12: R.GetChildren2Request,
    13: R.CheckVersionRequest,
    14: R.MultiRequest,
    15: R.CreateRequest,
    16: R.ReconfigRequest,
    17: R.CheckWatchesRequest,
    18: R.RemoveWatchesRequest,
    19: R.CreateRequest,
    20: None,
    21: R.CreateTTLRequest,
    22: R.MultiReadRequest,
    100: R.AuthPacket,
    101: R.SetWatches,
    102: R.GetSASLRequest,
    103: R.GetEphemeralsRequest,
    104: R.GetAllChildrenNumberRequest,
    105: R.SetWatches2,
    106: R.AddWatchRequest,
    107: None,
    -11: None,
}
EXPECTED_RESPONSES: dict[int, type | None] = {
    1: R.CreateResponse,
    2: None,
    3: R.ExistsResponse,
    4: R.GetDataResponse,
    5: R.SetDataResponse,
    6: R.GetACLResponse,
    7: R.SetACLResponse,
    8: R.GetChildrenResponse,
    9: R.SyncResponse,
    11: None,
    12: R.GetChildren2Response,
    13: None,
    14: R.MultiResponse,
    15: R.Create2Response,
    16: R.GetDataResponse,
    17: None,
    18: None,
    19: R.Create2Response,
    20: None,
    21: R.Create2Response,
    22: R.MultiReadResponse,
    100: None,
    101: None,
    102: R.SetSASLResponse,
    103: R.GetEphemeralsResponse,
    104: R.GetAllChildrenNumberResponse,
    105: None,
    106: R.ErrorResponse,
    107: R.WhoAmIResponse,
    -11: None,
}
EXPECTED_TXNS: dict[int, type] = {
    1: R.CreateTxn,
    15: R.CreateTxn,
    19: R.CreateContainerTxn,
    21: R.CreateTTLTxn,
    2: R.DeleteTxn,
    20: R.DeleteTxn,
    5: R.SetDataTxn,
    16: R.SetDataTxn,
    7: R.SetACLTxn,
    13: R.CheckVersionTxn,
    -10: R.CreateSessionTxn,
    -11: R.CloseSessionTxn,
    -1: R.ErrorTxn,
    14: R.MultiTxn,
}


def test_opcode_tables_match_zookeeper() -> None:
    assert dict(REQUEST_TYPES) == EXPECTED_REQUESTS
    assert dict(RESPONSE_TYPES) == EXPECTED_RESPONSES
    assert dict(TXN_TYPES) == EXPECTED_TXNS
    for op in EXPECTED_REQUESTS:
        OpCode(op)  # every opcode is a named constant


def _frame_body(frame: bytes) -> bytes:
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    return frame[4:]


REQUEST_OPS = sorted(EXPECTED_REQUESTS)


@pytest.mark.parametrize("op", REQUEST_OPS)
@settings(max_examples=40, deadline=None)
@given(data=st.data(), xid=INT32)
def test_request_roundtrip(op: int, data: st.DataObject, xid: int) -> None:
    cls = EXPECTED_REQUESTS[op]
    body = None if cls is None else data.draw(record_strategy(cls))
    frame = encode_request(xid, op, body)
    hdr, back = decode_request(_frame_body(frame))
    assert (hdr.xid, hdr.type) == (xid, op)
    assert back == body
    assert encode_request(xid, op, back) == frame


REPLY_OPS = sorted(EXPECTED_RESPONSES)


@pytest.mark.parametrize("op", REPLY_OPS)
@settings(max_examples=40, deadline=None)
@given(data=st.data(), xid=INT32, zxid=INT64)
def test_reply_roundtrip(op: int, data: st.DataObject, xid: int, zxid: int) -> None:
    cls = EXPECTED_RESPONSES[op]
    body = None if cls is None else data.draw(record_strategy(cls))
    frame = encode_reply(xid, zxid, 0, body)
    hdr, back = decode_reply(_frame_body(frame), op)
    assert (hdr.xid, hdr.zxid, hdr.err) == (xid, zxid, 0)
    assert back == body
    assert encode_reply(xid, zxid, 0, back) == frame


@pytest.mark.parametrize("op", REPLY_OPS)
@given(xid=INT32, zxid=INT64, err=st.integers(-127, -1))
def test_error_reply_has_no_body(op: int, xid: int, zxid: int, err: int) -> None:
    frame = encode_reply(xid, zxid, err, None)
    assert len(frame) == 4 + 16
    hdr, back = decode_reply(_frame_body(frame), op)
    assert (hdr.xid, hdr.zxid, hdr.err) == (xid, zxid, err)
    assert back is None


@settings(deadline=None)
@given(
    results=_tuples(
        st.tuples(st.just(-1), st.builds(R.ErrorResponse, st.sampled_from([0, -2, -101, -110])))
    ),
    err=st.sampled_from([0, -101]),
)
def test_failed_multi_reply_keeps_its_body(results: tuple[Any, ...], err: int) -> None:
    body = R.MultiResponse(results)
    frame = encode_reply(5, 9, err, body)
    _, back = decode_reply(_frame_body(frame), OpCode.multi)
    assert back == body


@settings(deadline=None)
@given(event=record_strategy(R.WatcherEvent), zxid=INT64)
def test_notification_roundtrip(event: R.WatcherEvent, zxid: int) -> None:
    frame = encode_notification(event, zxid)
    hdr, back = decode_notification(_frame_body(frame))
    assert (hdr.xid, hdr.zxid, hdr.err) == (-1, zxid, 0)
    assert back == event
    assert encode_notification(back, zxid) == frame


@settings(deadline=None)
@given(req=record_strategy(R.ConnectRequest))
def test_connect_request_roundtrip(req: R.ConnectRequest) -> None:
    frame = encode_connect_request(req)
    back = decode_connect_request(_frame_body(frame))
    assert back == req
    assert back.has_read_only == req.has_read_only
    assert encode_connect_request(back) == frame


@settings(deadline=None)
@given(resp=record_strategy(R.ConnectResponse))
def test_connect_response_roundtrip(resp: R.ConnectResponse) -> None:
    frame = encode_connect_response(resp)
    back = decode_connect_response(_frame_body(frame))
    assert back == resp
    assert back.has_read_only == resp.has_read_only
    assert encode_connect_response(back) == frame


TXN_OPS = sorted(EXPECTED_TXNS)


@pytest.mark.parametrize("op", TXN_OPS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_txn_roundtrip(op: int, data: st.DataObject) -> None:
    hdr = data.draw(record_strategy(R.TxnHeader).map(lambda h: dataclasses.replace(h, type=op)))
    body = data.draw(record_strategy(EXPECTED_TXNS[op]))
    b = encode_txn(hdr, body)
    assert decode_txn(b) == (hdr, body)
    digest = data.draw(record_strategy(R.TxnDigest))
    assert decode_txn_digest(b + encode_record(digest)) == (hdr, body, digest)
    assert decode_txn_digest(b) == (hdr, body, None)
