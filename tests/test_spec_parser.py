# ruff: noqa: E501  (TLC output is quoted verbatim)
"""Unit tests of the TLC output parser, on outputs captured from TLC 2.15 (trimmed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from zkref.conform.manifest import ModelEntry
from zkref.conform.tlc import (
    Outcome,
    cfg_properties,
    parse_output,
    parse_progress,
)
from zkref.conform.traces import read_trace, render_trace, write_trace

# MCSessions with BUG_NO_ZXID_CHECK (TLC 2.15, one worker); states 3-4 cut out.
INVARIANT_OUTPUT = r"""TLC2 Version 2.15 of Day Month 20?? (rev: d5b5a7f)
Running breadth-first search Model-Checking with fp 85 and seed 6440113927896599452 with 1 worker on 2 cores with 5358MB heap and 64MB offheap memory [pid: 3135] (Linux 6.18.44-fc-v769 amd64, Debian 17.0.15 x86_64, MSBDiskFPSet, DiskStateQueue).
Starting... (2026-11-22 05:07:39)
Computing initial states...
Finished computing initial states: 1 distinct state generated at 2026-11-22 05:07:40.
Error: Invariant MonotonicClientView is violated.
Error: The behavior up to this point is:
State 1: <Initial predicate>
/\ conns = {}
/\ lastZxidSeen = (c1 :> 0)
/\ log = <<>>
/\ applied = (s1 :> 0 @@ s2 :> 0)
/\ lastAction = [name |-> "Init", params |-> <<>>]
/\ cstate = (c1 :> "IDLE")

State 2: <ClientCreateSession line 104, col 5 to line 117, col 43 of module Sessions>
/\ conns = {[sid |-> 1, id |-> 1, at |-> 1]}
/\ lastZxidSeen = (c1 :> 0)
/\ log = <<[type |-> "createSession", sid |-> 1, conn |-> 1]>>
/\ applied = (s1 :> 0 @@ s2 :> 0)
/\ lastAction = [name |-> "ClientCreateSession", params |-> <<c1, s1>>]
/\ cstate = (c1 :> "CONNECTING")

State 5: <ClientReconnect line 230, col 5 to line 251, col 39 of module Sessions>
/\ conns = {[sid |-> 1, id |-> 1, at |-> 1], [sid |-> 1, id |-> 2, at |-> 1]}
/\ lastZxidSeen = (c1 :> 1)
/\ log = <<[type |-> "createSession", sid |-> 1, conn |-> 1]>>
/\ applied = (s1 :> 1 @@ s2 :> 0)
/\ lastAction = [name |-> "ClientReconnect", params |-> <<c1, s2>>]
/\ cstate = (c1 :> "CONNECTED")

74 states generated, 51 distinct states found, 33 states left on queue.
The depth of the complete state graph search is 5.
The average outdegree of the complete state graph is 3 (minimum is 1, the maximum 6 and the 95th percentile is 6).
Finished in 03s at (2026-11-22 05:07:41)
"""

PASS_OUTPUT = r"""TLC2 Version 2.15 of Day Month 20?? (rev: d5b5a7f)
Starting... (2026-11-22 04:46:54)
Implied-temporal checking--satisfiability problem has 1 branches.
Computing initial states...
Finished computing initial states: 1 distinct state generated at 2026-11-22 04:46:55.
Progress(4) at 2026-11-22 04:46:59: 74 states generated (74 s/min), 45 distinct states found (45 ds/min), 30 states left on queue.
Progress(18) at 2026-11-22 04:47:15: 22,708 states generated, 8,928 distinct states found, 0 states left on queue.
Checking temporal properties for the complete state space with 8928 total distinct states at (2026-11-22 04:47:15)
Finished checking temporal properties in 00s at 2026-11-22 04:47:15
Model checking completed. No error has been found.
  Estimates of the probability that TLC did not check all reachable states
  because two distinct states had the same fingerprint:
  calculated (optimistic):  val = 6.7E-12
22708 states generated, 8928 distinct states found, 0 states left on queue.
The depth of the complete state graph search is 18.
Finished in 23s at (2026-11-22 04:47:15)
"""

# MCFLE_ZOOKEEPER_1419: a lasso; values wrapped over several lines as TLC prints them.
LIVENESS_OUTPUT = r"""TLC2 Version 2.15 of Day Month 20?? (rev: d5b5a7f)
Error: Temporal properties were violated.

Error: The following behavior constitutes a counter-example:

State 1: <Initial predicate>
/\ currentVote = << [leader |-> 1, zxid |-> 1, epoch |-> 2],
   [leader |-> 2, zxid |-> 1, epoch |-> 1] >>
/\ lastAction = [name |-> "Init", params |-> <<>>]

State 2: <FLEHandleNotmsg line 106, col 5 to line 182, col 39 of module FastLeaderElection>
/\ currentVote = << [leader |-> 1, zxid |-> 1, epoch |-> 2],
   [leader |-> 1, zxid |-> 1, epoch |-> 2] >>
/\ lastAction = [name |-> "FLEHandleNotmsg", params |-> <<2, 1>>]

State 3: <FLEHandleNotmsg line 106, col 5 to line 182, col 39 of module FastLeaderElection>
/\ currentVote = << [leader |-> 2, zxid |-> 1, epoch |-> 1],
   [leader |-> 1, zxid |-> 1, epoch |-> 2] >>
/\ lastAction = [name |-> "FLEHandleNotmsg", params |-> <<1, 2>>]

Back to state 2: <FLEHandleNotmsg line 106, col 5 to line 182, col 39 of module FastLeaderElection>
/\ currentVote = << [leader |-> 1, zxid |-> 1, epoch |-> 2],
   [leader |-> 1, zxid |-> 1, epoch |-> 2] >>
/\ lastAction = [name |-> "FLEHandleNotmsg", params |-> <<2, 1>>]

133 states generated, 91 distinct states found, 0 states left on queue.
Finished in 04s at (2026-11-22 04:58:35)
"""

PARSE_ERROR_OUTPUT = r"""TLC2 Version 2.15 of Day Month 20?? (rev: d5b5a7f)
Semantic errors:

*** Errors: 12

line 90, col 35 to line 90, col 35 of module Sessions

Could not find declaration or definition of symbol '-.'.

Starting... (2026-11-22 05:00:24)
Error: Parsing or semantic analysis failed.
Finished in 01s at (2026-11-22 05:00:24)
"""


def test_invariant_violation_is_parsed() -> None:
    r = parse_output("MCSessions_BUG_NO_ZXID_CHECK", INVARIANT_OUTPUT, 3.04)
    assert r.outcome is Outcome.INVARIANT
    assert r.violated == "MonotonicClientView"
    assert (r.states_generated, r.distinct_states, r.depth) == (74, 51, 5)
    assert r.seconds == 3.0
    assert [s.index for s in r.trace] == [1, 2, 5]
    assert [s.action for s in r.trace] == ["Init", "ClientCreateSession", "ClientReconnect"]
    assert r.trace[2].params == "<<c1, s2>>"
    assert r.trace[2].variables["applied"] == "(s1 :> 1 @@ s2 :> 0)"
    assert r.trace[2].variables["conns"].startswith("{[sid |-> 1, id |-> 1")
    assert r.loop_back_to is None


def test_pass_is_parsed() -> None:
    r = parse_output("MCFLE_liveness", PASS_OUTPUT, 23.0, ["ElectionTerminates"])
    assert r.outcome is Outcome.PASS
    assert r.violated is None
    assert (r.states_generated, r.distinct_states, r.depth) == (22708, 8928, 18)
    assert r.trace == ()


def test_temporal_violation_names_the_only_property_and_its_loop() -> None:
    r = parse_output("MCFLE_ZOOKEEPER_1419", LIVENESS_OUTPUT, 4.0, ["ElectionTerminates"])
    assert r.outcome is Outcome.PROPERTY
    assert r.violated == "ElectionTerminates"
    assert r.distinct_states == 91
    assert len(r.trace) == 3
    assert r.depth == 3  # no depth line for a lasso: the trace length
    assert r.loop_back_to == 2
    # a value wrapped over two lines is joined into one
    assert r.trace[2].variables["currentVote"] == (
        "<< [leader |-> 2, zxid |-> 1, epoch |-> 1], [leader |-> 1, zxid |-> 1, epoch |-> 2] >>"
    )
    assert "back to state 2" in render_trace(r)


def test_temporal_violation_with_several_properties_is_not_guessed() -> None:
    r = parse_output("m", LIVENESS_OUTPUT, 4.0, ["A", "B"])
    assert r.violated == "temporal property"


def test_parse_error_is_an_error() -> None:
    r = parse_output("MCSessions_base", PARSE_ERROR_OUTPUT, 1.0)
    assert r.outcome is Outcome.ERROR
    assert r.error is not None and "Parsing or semantic analysis failed" in r.error


def test_progress_lines() -> None:
    p = parse_progress(
        "Progress(13) at 2026-11-22 05:01:37: 1,099,679 states generated (1,097,912 s/min), "
        "377,964 distinct states found (377,047 ds/min), 185,366 states left on queue."
    )
    assert p is not None and (p.generated, p.distinct, p.queue) == (1099679, 377964, 185366)
    assert parse_progress("Starting... (2026-11-22 05:00:24)") is None


def test_trace_ndjson_round_trip(tmp_path: Path) -> None:
    r = parse_output("MCSessions_BUG_NO_ZXID_CHECK", INVARIANT_OUTPUT, 3.0)
    path = write_trace(r, "Sessions", tmp_path)
    rows = read_trace(path)
    assert rows[0]["kind"] == "header" and rows[0]["spec"] == "Sessions"
    assert rows[0]["violated"] == "MonotonicClientView"
    assert [row["action"] for row in rows[1:]] == [
        "Init",
        "ClientCreateSession",
        "ClientReconnect",
    ]
    assert "lastAction" not in rows[3]["post"]
    assert rows[3]["post"]["cstate"] == '(c1 :> "CONNECTED")'


def test_render_shows_only_changed_variables() -> None:
    r = parse_output("MCSessions_BUG_NO_ZXID_CHECK", INVARIANT_OUTPUT, 3.0)
    text = render_trace(r)
    step5 = text.split("5. ClientReconnect")[1]
    assert "applied = (s1 :> 1 @@ s2 :> 0)" in step5
    assert "log =" not in step5  # unchanged since state 2


def test_manifest_entry_mismatches() -> None:
    r = parse_output("MCSessions_BUG_NO_ZXID_CHECK", INVARIANT_OUTPUT, 3.0)
    entry = ModelEntry(
        name="MCSessions_BUG_NO_ZXID_CHECK",
        module="MCSessions",
        spec="Sessions",
        kind="planted",
        ci=True,
        expect=Outcome.INVARIANT,
        violated="MonotonicClientView",
        distinct_states=51,
        depth=5,
        seconds=3.0,
        cpu_seconds=3.0,
        description="",
    )
    assert entry.mismatches(r) == []
    other = dataclasses.replace(entry, violated="SessionNeverRevived", depth=6)
    assert len(other.mismatches(r)) == 2


def test_cfg_properties(tmp_path: Path) -> None:
    cfg = tmp_path / "m.cfg"
    cfg.write_text(
        "\\* comment\nCONSTANTS\n    A = 1\nSPECIFICATION FairSpec\n"
        "PROPERTIES\n    ElectionTerminates\n    Other\nINVARIANTS\n    Inv\n"
    )
    assert cfg_properties(cfg) == ["ElectionTerminates", "Other"]
