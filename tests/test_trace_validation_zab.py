"""Trace validation on Zab (and Sessions), and `zkref trace validate`.

- A Zab behaviour that TLC simulates is accepted with every variable and with a subset; a
  changed value is rejected naming the step and the variable.
- Traces of the Python Zab cores (zkref.sim.ZabCluster) are accepted, a crash included; a core
  with a planted bug (ACK before fsync) is rejected against the correct spec, at the leader's
  ACK that the spec's follower never sent, and accepted against the spec with
  BUG_ACK_BEFORE_FSYNC = TRUE (so the rejection is the bug, not the translation).
- A Sessions behaviour is accepted.
TLC runs two at a time in a module fixture.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from zkref.conform.tlc import JAVA, repo_root
from zkref.conform.trace import Trace, parse_lines, read_trace
from zkref.conform.tracecheck import Status, Verdict, behaviour_trace, check_trace, simulate
from zkref.conform.tracecli import DEFAULT_MODELS, main
from zkref.sim.zab_cluster import ZabCluster

ROOT = repo_root()
SAMPLES = ROOT / "traces" / "samples"
pytestmark = pytest.mark.skipif(not Path(JAVA).exists(), reason="needs Java for TLC")

ZAB_SUBSET = ["state", "zabState", "acceptedEpoch", "currentEpoch", "history", "lastCommitted"]


def _changed(t: Trace, k: int, var: str, value: object) -> Trace:
    recs = list(t.records)
    post = copy.deepcopy(recs[k].post)
    post[var] = value
    recs[k] = dataclasses.replace(recs[k], post=post)
    return Trace(t.header, tuple(recs))


def _sim_trace(seed: int, *, crash: bool = False, **bugs: bool) -> Trace:
    c = ZabCluster(3, seed=seed, check=False, **bugs)
    leader = c.elect()
    c.run_until_quiet()
    c.write()
    c.run_until_quiet()
    if crash:
        c.crash(leader)
        c.run_until_quiet()
        c.restart(leader)
        c.run_until_quiet()
    return parse_lines(c.trace_lines())


def _with_constants(t: Trace, **consts: object) -> Trace:
    return dataclasses.replace(t, header=dataclasses.replace(t.header, constants=dict(consts)))


@pytest.fixture(scope="module")
def traces() -> dict[str, Trace]:
    b = simulate("Zab", constants=dict(DEFAULT_MODELS["Zab"]), depth=30, seed=3)
    full = behaviour_trace(b)
    subset = behaviour_trace(b, variables=ZAB_SUBSET)
    s = simulate(
        "Sessions",
        servers=(1, 2),
        clients=(1,),
        constants=dict(DEFAULT_MODELS["Sessions"]),
        depth=12,
        seed=2,
    )
    buggy = _sim_trace(1, bug_ack_before_fsync=True)
    return {
        "full": full,
        "subset": subset,
        "value": _changed(subset, 12, "acceptedEpoch", 5),
        "impl": _sim_trace(1),
        "impl-crash": _sim_trace(4, crash=True),
        "impl-bug": buggy,
        "impl-bug-vs-bug-spec": _with_constants(buggy, BUG_ACK_BEFORE_FSYNC=True),
        "sessions": behaviour_trace(s),
        "bad-init": parse_lines(
            [
                '{"kind":"header","schema":1,"spec":"Zab","servers":[1,2,3]}',
                '{"action":"Init","post":{"acceptedEpoch":{"1":0,"2":3}}}',
                '{"node":1,"action":"NodeCrash","post":{"online":false}}',
            ]
        ),
    }


@pytest.fixture(scope="module")
def verdicts(traces: dict[str, Trace]) -> dict[str, Verdict]:
    check: Callable[[Trace], Verdict] = check_trace
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {k: pool.submit(check, t) for k, t in traces.items()}
        return {k: f.result() for k, f in futures.items()}


@pytest.mark.parametrize("key", ["full", "subset", "impl", "impl-crash", "sessions"])
def test_accepted(key: str, verdicts: dict[str, Verdict], traces: dict[str, Trace]) -> None:
    v = verdicts[key]
    assert v.status is Status.ACCEPTED, v.report()
    assert v.matched == v.steps > 0
    if key == "impl-crash":
        assert any(r.action == "NodeCrash" for r in traces[key].records)


def test_changed_value_is_rejected(verdicts: dict[str, Verdict]) -> None:
    v = verdicts["value"]
    assert v.status is Status.REJECTED, v.report()
    assert (v.step, v.variables) == (12, ("acceptedEpoch",))
    assert v.record is not None and v.record.action == "LeaderProcessACKEPOCH"
    assert v.found == {"acceptedEpoch": 1}


def test_core_with_planted_bug_is_rejected(verdicts: dict[str, Verdict]) -> None:
    v = verdicts["impl-bug"]
    assert v.status is Status.REJECTED, v.report()
    assert v.record is not None and v.record.action == "LeaderProcessACK"
    assert not v.action_enabled
    assert "LeaderProcessACK is not enabled" in v.message
    ok = verdicts["impl-bug-vs-bug-spec"]
    assert ok.status is Status.ACCEPTED, ok.report()


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"kind":"header","schema":1,"spec":"Zab"}\n')
    assert main(["validate", str(bad)]) == 2
    assert "header lacks 'servers'" in capsys.readouterr().err
    mutated = SAMPLES / "zab-spec-sim-seed3-mutated.ndjson"
    assert read_trace(mutated).header.spec == "Zab"
    assert main(["validate", "--no-diagnose", str(mutated)]) == 1
    out = capsys.readouterr().out
    assert "REJECTED" in out and "step 12 of 30" in out
    out_file = tmp_path / "sim.ndjson"
    assert (
        main(["simulate", "Sessions", "--depth", "6", "--seed", "4", "--out", str(out_file)]) == 0
    )
    assert read_trace(out_file).header.clients == (1,)
    assert main(["validate", str(out_file), str(SAMPLES / "sessions-spec-sim-seed2.ndjson")]) == 0
    assert capsys.readouterr().out.count("ACCEPTED: Sessions trace") == 2


def test_wrong_initial_state_is_rejected_at_step_0(verdicts: dict[str, Verdict]) -> None:
    v = verdicts["bad-init"]
    assert v.status is Status.REJECTED, v.report()
    assert (v.step, v.matched, v.variables) == (0, 0, ("acceptedEpoch",))
    assert "no initial state of the spec matches" in v.message
    assert 'acceptedEpoch: trace {"2": 3}' in v.message  # only the key that differs
