"""Message-sequence charts (zkref.conform.tracedraw): arrows checked against what really happened.

The simulator run is instrumented from outside (its network's send and deliver) to record, for
every message delivered, the trace record at which it was sent and the one at which it was
received; the chart must have exactly those arrows, at the right lifelines and rows. Stored TLC
paths are checked against the spec's naming (a `<Role>Process<MSG>(i, j)` step takes one MSG from
j). Planted: a trace with a send removed is drawn with its receives marked as orphans.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from zkref.conform import tracecli
from zkref.conform.tracedraw import (
    BOX_W,
    RECEIVES,
    build_chart,
    examples,
    load,
    load_lines,
    render_html,
    render_svg,
)
from zkref.core.zab.messages import Sid
from zkref.sim.election_cluster import ElectionCluster
from zkref.sim.network import InFlight
from zkref.sim.zab_cluster import ZabCluster

ROOT = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"
Truth = tuple[int, int, int, int]  # send record, receive record, from, to


class _Records(list[dict[str, Any]]):
    """The cluster's record list, noting which record each message was sent / received at."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[InFlight[Any]] = []
        self.recv: tuple[InFlight[Any], int, int] | None = None
        self.sent_at: dict[int, int] = {}
        self.keep: list[InFlight[Any]] = []
        self.truth: list[Truth] = []
        self.unrecorded = 0  # deliveries whose receive is not the next record (deferred, crash)

    def append(self, r: dict[str, Any]) -> None:
        k = len(self)
        for inf in self.pending:
            self.sent_at[id(inf)] = k
        self.pending = []
        requeued = r.get("action") == "FLEFinalizeWaitNotmsg" and not r["post"]["waiting"]
        if self.recv is not None and not requeued:  # a re-queued one is taken by the next record
            inf, frm, to = self.recv
            self.recv = None
            p = r.get("params")
            if r["node"] == to and isinstance(p, dict) and p.get("j") == frm:
                self.truth.append((self.sent_at[id(inf)], k, frm, to))
            else:
                self.unrecorded += 1
        super().append(r)


def instrumented(c: ZabCluster | ElectionCluster) -> _Records:
    """Watch c's network from outside: which record sent / received each message."""
    rec = _Records()
    if isinstance(c, ZabCluster):
        c.records = rec
        net: Any = c.net
    else:  # the Init records and their broadcasts are already there
        assert c.trace is not None
        rec.extend(c.trace)
        init = {r["node"]: k for k, r in enumerate(c.trace)}
        for (a, _), link in c.network.links.items():
            for inf in link.queue:
                rec.sent_at[id(inf)] = init[a]
                rec.keep.append(inf)
        c.trace = rec
        net = c.network
    send, deliver = net.send, net.deliver

    def send_(frm: Sid, to: Sid, msg: Any) -> bool:
        ok: bool = send(frm, to, msg)
        if ok:
            inf = net.links[(frm, to)].queue[-1]
            rec.keep.append(inf)
            rec.pending.append(inf)
        return ok

    def deliver_(frm: Sid, to: Sid) -> Any:
        rec.recv = (net.links[(frm, to)].queue[0], frm, to)
        return deliver(frm, to)

    net.send = send_
    net.deliver = deliver_
    return rec


def scripted_run() -> tuple[ZabCluster, _Records]:
    """Election, sync, two writes; the leader logs a txn nobody gets and crashes; a new leader
    syncs by DIFF; the old one comes back and is synced by TRUNC."""
    c = ZabCluster(3, seed=5)
    rec = instrumented(c)
    s1, s2, s3 = c.sids
    c.elect(s3)
    c.run_until_quiet()
    c.write(b"a")
    c.write(b"b")
    c.run_until_quiet()
    c.hold(s3, s1)
    c.hold(s3, s2)
    c.write(b"c")
    c.fsync(s3)
    c.crash(s3)
    c.release(s3, s1)
    c.release(s3, s2)
    c.elect(s2, {s1, s2})
    c.run_until_quiet()
    c.restart(s3)
    c.follow(s3, s2)
    c.run_until_quiet()
    c.write(b"d")
    c.run_until_quiet()
    return c, rec


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def lifelines(root: ET.Element) -> dict[int, float]:
    return {
        int(g.attrib["data-server"]): float(g.attrib["data-x"])
        for g in root.iter(f"{SVG}g")
        if "lifeline" in g.attrib.get("class", "")
    }


def rows(root: ET.Element) -> dict[int, float]:
    out: dict[int, float] = {}
    for g in root.iter(f"{SVG}g"):
        if g.attrib.get("class") == "step":
            rect = g.find(f"{SVG}rect")
            assert rect is not None
            out[int(g.attrib["data-step"])] = float(rect.attrib["y"]) + 9
    return out


def arrows(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if "msg" in g.attrib.get("class", "").split()]


def key(g: ET.Element) -> tuple[str, str, str, str]:
    a = g.attrib
    return (a["data-send"], a["data-recv"], a["data-from"], a["data-to"])


def test_simulator_run_every_message_is_one_arrow_at_the_right_places() -> None:
    c, rec = scripted_run()
    lines = c.trace_lines()
    servers, steps, spec = load_lines(lines)
    assert spec == "Zab" and servers == [1, 2, 3]
    chart = build_chart(servers, steps, "scripted")
    assert chart.mode == "inferred" and not chart.orphans
    root = parse(render_svg(chart))
    lx, ry = lifelines(root), rows(root)
    got = arrows(root)
    truth = {(str(s), str(r), str(f), str(t)) for s, r, f, t in rec.truth}
    assert rec.unrecorded == 0
    assert len(rec.truth) == len(truth) > 40  # a real run: every phase, both sync modes
    keys = [key(g) for g in got]
    assert sorted(keys) == sorted(truth), set(keys) ^ truth
    for g in got:
        send, recv, frm, to = (int(x) for x in key(g))
        line = g.find(f"{SVG}line")
        assert line is not None
        x1, y1 = float(line.attrib["x1"]), float(line.attrib["y1"])
        x2, y2 = float(line.attrib["x2"]), float(line.attrib["y2"])
        assert abs(x1 - lx[frm]) in (0.0, BOX_W / 2) or abs(abs(x1 - lx[frm]) - BOX_W / 2) < 0.2
        assert abs(abs(x2 - lx[to]) - BOX_W / 2) < 0.2
        assert abs(y1 - ry[send]) < 0.2 and abs(y2 - ry[recv]) < 0.2
        assert (x2 - x1 > 0) == (lx[to] > lx[frm])  # it points from sender to receiver
    modes = {g.attrib["data-mtype"] for g in got}
    assert {"DIFF", "TRUNC", "PROPOSAL", "ACK", "COMMIT", "NEWLEADER", "ACKLD"} <= modes
    # the TRUNC goes to the old leader, which had logged 1:3 alone
    trunc = [g for g in got if g.attrib["data-mtype"] == "TRUNC"]
    assert [g.attrib["data-to"] for g in trunc] == ["3"]
    # every action is named on its lifeline; crash and restart are marked
    actions = {json.loads(x)["action"] for x in lines[1:]}
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert actions <= texts and {"NodeCrash", "NodeStart"} <= actions
    assert any("DOWN" in (t or "") for t in texts)
    assert any("LEADING e2" in (t or "") for t in texts)  # role / epoch / zxid annotations


def test_random_runs_zab_swarm_and_fle_arrows_match_the_network() -> None:
    """Seeded fault-injecting runs: every delivery whose receive is the next record is an
    arrow (deliveries the core defers, or that a crash interrupts, are not checked)."""
    for seed in range(1, 9):
        c = ZabCluster(3, seed=seed)
        rec = instrumented(c)
        c.swarm(fault_steps=120, converge_steps=2000, max_txns=4)
        servers, steps, _ = load_lines(c.trace_lines())
        chart = build_chart(servers, steps, f"swarm {seed}")
        got = {(m.send, m.recv, m.frm, m.to) for m in chart.messages}
        assert set(rec.truth) <= got, (seed, set(rec.truth) - got)
        assert not chart.orphans and len(rec.truth) > 20
    for seed in range(1, 5):
        e = ElectionCluster(3, seed=seed, record=True)
        rec = instrumented(e)
        e.run_spec(60, max_restarts=2, restart_chance=0.1)
        servers, steps, spec = load_lines(e.trace_ndjson().splitlines())
        chart = build_chart(servers, steps, f"fle {seed}")
        got = {(m.send, m.recv, m.frm, m.to) for m in chart.messages}
        assert spec == "FastLeaderElection" and set(rec.truth) == got, (seed, set(rec.truth) ^ got)


def test_stored_tlc_path_exact_arrows_follow_the_spec() -> None:
    path = ROOT / "traces/tlc/MCZab_replay/MCZab_replay-00000.json"
    servers, steps, spec = load(path)
    chart = build_chart(servers, steps, path.name)
    assert spec == "Zab" and chart.mode == "exact" and not chart.orphans
    root = parse(render_svg(chart))
    lx, ry = lifelines(root), rows(root)
    got = arrows(root)
    by_recv = {int(g.attrib["data-recv"]): g for g in got if g.attrib["data-recv"]}
    receives = [st for st in steps if st.action in RECEIVES]
    assert receives
    for st in receives:  # <Role>Process<MSG>(i, j): exactly one MSG from j to i
        g = by_recv[st.index]
        assert [int(g2.attrib["data-recv"] or -1) for g2 in got].count(st.index) == 1
        assert isinstance(st.params, list)
        assert (g.attrib["data-from"], g.attrib["data-to"]) == (str(st.params[1]), str(st.node))
        want = RECEIVES[st.action]
        if want is None:
            assert g.attrib["data-mtype"] in ("DIFF", "TRUNC", "SNAP")
        else:
            assert g.attrib["data-mtype"] == want
    for g in got:  # each send: one arrow from the step whose channels gained the message
        send = int(g.attrib["data-send"])
        frm, to = int(g.attrib["data-from"]), int(g.attrib["data-to"])
        after, before = steps[send].msgs or {}, (steps[send - 1].msgs or {}) if send else {}
        assert len(after[(frm, to)]) >= 1 and after[(frm, to)] != before.get((frm, to))
        line = g.find(f"{SVG}line")
        assert line is not None and abs(float(line.attrib["y1"]) - ry[send]) < 0.2
        assert abs(abs(float(line.attrib["x1"]) - lx[frm]) - BOX_W / 2) < 0.2 or (
            abs(float(line.attrib["x1"]) - lx[frm]) < 0.2
        )
    sends = sum(1 for g in got if g.attrib["data-send"])  # all messages were sent inside the path
    assert sends == len(got)
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert {st.action for st in steps} <= texts


def test_tlc_counterexample_and_fle_traces_draw() -> None:
    for name in ("MCZab_ZOOKEEPER_3911.ndjson", "MCZab_BUG_LOSSY_LINK_TotalOrder.ndjson"):
        servers, steps, _ = load(ROOT / "traces" / name)
        chart = build_chart(servers, steps, name)
        assert chart.mode == "exact" and servers == [1, 2, 3] and not chart.orphans
        parse(render_svg(chart))
    # the lossy link drops a PROPOSAL: drawn as a dropped message at the LoseMessage step
    lose = [st.index for st in steps if st.action == "LoseMessage"]
    assert lose and [m.mtype for m in chart.messages if m.dropped_at in lose] == ["PROPOSAL"]
    servers, steps, spec = load(ROOT / "traces/samples/fle-impl-sim-seed2.ndjson")
    chart = build_chart(servers, steps, "fle")
    assert spec == "FastLeaderElection" and not chart.orphans
    assert len(chart.messages) == sum(st.action == "FLEHandleNotmsg" for st in steps)


def test_every_stored_counterexample_and_one_path_per_model_draws_without_orphans() -> None:
    """TLC's channels account for every receive, including FLE's finalize wait, which looks
    at a better vote and leaves it queued (a peek, not an orphan)."""
    models = sorted((ROOT / "traces/tlc").iterdir())
    files = sorted((ROOT / "traces").glob("*.ndjson")) + [min(m.glob("*.json")) for m in models]
    assert len(files) >= 20
    for path in files:
        servers, steps, spec = load(path)
        chart = build_chart(servers, steps, path.name)
        assert not chart.orphans, path.name
        assert chart.mode == ("inferred" if spec == "Sessions" else "exact"), path.name
        parse(render_svg(chart))


def test_planted_receive_without_send_is_marked_orphan() -> None:
    c, _ = scripted_run()
    lines = c.trace_lines()
    cut = next(
        n for n, x in enumerate(lines) if json.loads(x).get("action") == "LeaderSyncFollower"
    )
    planted = lines[:cut] + lines[cut + 1 :]
    servers, steps, _ = load_lines(planted)
    chart = build_chart(servers, steps, "planted")
    # the follower's sync message and NEWLEADER now come from nowhere
    orphans = [(steps[m.recv].action, m.frm, m.to) for m in chart.orphans if m.recv is not None]
    first = json.loads(lines[cut])["params"]
    j, i = first["i"], first["j"]
    assert ("FollowerProcessSyncMessage", j, i) in orphans
    assert ("FollowerProcessNEWLEADER", j, i) in orphans
    root = parse(render_svg(chart))
    marked = [g for g in arrows(root) if "orphan" in g.attrib["class"].split()]
    assert len(marked) == len(chart.orphans) >= 2
    assert all(g.attrib["data-send"] == "" for g in marked)
    assert any("orphan" in (t.text or "") for g in marked for t in g.iter(f"{SVG}text"))
    # exact mode too: a receive whose channel is empty
    head = {"kind": "header", "schema": 1, "spec": "Zab", "source": "tlc"}
    empty = "(s1 :> (s1 :> <<>> @@ s2 :> <<>>) @@ s2 :> (s1 :> <<>> @@ s2 :> <<>>))"
    state = '(s1 :> "LEADING" @@ s2 :> "FOLLOWING")'
    recs = [
        {"seq": 1, "action": "Init", "params": "<<>>", "post": {"msgs": empty, "state": state}},
        {"seq": 2, "action": "LeaderProcessFOLLOWERINFO", "params": "<<s1, s2>>",
         "post": {"msgs": empty, "state": state}},
    ]  # fmt: skip
    servers, steps, _ = load_lines([json.dumps(head)] + [json.dumps(r) for r in recs])
    chart = build_chart(servers, steps, "planted exact")
    assert chart.mode == "exact"
    assert [(m.frm, m.to, m.mtype, m.recv) for m in chart.orphans] == [(2, 1, "FOLLOWERINFO", 1)]


def test_text_is_escaped_and_cli_writes_svg_and_html(tmp_path: Path) -> None:
    head = {"kind": "header", "schema": 1, "spec": "Zab", "servers": [1, 2]}
    rec = {"seq": 0, "node": 1, "action": "Odd<&>\"Action'", "params": {"i": 1, "note": "<x>"}}
    src = tmp_path / "t.ndjson"
    src.write_text(json.dumps(head) + "\n" + json.dumps(rec) + "\n")
    out = tmp_path / "t.svg"
    assert tracecli.main(["draw", str(src), "-o", str(out), "--title", "a & <b>"]) == 0
    root = parse(out.read_text())
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert "Odd<&>\"Action'" in texts and "a & <b>" in texts
    page = tmp_path / "t.html"
    assert tracecli.main(["draw", str(src), "-o", str(page)]) == 0
    assert page.read_text().startswith("<!DOCTYPE html>") and "<svg" in page.read_text()
    servers, steps, _ = load(src)
    assert "<svg" in render_html(build_chart(servers, steps))
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"no": "header"}\n')
    assert tracecli.main(["draw", str(bad), "-o", str(tmp_path / "bad.svg")]) == 2


def test_doc_examples_show_diff_trunc_and_the_bug(tmp_path: Path) -> None:
    paths = {p.stem: p for p in examples(tmp_path)}
    assert set(paths) == {"zab-normal", "zab-diff-trunc", "zab-zk3911"}
    dt = arrows(parse(paths["zab-diff-trunc"].read_text()))
    sync = {(g.attrib["data-mtype"], g.attrib["data-to"]) for g in dt}
    assert ("TRUNC", "3") in sync and ("DIFF", "1") in sync
    bug = paths["zab-zk3911"].read_text()
    parse(bug)
    assert "CommittedLogDurability violated" in bug and "disk=0:0" in bug
