"""Trace validation of a real networked ensemble (issue 5, part 3), and planted divergences.

Three member processes on free 127.0.0.1 ports record their Zab cores' spec actions
(`ZKREF_TRACE_DIR`, `zkref.server.tracing`) with a Lamport clock carried on every quorum packet
and election notification. The scenario: an election, writes through the leader, kill -9 of
the leader, a new election, more writes (through the new leader and through a follower, which
forwards them), the old leader restarted (it rejoins as a follower), a write through it, stop.
`zkref trace merge` orders the member files into one Zab trace and TLC must find a behaviour of
spec/Zab.tla that explains it (ACCEPTED); the same trace with one zxid changed, or one record
dropped, must be REJECTED at that step, naming the variable (or the action that is not
enabled).

Cost (2 busy cores): the ensemble run ~15 s, three TLC runs plus two diagnosis runs of ~5 s
each (about 170 steps, about 180 distinct states): ~45 s in all, once per module.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NodeExistsError

from zkref.conform.trace import Trace, TraceFormatError, parse_lines
from zkref.conform.tracecheck import Status, Verdict, check_trace
from zkref.conform.tracecli import main as trace_main
from zkref.conform.tracemap import ZAB, Fn, MappingError
from zkref.conform.tracemerge import merge
from zkref.core.election.fle import Notification
from zkref.core.election.fle import ServerState as FleState
from zkref.core.election.fle import Sid as FleSid
from zkref.core.zab.messages import Commit, Proposal, Txn
from zkref.server.ensemble import LocalEnsemble
from zkref.server.quorum_codec import (
    decode_notification,
    decode_packet,
    encode_notification,
    encode_packet,
    notification_lamport,
    packet_lamport,
    with_lamport,
)
from zkref.server.tracing import MemberTracer
from zkref.wire.records import SetDataTxn, TxnHeader

TLC_TIMEOUT_S = 240.0

# ---------------------------------------------------------------------- the wire trailer (fast)


def _proposal(data: bytes) -> Proposal:
    hdr = TxnHeader(client_id=1, cxid=1, zxid=(1 << 32) | 1, time=0, type=5)
    return Proposal(Txn(hdr.zxid, hdr, SetDataTxn("/a", data, 0)))


def test_untraced_bytes_are_unchanged_and_the_trailer_round_trips() -> None:
    off = MemberTracer.off()
    m = _proposal(b"v")
    n = Notification(FleSid(2), 7, 1, FleState.LOOKING, FleSid(1), 1)
    # tracing off: exactly the codec's (Apache-layout) bytes, no trailer found
    assert off.packet(m) == encode_packet(m)
    assert off.notification(n) == encode_notification(n)
    assert packet_lamport(encode_packet(m)) is None
    assert notification_lamport(encode_notification(n)) is None
    # tracing on: the records decode as before and the clock is found after them
    p = with_lamport(encode_packet(m), 41)
    assert decode_packet(p) == m and packet_lamport(p) == 41
    c = with_lamport(encode_packet(Commit(5)), 3)
    assert decode_packet(c) == Commit(5) and packet_lamport(c) == 3
    b = with_lamport(encode_notification(n), 9)
    assert decode_notification(b, 1) == n and notification_lamport(b) == 9


def test_user_data_that_looks_like_a_trailer_is_not_one() -> None:
    """The trailer is found by the record's own length, never by searching for its tag."""
    tricky = b"x" + b"zkLC" + struct.pack(">q", 77)
    body = encode_packet(_proposal(tricky))
    assert packet_lamport(body) is None
    assert packet_lamport(with_lamport(body, 5)) == 5


# ---------------------------------------------------------------------- merger (fast)


def _member_file(d: Path, sid: int, lines: list[dict[str, Any]]) -> None:
    head = {"kind": "member", "schema": 1, "spec": "Zab", "sid": sid, "servers": [1, 2, 3]}
    out = [head] + [{"node": sid, **x} for x in lines]
    (d / f"member-{sid}.ndjson").write_text("".join(json.dumps(o) + "\n" for o in out))


def test_merge_places_the_crash_after_the_followers_last_steps(tmp_path: Path) -> None:
    """Leader 3 is killed; its last record has a larger Lamport clock than the followers'
    LOOKING: the crash still goes before their new election and after their old steps."""
    start = {"event": "start", "post": {"state": "LOOKING"}}
    _member_file(
        tmp_path,
        3,
        [
            {"lamport": 1, **start},
            {"lamport": 4, "event": "LEADING", "post": {"state": "LEADING"}},
            {"lamport": 90, "action": "LeaderProcessRequest", "params": {"i": 3}},
        ],
    )
    for sid in (1, 2):
        _member_file(
            tmp_path,
            sid,
            [
                {"lamport": 1, **start},
                {"lamport": 3, "event": "FOLLOWING", "leader": 3, "post": {}},
                {"lamport": 20, "action": "FollowerProcessCOMMIT", "params": {"j": 3}},
                {"lamport": 30, "event": "LOOKING"},
                {"lamport": 40 + sid, "action": "NodeFsyncLog", "params": {}},
                *(
                    [{"lamport": 50, "event": "LEADING", "post": {}}]
                    if sid == 2
                    else [{"lamport": 45, "event": "FOLLOWING", "leader": 2, "post": {}}]
                ),
                {"lamport": 200, "event": "stop"},
            ],
        )
    steps = [(r.action, r.node, r.params) for r in parse_lines(merge(tmp_path)).records]
    assert steps == [
        ("Init", 1, None),
        ("Init", 2, None),
        ("Init", 3, None),
        ("ElectLeader", 3, [1, 2, 3]),
        ("FollowerProcessCOMMIT", 1, {"j": 3}),
        ("FollowerProcessCOMMIT", 2, {"j": 3}),
        ("LeaderProcessRequest", 3, {"i": 3}),
        ("NodeCrash", 3, []),
        ("NodeFsyncLog", 1, {}),
        ("NodeFsyncLog", 2, {}),
        ("ElectLeader", 2, [1, 2]),
    ]


def test_merge_maps_a_broken_link_and_a_restart(tmp_path: Path) -> None:
    """Follower 1 loses its link to leader 2 and follows again (PartitionStart/Recover, then
    FollowLeader); member 3 is killed and restarts (NodeCrash, NodeStart)."""
    start = {"event": "start", "post": {}}
    _member_file(
        tmp_path,
        1,
        [
            {"lamport": 1, **start},
            {"lamport": 3, "event": "FOLLOWING", "leader": 2, "post": {}},
            {"lamport": 10, "event": "LOOKING"},
            {"lamport": 11, "event": "FOLLOWING", "leader": 2, "post": {}},
            {"lamport": 100, "event": "stop"},
        ],
    )
    _member_file(
        tmp_path,
        2,
        [
            {"lamport": 1, **start},
            {"lamport": 4, "event": "LEADING", "post": {}},
            {"lamport": 5, "action": "LeaderProcessFOLLOWERINFO", "params": {"j": 1}},
            {"lamport": 100, "event": "stop"},
        ],
    )
    _member_file(
        tmp_path,
        3,
        [
            {"lamport": 1, **start},
            {"lamport": 6, "event": "LOOKING"},
            {"lamport": 7, **start},
            {"lamport": 100, "event": "stop"},
        ],
    )
    steps = [(r.action, r.node, r.params) for r in parse_lines(merge(tmp_path)).records]
    assert steps == [
        ("Init", 1, None),
        ("Init", 2, None),
        ("Init", 3, None),
        ("ElectLeader", 2, [1, 2]),
        ("LeaderProcessFOLLOWERINFO", 2, {"j": 1}),
        ("NodeCrash", 3, []),
        ("NodeStart", 3, []),
        ("PartitionStart", 1, [2]),
        ("PartitionRecover", 1, [2]),
        ("FollowLeader", 1, [2]),
    ]


def test_merge_adds_the_fsync_a_restart_proves(tmp_path: Path) -> None:
    """Killed after its txn reached the disk but before its NodeFsyncLog record: the restart
    finds the txn on disk, so the merge adds the NodeFsyncLog step before the crash (without
    it the spec's NodeCrash would drop the txn and the NodeStart would not match)."""
    empty = {"history": [], "disk": 0}
    one = [[1, 1]]
    _member_file(
        tmp_path,
        3,
        [
            {"lamport": 1, "event": "start", "post": empty},
            {"lamport": 4, "event": "LEADING", "post": empty},
            {"lamport": 5, "action": "LeaderProcessRequest", "post": {"history": one, "disk": 0}},
            {"lamport": 6, "event": "start", "post": {"history": one, "disk": 1}},
            {"lamport": 7, "event": "stop"},
        ],
    )
    for sid in (1, 2):
        _member_file(tmp_path, sid, [{"lamport": 1, "event": "start", "post": empty}])
    steps = [r.action for r in parse_lines(merge(tmp_path)).records if r.node == 3]
    assert steps[-4:] == ["LeaderProcessRequest", "NodeFsyncLog", "NodeCrash", "NodeStart"]


def test_merge_refuses_observers(tmp_path: Path) -> None:
    """Zab.tla has no observers: a run with one is refused by name, not mis-mapped."""
    (tmp_path / "member-4.ndjson").write_text(
        json.dumps({"kind": "member", "schema": 1, "spec": "Zab", "sid": 4, "servers": [1, 2, 3]})[
            :-1
        ]
        + ', "observer": true}\n'
    )
    with pytest.raises(TraceFormatError, match="member 4 is an observer"):
        merge(tmp_path)


# ---------------------------------------------------------------------- the real run (slow)


def _explain(ens: LocalEnsemble) -> str:
    return "\n".join(f"--- member {m.sid}\n{ens.log_tail(m.sid, 25)}" for m in ens.members)


def _write(ens: LocalEnsemble, sid: int, paths: list[str], deadline_s: float = 60) -> None:
    """Create `paths` through member `sid` (a follower forwards them to the leader)."""
    zk = KazooClient(
        hosts=f"127.0.0.1:{ens.by_sid[sid].client_port}",
        timeout=10.0,
        connection_retry={"max_tries": -1},
    )
    zk.start(timeout=30)
    end = time.monotonic() + deadline_s
    try:
        for p in paths:
            while True:
                if time.monotonic() > end:
                    raise AssertionError(f"writes at {sid} not acknowledged in {deadline_s}s")
                try:
                    zk.create(p, p.encode())
                    break
                except NodeExistsError:
                    break  # an earlier attempt went through
                except KazooException:
                    continue
    finally:
        zk.stop()
        zk.close()


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int, int]]:
    """The traced run: (trace dir, first leader, second leader)."""
    base = tmp_path_factory.mktemp("trace-real")
    ens = LocalEnsemble(3, base / "data", tick_time_ms=200, trace_dir=base / "traces")
    try:
        ens.start()
        try:
            first = ens.wait_serving(deadline_s=30)
            _write(ens, first, ["/a1", "/a2", "/a3"])
            ens.kill(first)
            rest = [s for s in ens.by_sid if s != first]
            second = ens.wait_serving(rest, deadline_s=30)
            _write(ens, second, ["/b1", "/b2"])
            _write(ens, next(s for s in rest if s != second), ["/b3"])  # through a follower
            ens.start(first)  # it rejoins (NodeStart) and follows the new leader
            ens.wait_serving(deadline_s=30)
            _write(ens, first, ["/c1"])  # through the rejoined member
        except (TimeoutError, AssertionError) as e:
            raise AssertionError(f"{e}\n{_explain(ens)}") from e
    finally:
        ens.stop()
    yield base / "traces", first, second


@pytest.fixture(scope="module")
def merged(real_run: tuple[Path, int, int]) -> Trace:
    return parse_lines(merge(real_run[0]))


@pytest.mark.slow
def test_real_ensemble_trace_is_accepted(
    real_run: tuple[Path, int, int], merged: Trace, capsys: pytest.CaptureFixture[str]
) -> None:
    _, first, second = real_run
    steps = [(r.action, r.node) for r in merged.records]
    assert second != first
    # both elections, the crash between them, both leaders' proposals
    elected = [k for k, (a, _) in enumerate(steps) if a == "ElectLeader"]
    assert steps[elected[0]][1] == first and steps[elected[-1]][1] == second, steps
    crash = steps.index(("NodeCrash", first))
    assert elected[0] < crash < elected[-1], steps
    assert crash < steps.index(("NodeStart", first)) < steps.index(("FollowLeader", first))
    requests = [n for a, n in steps if a == "LeaderProcessRequest"]
    # three creates plus createSession/closeSession per client, in each epoch
    assert requests.count(first) >= 3 and requests.count(second) >= 3, requests
    v = check_trace(merged, timeout_s=TLC_TIMEOUT_S, diagnose=False)
    print(f"\n{v.report()}")
    assert v.status is Status.ACCEPTED, v.report()
    assert v.steps == len([r for r in merged.records if r.action not in ("Init", "ignored")])
    # the CLI on the directory: merge + validate in one go
    assert trace_main(["validate", "--no-diagnose", str(real_run[0])]) == 0
    assert "ACCEPTED" in capsys.readouterr().out


def _appended(history: Any) -> list[int]:
    """The last zxid of a record's history, given whole or as `{"keep": p, "tail": [...]}`."""
    entries = history["tail"] if isinstance(history, dict) else history
    assert isinstance(entries, list) and entries, history
    return list(entries[-1])


def _mutate(trace: Trace, pick: int, change: str) -> tuple[Trace, int, int]:
    """The trace with the `pick`-th FollowerProcessPROPOSAL of the second epoch changed
    ("zxid": the appended zxid's counter + 5) or dropped ("drop"); (trace, the step it had,
    its follower)."""
    lines = [json.dumps(trace.header.to_json())]
    steps = [r for r in trace.records if r.action not in ("Init", "ignored")]
    target = [
        r
        for r in steps
        if r.action == "FollowerProcessPROPOSAL" and _appended(r.post["history"])[0] == 2
    ][pick]
    for r in trace.records:
        obj = r.to_json()
        if r is target:
            if change == "drop":
                continue
            h = obj["post"]["history"]
            (h["tail"] if isinstance(h, dict) else h)[-1][1] += 5
        lines.append(json.dumps(obj))
    assert target.node is not None
    return parse_lines(lines), steps.index(target) + 1, target.node


def _rejected(v: Verdict) -> str:
    assert v.status is Status.REJECTED, v.report()
    return v.report()


@pytest.mark.slow
def test_changed_zxid_is_rejected_at_that_step_naming_history(merged: Trace) -> None:
    bad, step, _node = _mutate(merged, 1, "zxid")
    v = check_trace(bad, timeout_s=TLC_TIMEOUT_S)
    print(f"\n{_rejected(v)}")
    assert v.step == step
    assert v.record is not None and v.record.action == "FollowerProcessPROPOSAL"
    assert v.variables == ("history",), v.report()


@pytest.mark.slow
def test_dropped_record_is_rejected_at_the_next_step_of_that_follower(merged: Trace) -> None:
    """Dropping a follower's PROPOSAL record: its NodeFsyncLog (or later step) has nothing to
    do, or its history does not match: rejected at the first of its steps that follows."""
    bad, step, node = _mutate(merged, 1, "drop")
    v = check_trace(bad, timeout_s=TLC_TIMEOUT_S)
    print(f"\n{_rejected(v)}")
    assert v.step is not None and v.step >= step
    assert v.record is not None and v.record.node == node, v.report()
    assert not v.action_enabled or v.variables, v.report()


def test_history_given_as_kept_prefix_and_tail_compiles_to_the_same_constraints() -> None:
    """`{"keep": p, "tail": [...]}` (what the merge writes): the length, the first p entries
    equal to the state before the step, then the tail; only meaningful for a step."""
    fn = ZAB.variables["history"]  # Fn(Sid, Seq(Txn)): a record gives one node's slice
    assert isinstance(fn, Fn)
    seq = fn.value
    ids = ZAB.ids((1, 2, 3), ())
    got = seq.constrain("history'[s1]", {"keep": 2, "tail": [[2, 1]]}, ids)
    assert got[:3] == [
        "Len(history'[s1]) = 3",
        "Len(history[s1]) >= 2",
        "SubSeq(history'[s1], 1, 2) = SubSeq(history[s1], 1, 2)",
    ]
    assert any("history'[s1][3]" in c for c in got[3:]), got
    with pytest.raises(MappingError):
        seq.constrain("history[s1]", {"keep": 2, "tail": []}, ids)  # an Init record
