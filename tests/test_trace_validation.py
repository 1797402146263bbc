"""Trace validation (zkref.conform.tracecheck) on FastLeaderElection, plus the pieces without TLC.

The traces come from the spec itself: TLC simulates a small FLE model once, the behaviour
becomes NDJSON records (action from `lastAction`, `post` a chosen subset of the variables),
and the checker must accept it. Planted divergences must be rejected at the right step with
the right variable or action named: a changed value, a renamed action, two swapped steps and a
dropped step. TLC runs two at a time in a module fixture (one worker each).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from zkref.conform.tlavalue import ModelValue, TlaFn, TlaParseError, TlaSet, parse_value
from zkref.conform.tlc import JAVA, repo_root
from zkref.conform.trace import (
    Record,
    Trace,
    TraceFormatError,
    dump_lines,
    parse_lines,
    read_trace,
)
from zkref.conform.tracecheck import (
    Status,
    Verdict,
    behaviour_trace,
    check_trace,
    compile_record,
    module_text,
    plan,
    simulate,
)
from zkref.conform.tracecli import DEFAULT_MODELS
from zkref.conform.tracemap import FLE, SPEC_MAPS, ZAB, Fn, Int, MappingError, Seq, Sid, Txn
from zkref.sim.election_cluster import ElectionCluster

ROOT = repo_root()
needs_java = pytest.mark.skipif(not Path(JAVA).exists(), reason="needs Java for TLC")

# --------------------------------------------------------------------------- no TLC


def test_tla_values_as_tlc_prints_them() -> None:
    v = parse_value('( s1 :> <<[mtype |-> "ACK", zxid |-> <<1, 2>>]>> @@ s2 :> {} )')
    assert v == TlaFn(
        (
            (ModelValue("s1"), ({"mtype": "ACK", "zxid": (1, 2)},)),
            (ModelValue("s2"), TlaSet(())),
        )
    )
    assert parse_value('<<TRUE, -1, "a \\"b\\"">>') == (True, -1, 'a "b"')
    with pytest.raises(TlaParseError):
        parse_value("<<1, 2")


def test_mapping_is_elementwise_and_leaves_the_rest_free() -> None:
    ids = ZAB.ids([1, 2, 3])
    hist = Fn(Sid, Seq(Txn))
    # history given as zxids: compared by zxid; disk given as a length: compared by length
    assert hist.constrain("history'", {"2": [[1, 1]]}, ids) == [
        "Len(history'[s2]) = 1",
        "history'[s2][1].zxid = <<1, 1>>",
    ]
    assert Seq(Txn).constrain("disk'[s1]", 3, ids) == ["Len(disk'[s1]) = 3"]
    # ZooKeeper's 64-bit zxid is split into <<epoch, counter>>
    assert Seq(Txn).constrain("h", [(2 << 32) | 5], ids) == ["Len(h) = 1", "h[1].zxid = <<2, 5>>"]
    # FLE: a vote table given sparsely means Nil for the servers left out
    rv = FLE.variables["recvVotes"]
    assert isinstance(rv, Fn)
    cs = rv.value.constrain("recvVotes'[1]", {}, FLE.ids([1, 2]))
    assert all(c.endswith('state |-> "NONE"]') for c in cs) and len(cs) == 2
    with pytest.raises(MappingError):
        Int.constrain("x", "7", ids)
    with pytest.raises(MappingError):
        Sid.to_tla(4, ids)  # not a server of the header


def test_from_tla_round_trips_through_constrain() -> None:
    ids = ZAB.ids([1, 2, 3])
    t = ZAB.variables["ackeRecv"]
    js = t.from_tla(parse_value("(s1 :> {<<s2, <<1, 0>>, TRUE>>} @@ s2 :> {} @@ s3 :> {})"), ids)
    assert js == {"1": [[2, [1, 0], True]], "2": [], "3": []}
    assert t.constrain("ackeRecv'", {"1": js["1"]}, ids) == [
        "ackeRecv'[s1] = {<<s2, <<1, 0>>, TRUE>>}"
    ]


def test_header_and_records_are_validated_with_line_numbers() -> None:
    with pytest.raises(TraceFormatError, match="line 1: header lacks 'servers'"):
        parse_lines(['{"kind":"header","schema":1,"spec":"Zab"}'])
    with pytest.raises(TraceFormatError, match="unknown spec"):
        parse_lines(['{"kind":"header","schema":1,"spec":"Raft","servers":[1]}'])
    head = '{"kind":"header","schema":1,"spec":"Zab","servers":[1,2,3]}'
    with pytest.raises(TraceFormatError, match="line 3: node 9 is not in the header"):
        parse_lines([head, '{"action":"NodeCrash","node":1}', '{"action":"NodeStart","node":9}'])
    with pytest.raises(TraceFormatError, match="line 2: record lacks an 'action'"):
        parse_lines([head, '{"node":1}'])
    t = parse_lines([head, "", '{"seq":0,"node":2,"action":"NodeCrash","post":{"online":false}}'])
    assert t.records[0] == Record("NodeCrash", 3, 0, 2, None, {"online": False})
    assert parse_lines(dump_lines(t)).records[0].post == {"online": False}


def test_params_by_name_by_position_and_from_node() -> None:
    ids = ZAB.ids([1, 2, 3])
    byname = compile_record(ZAB, ids, Record("FollowLeader", node=1, params={"j": 3}), True)
    bypos = compile_record(ZAB, ids, Record("FollowLeader", params=[1, 3]), True)
    assert byname.params == bypos.params
    assert "lastAction'.params[2] = s3" in byname.params
    # the Zab simulator writes ElectLeader's quorum flat, after the node
    el = compile_record(ZAB, ids, Record("ElectLeader", node=2, params=[1, 2]), True)
    assert "lastAction'.params[2] = {s1, s2}" in el.params
    with pytest.raises(MappingError, match="not a variable of Zab"):
        compile_record(ZAB, ids, Record("NodeCrash", node=1, post={"lastAction": 1}), True)


def _spec_actions(spec: str) -> dict[str, int]:
    """Action name -> arity, from the `Act("Name", <<...>>)` calls of the spec."""
    text = (ROOT / "spec" / f"{spec}.tla").read_text()
    out: dict[str, int] = {}
    for name, params in re.findall(r'Act\("(\w+)",\s*<<(.*?)>>\)', text):
        out[name] = len([p for p in params.split(",") if p.strip()])
    return out


@pytest.mark.parametrize("spec", sorted(SPEC_MAPS))
def test_tables_match_the_specs(spec: str) -> None:
    """The mapping's actions, arities and variables are the spec's (a renamed action or a new
    variable in spec/ must show up here, not as a puzzling rejection)."""
    m = SPEC_MAPS[spec]
    acts = _spec_actions(spec)
    assert {a: len(ps) for a, ps in m.actions.items()} == acts
    text = (ROOT / "spec" / f"{spec}.tla").read_text()
    block = re.search(r"^VARIABLES\n(.*?)\n\n", text, re.S | re.M)
    assert block is not None
    body = re.sub(r"\\\*.*", "", block.group(1))  # drop comments
    names = set(re.findall(r"\b(\w+)\b", body))
    assert set(m.variables) | {"lastAction"} == names
    wrapper = ROOT / "spec" / "trace" / f"{m.wrapper}.tla"
    assert f"EXTENDS {spec}, TLC" in wrapper.read_text()


def test_generated_module_pins_each_step() -> None:
    head = {"kind": "header", "schema": 1, "spec": "Zab", "servers": [1, 2, 3]}
    rec = {"node": 1, "action": "NodeCrash", "post": {"online": False, "nCrashes": 1}}
    p = plan(parse_lines([json.dumps(head), json.dumps(rec)]))
    tla, cfg = module_text(p)
    assert "EXTENDS TraceZab" in tla and "CONSTANTS s1, s2, s3" in tla
    assert 'S_1 == (lastAction\'.name = "NodeCrash")' in tla
    assert "(online'[s1] = FALSE)" in tla and "(nCrashes' = 1)" in tla
    assert (
        "INVARIANT NotDone" in cfg
        and "VIEW TraceView" in cfg
        and "MaxCrashes <- C_MaxCrashes" in cfg
    )


# --------------------------------------------------------------------------- TLC


def _value_changed(t: Trace) -> Trace:
    """Step 5's logicalClock becomes 7 (no FLE step jumps rounds like that)."""
    recs = list(t.records)
    post = copy.deepcopy(recs[5].post)
    post["logicalClock"] = 7
    recs[5] = dataclasses.replace(recs[5], post=post)
    return Trace(t.header, tuple(recs))


def _renamed(t: Trace) -> Trace:
    recs = list(t.records)
    recs[4] = dataclasses.replace(recs[4], action="FLEHandleNotification")
    return Trace(t.header, tuple(recs))


def _swapped(t: Trace) -> Trace:
    recs = list(t.records)
    recs[4], recs[5] = recs[5], recs[4]
    return Trace(t.header, tuple(recs))


def _dropped(t: Trace) -> Trace:
    recs = list(t.records)
    del recs[6]
    return Trace(t.header, tuple(recs))


def _core_trace(seed: int) -> Trace:
    """A trace the Python FLE core writes now (ElectionCluster(record=True))."""
    e = ElectionCluster(3, seed=seed, record=True)
    e.run_until_stable(3000)
    return parse_lines(e.trace_ndjson().splitlines())


FLE_VARS = ["state", "logicalClock", "currentVote", "waiting", "msgs"]

# ElectionCluster(3, seed=1, record=True).run_spec(60, max_restarts=1): a restart and resends
RESTARTS_SAMPLE = ROOT / "traces" / "samples" / "fle-impl-sim-restarts-seed1.ndjson"


def _without_resends(t: Trace) -> Trace:
    """The planted mismatch: the same trace checked against the spec with MaxResends = 0."""
    header = dataclasses.replace(t.header, constants={**t.header.constants, "MaxResends": 0})
    return dataclasses.replace(t, header=header)


@pytest.fixture(scope="module")
def fle_traces() -> dict[str, Trace]:
    # Without resends (FLENotmsgTimeout). Seed 4: a behaviour where the renamed and swapped
    # steps below are rejected for their action, as these tests expect (TLC's simulation draws
    # among Next's disjuncts, so the new action changed the behaviour of the former seed 5).
    constants = dict(DEFAULT_MODELS["FastLeaderElection"], MaxResends=0)
    b = simulate("FastLeaderElection", constants=constants, depth=14, seed=4)
    full = behaviour_trace(b)  # every variable, per-node slices (as the implementation emits)
    subset = behaviour_trace(b, variables=["state", "currentVote"], params_as="list")
    whole = behaviour_trace(b, variables=FLE_VARS, per_node=False)  # global values, no node
    return {
        "full": full,
        "subset": subset,
        "value": _value_changed(full),
        "renamed": _renamed(full),
        "swapped": _swapped(whole),
        "dropped": _dropped(whole),
        "impl-live": _core_trace(seed=2),
        "impl-seed4": read_trace(ROOT / "traces" / "samples" / "fle-impl-sim-seed4.ndjson"),
        "impl-restarts-seed1": read_trace(RESTARTS_SAMPLE),
        "impl-restarts-seed1-no-resends": _without_resends(read_trace(RESTARTS_SAMPLE)),
        "impl-two-restarts-seed201": _two_restarts_trace(201),
    }


def _two_restarts_trace(seed: int) -> Trace:
    e = ElectionCluster(3, seed=seed, record=True)
    e.run_spec(60, max_restarts=2)
    return parse_lines(e.trace_ndjson().splitlines())


@pytest.fixture(scope="module")
def fle_verdicts(fle_traces: dict[str, Trace]) -> dict[str, Verdict]:
    check: Callable[[Trace], Verdict] = check_trace
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {k: pool.submit(check, t) for k, t in fle_traces.items()}
        return {k: f.result() for k, f in futures.items()}


@needs_java
def test_spec_behaviour_is_accepted(fle_verdicts: dict[str, Verdict]) -> None:
    for key in ("full", "subset"):
        v = fle_verdicts[key]
        assert v.status is Status.ACCEPTED, v.report()
        assert v.steps == v.matched == 14


@needs_java
def test_python_core_trace_is_accepted(fle_verdicts: dict[str, Verdict]) -> None:
    """Per-node records with the core's own encoding (sparse vote tables, Init per server, the
    spec's InitZxid/InitEpoch derived from the Init records' self votes)."""
    v = fle_verdicts["impl-live"]
    assert v.status is Status.ACCEPTED, v.report()
    assert v.steps == 13


@needs_java
def test_changed_value_is_rejected_naming_the_variable(fle_verdicts: dict[str, Verdict]) -> None:
    v = fle_verdicts["value"]
    assert v.status is Status.REJECTED, v.report()
    assert (v.step, v.matched, v.variables) == (5, 4, ("logicalClock",))
    assert v.expected == {"logicalClock": 7} and v.found == {"logicalClock": 1}
    assert "step 5 of 14" in v.message and "logicalClock: trace 7" in v.message


@needs_java
def test_renamed_action_is_rejected_naming_the_action(fle_verdicts: dict[str, Verdict]) -> None:
    v = fle_verdicts["renamed"]
    assert v.status is Status.REJECTED, v.report()
    assert v.step == 4 and not v.action_enabled and v.variables == ()
    assert v.actions_possible == ("FLEHandleNotmsg",)
    assert "'FLEHandleNotification' is not an action of FastLeaderElection" in v.message


@needs_java
def test_swapped_steps_are_rejected(fle_verdicts: dict[str, Verdict]) -> None:
    v = fle_verdicts["swapped"]
    assert v.status is Status.REJECTED, v.report()
    assert v.step == 4 and not v.action_enabled  # the later step is not enabled yet


@needs_java
def test_dropped_step_is_rejected(fle_verdicts: dict[str, Verdict]) -> None:
    v = fle_verdicts["dropped"]
    assert v.status is Status.REJECTED, v.report()
    assert v.step == 6 and "msgs" in v.variables
    assert v.steps == 13


@needs_java
def test_recorded_core_trace_through_a_finalize_wait_interrupt_is_accepted(
    fle_verdicts: dict[str, Verdict], fle_traces: dict[str, Trace]
) -> None:
    """A trace of the Python FLE core (ElectionCluster seed 4, recorded in traces/samples).

    Server 3 is in the finalize wait for leader 1 when 2's better vote arrives. Spec and core
    take two steps (FLEFinalizeWaitNotmsg ends the wait and leaves the notification queued;
    FLEHandleNotmsg handles it) and the simulator writes a record after each: accepted. (When it
    wrote one record per delivery, TLC rejected this trace at that step.)"""
    v = fle_verdicts["impl-seed4"]
    assert v.status is Status.ACCEPTED, v.report()
    recs = fle_traces["impl-seed4"].records
    pairs = [
        (a.node, b.node)
        for a, b in itertools.pairwise(recs)
        if a.action == "FLEFinalizeWaitNotmsg" and b.action == "FLEHandleNotmsg"
    ]
    assert (3, 3) in pairs, [r.action for r in recs]


def test_bad_values_and_tlc_failures_are_errors() -> None:
    head = '{"kind":"header","schema":1,"spec":"Zab","servers":[1,2,3]}'
    v = check_trace(parse_lines([head, '{"node":1,"action":"NodeCrash","post":{"online":"no"}}']))
    assert v.status is Status.ERROR
    assert "line 2, node 1: post online: expected true/false" in v.message
    v = check_trace(parse_lines([head.replace("]}", '],"constants":{"MaxBananas":1}}')]))
    assert v.status is Status.ERROR and "MaxBananas" in v.message


@needs_java
def test_tlc_timeout_is_an_error_not_a_rejection() -> None:
    head = '{"kind":"header","schema":1,"spec":"Zab","servers":[1,2,3]}'
    v = check_trace(parse_lines([head, '{"node":1,"action":"NodeCrash"}']), timeout_s=0.2)
    assert v.status is Status.ERROR, v.report()
    assert "TLC failed" in v.message and "timed out" in v.message


def test_restarts_sample_is_what_the_simulator_records() -> None:
    e = ElectionCluster(3, seed=1, record=True)
    e.run_spec(60, max_restarts=1)
    assert e.trace_ndjson() == RESTARTS_SAMPLE.read_text()


@needs_java
def test_recorded_core_trace_with_resends_is_accepted(
    fle_verdicts: dict[str, Verdict], fle_traces: dict[str, Trace]
) -> None:
    """A trace of the Python FLE core with a restart: a LOOKING server that hears nothing for a
    while sends its vote again (FLENotmsgTimeout, ZooKeeper's `recvqueue.poll(notTimeout)`
    returning null). The spec has the action (bounded by MaxResends, 100 for traces): accepted.
    Checked with MaxResends = 0, as the models without resends, the same trace is rejected at
    its first resend. (Before the spec had the action, it was rejected there: finding 2.)"""
    recs = fle_traces["impl-restarts-seed1"].records
    actions = [r.action for r in recs]
    assert "FLERestart" in actions and "FLENotmsgTimeout" in actions
    v = fle_verdicts["impl-restarts-seed1"]
    assert v.status is Status.ACCEPTED, v.report()
    assert v.steps == sum(a != "Init" for a in actions)
    v = fle_verdicts["impl-restarts-seed1-no-resends"]
    assert v.status is Status.REJECTED, v.report()
    first = actions.index("FLENotmsgTimeout")
    assert v.record is not None and v.record.action == "FLENotmsgTimeout"
    assert v.record is recs[first] or v.record.seq == recs[first].seq


@needs_java
def test_resend_while_a_notification_is_in_flight_is_accepted(
    fle_verdicts: dict[str, Verdict], fle_traces: dict[str, Trace]
) -> None:
    """Seed 201 with two restarts: servers 1 and 3 are LOOKING and their resend timers run out
    in the same tick; 1 resends first, so 3's timer runs out while 1's notification to it is in
    flight. ZooKeeper's poll sees only what has arrived, so that is a timeout too. The spec's
    FLENotmsgTimeout required "nothing queued for i" and rejected the trace there (finding 7);
    its guard is now the state alone."""
    recs = fle_traces["impl-two-restarts-seed201"].records
    assert sum(r.action == "FLERestart" for r in recs) == 2
    assert sum(r.action == "FLENotmsgTimeout" for r in recs) >= 2
    v = fle_verdicts["impl-two-restarts-seed201"]
    assert v.status is Status.ACCEPTED, v.report()
