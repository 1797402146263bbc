"""Message-sequence charts of traces: one lifeline per server, one arrow per message.

`zkref trace draw FILE -o OUT.svg` (or `python -m zkref.conform.tracedraw FILE -o OUT.svg`)
draws an NDJSON trace — a simulator or real-ensemble trace (`zkref.conform.trace` records), a
TLC counterexample (`traces/*.ndjson`) or a stored TLC path (`traces/tlc/*/*.json`) — as a
self-contained SVG (no script), or an HTML page around it when OUT ends in `.html`.
`python -m zkref.conform.tracedraw --examples DIR` writes the pictures of docs/zab.md.

Rules:
- Every record is a step: a box on its server's lifeline labelled with the spec action; the
  server's role / epoch / last zxid is written under the box when it changes.
- Messages are matched in one of two ways, named in the chart's caption:
  * exact: the states carry the spec's `msgs` channels (TLC). A step that appends to
    msgs[a][b] sends; a step of b that takes the head of msgs[a][b] where a is its peer
    parameter (`j`) receives; any other message that leaves a channel was dropped (crash,
    partition, lost) and ends in a cross; what is still queued at the end runs off the bottom.
  * inferred: records without channels (simulator, real ensemble). A receive is known from
    the action and its parameters (`<Role>Process<MSG>(i, j)`, `FLEHandleNotmsg(i, j)`, ...);
    its send is the first earlier step of j that can emit that message to i (same zxid when
    both say) after the previous message matched on the link j -> i (links are FIFO) and after
    the link was last cut (crash, LOOKING, partition). Steps that say nothing about messages
    are boxes only.
- A receive with no send is drawn with a red "?" and listed as an orphan, never dropped. A
  receive that leaves its message queued (FLE's finalize wait, on a better vote) is a peek.
- Text is escaped; every arrow carries `data-from`, `data-to`, `data-send`, `data-recv` and
  `data-mtype`, lifelines `data-server`, step boxes `data-step`, so tests can read the chart.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zkref.conform.tlavalue import ModelValue, TlaFn, TlaParseError, TlaSet, parse_value

__all__ = [
    "Chart",
    "Message",
    "Step",
    "build_chart",
    "load",
    "load_lines",
    "main",
    "render_html",
    "render_svg",
]

ANY = 0  # a send to "whichever server receives it" (broadcasts, sends to the leader)

# receive actions: the message type they take from j (None: from the record's mode)
RECEIVES: dict[str, str | None] = {
    "LeaderProcessFOLLOWERINFO": "FOLLOWERINFO",
    "FollowerProcessLEADERINFO": "LEADERINFO",
    "LeaderProcessACKEPOCH": "ACKEPOCH",
    "FollowerProcessSyncMessage": None,
    "FollowerProcessNEWLEADER": "NEWLEADER",
    "LeaderProcessACKLD": "ACKLD",
    "FollowerProcessUPTODATE": "UPTODATE",
    "FollowerProcessPROPOSAL": "PROPOSAL",
    "LeaderProcessACK": "ACK",
    "FollowerProcessCOMMIT": "COMMIT",
    "FLEHandleNotmsg": "NOTIFICATION",
    # the finalize wait takes a notification; a better one ends the wait and stays queued
    # (`waiting` turns false) for the FLEHandleNotmsg that follows: see `_receive`
    "FLEFinalizeWaitNotmsg": "NOTIFICATION",
    "FLEReplyDecided": "NOTIFICATION",  # a decided server takes a notification, answers it
    "ignored": "",  # the implementation dropped a message from j: any type
}
SYNC_TYPES = ("DIFF", "TRUNC", "SNAP")
FAULTS = {"NodeCrash", "NodeStart", "PartitionStart", "PartitionRecover", "LoseMessage"}
BOX_W, ROW_H, COL_W, LEFT, TOP = 176, 40, 230, 20, 64


@dataclass(slots=True)
class Step:
    index: int
    action: str
    node: int | None
    params: Any = None
    label: str = ""  # parameters as text
    post: dict[int, dict[str, Any]] = field(default_factory=dict)  # per server, what changed
    msgs: dict[tuple[int, int], list[Any]] | None = None  # the channels after the step


@dataclass(slots=True)
class Message:
    frm: int
    to: int
    mtype: str
    send: int | None  # step index (None: orphan receive)
    recv: int | None  # step index (None: dropped or still in flight)
    detail: str = ""
    dropped_at: int | None = None  # step at which a cut dropped it

    @property
    def orphan(self) -> bool:
        return self.send is None


@dataclass(slots=True)
class Chart:
    title: str
    servers: list[int]
    steps: list[Step]
    messages: list[Message]
    mode: str  # "exact" or "inferred"
    notes: dict[int, str] = field(default_factory=dict)  # step index -> remark

    @property
    def orphans(self) -> list[Message]:
        return [m for m in self.messages if m.orphan]


# ---------------------------------------------------------------------- loading


def _server(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, ModelValue):
        m = re.fullmatch(r"[A-Za-z_]*(\d+)", v.name)
        return int(m.group(1)) if m else None
    return None


def _py(v: Any) -> Any:
    """A TLA+ value as plain Python: functions over servers become dicts keyed by int."""
    if isinstance(v, TlaFn):
        out: dict[Any, Any] = {}
        for k, x in v.pairs:
            s = _server(k)
            out[s if s is not None else str(k)] = _py(x)
        return out
    if isinstance(v, TlaSet):
        return [_py(x) for x in v.items]
    if isinstance(v, tuple):
        return [_py(x) for x in v]
    if isinstance(v, dict):
        return {k: _py(x) for k, x in v.items()}
    if isinstance(v, ModelValue):
        s = _server(v)
        return s if s is not None else v.name
    return v


def _tla(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return _py(parse_value(text))
    except TlaParseError:
        return text


def _per_server(value: Any, servers: list[int]) -> dict[int, Any] | None:
    if isinstance(value, dict) and value and all(isinstance(k, int) for k in value):
        return {int(k): x for k, x in value.items()}
    if isinstance(value, dict) and value and all(str(k).isdigit() for k in value):
        return {int(k): x for k, x in value.items()}
    if isinstance(value, list) and servers and len(value) == len(servers):
        return {s: value[n] for n, s in enumerate(sorted(servers))}
    return None


def _channels(value: Any, servers: list[int]) -> dict[tuple[int, int], list[Any]] | None:
    outer = _per_server(value, servers)
    if outer is None:
        return None
    out: dict[tuple[int, int], list[Any]] = {}
    for a, row in outer.items():
        inner = _per_server(row, servers)
        if inner is None:
            return None
        for b, q in inner.items():
            out[(a, b)] = list(q) if isinstance(q, list) else []
    return out


def _params_of(raw: Any) -> tuple[Any, str]:
    """(parameters as Python, as text) from a record's `params` (JSON or TLA+ text)."""
    if isinstance(raw, str):
        v = _tla(raw)
        if isinstance(v, dict) and "params" in v:
            v = v["params"]
        text = raw if len(raw) < 60 else raw[:57] + "..."
        return v, re.sub(r"^\[name \|-> \"\w+\", params \|-> (.*)\]$", r"\1", text)
    if isinstance(raw, dict):
        shown = {k: v for k, v in raw.items() if k not in ("txn", "i")}
        return raw, ", ".join(f"{k}={_short(v)}" for k, v in shown.items())
    if isinstance(raw, list):
        return raw, ", ".join(_short(v) for v in raw)
    return raw, ""


def _short(v: Any) -> str:
    if isinstance(v, int) and not isinstance(v, bool) and v >= 1 << 32:
        return _zxid_text(v)
    if isinstance(v, list):
        return "[" + ",".join(_short(x) for x in v) + "]"
    return str(v)


def _zxid_text(z: Any) -> str:
    """A zxid as `epoch:counter` from a 64-bit int, a [e, c] pair or a record holding one."""
    if isinstance(z, dict):
        z = z.get("zxid", z)
    if isinstance(z, bool):
        return str(z)
    if isinstance(z, int):
        return f"{z >> 32}:{z & 0xFFFFFFFF}"
    if isinstance(z, list) and len(z) == 2 and all(isinstance(x, int) for x in z):
        return f"{z[0]}:{z[1]}"
    return str(z)


def _node_of(action: str, node: Any, params: Any, servers: list[int]) -> int | None:
    if isinstance(node, int) and node in servers:
        return node
    if isinstance(params, dict) and isinstance(params.get("i"), int):
        return int(params["i"])
    if isinstance(params, list) and params and isinstance(params[0], int):
        if action == "ElectLeader" and len(params) == 2 and isinstance(params[1], list):
            return int(params[0])
        return int(params[0]) if action != "ElectLeader" else None
    return None


def _split_post(
    post: dict[str, Any], node: int | None, servers: list[int]
) -> tuple[dict[int, dict[str, Any]], dict[tuple[int, int], list[Any]] | None]:
    """Per-server variables and the channels from a record's `post` (local or global)."""
    values = {k: _tla(v) for k, v in post.items()}
    msgs = _channels(values.pop("msgs"), servers) if "msgs" in values else None
    per: dict[int, dict[str, Any]] = {}
    glob = any(_per_server(values.get(k), servers) is not None for k in ("state", "online"))
    for k, v in values.items():
        ps = _per_server(v, servers) if glob else None
        if ps is not None:
            for s, x in ps.items():
                per.setdefault(s, {})[k] = x
        elif node is not None and not glob:
            per.setdefault(node, {})[k] = v
    return per, msgs


def _servers_from(values: list[dict[str, Any]]) -> list[int]:
    for post in values:
        for k in ("state", "online", "currentEpoch", "acceptedEpoch"):
            if k in post:
                v = _tla(post[k])
                if isinstance(v, list) and v:  # a sequence indexed by server
                    return list(range(1, len(v) + 1))
                ps = _per_server(v, [])
                if ps:
                    return sorted(ps)
    return []


def load_lines(lines: Sequence[str], title: str = "trace") -> tuple[list[int], list[Step], str]:
    """(servers, steps, spec) from NDJSON lines, or from one JSON object (a stored TLC path)."""
    text = "\n".join(lines).strip()
    if text.startswith("{") and '"steps"' in text[:200_000] and "\n{" not in text:
        return _load_tlc_path(json.loads(text))
    rows = [json.loads(x) for x in lines if x.strip()]
    if not rows or rows[0].get("kind") != "header":
        raise ValueError(f"{title}: the first line must be a trace header")
    head, recs = rows[0], rows[1:]
    servers = list(head.get("servers") or _servers_from([r.get("post") or {} for r in recs]))
    steps: list[Step] = []
    for r in recs:
        params, label = _params_of(r.get("params"))
        node = _node_of(str(r["action"]), r.get("node"), params, servers)
        per, msgs = _split_post(r.get("post") or {}, node, servers)
        steps.append(Step(len(steps), str(r["action"]), node, params, label, per, msgs))
    return servers, steps, str(head.get("spec", ""))


def _load_tlc_path(obj: dict[str, Any]) -> tuple[list[int], list[Step], str]:
    state: dict[str, Any] = dict(obj.get("initial") or {})
    state.pop("lastAction", None)
    servers = _servers_from([state])
    per, msgs = _split_post(state, None, servers)
    steps = [Step(0, "Init", None, None, "", per, msgs)]
    for st in obj.get("steps", []):
        state.update(st.get("changed") or {})
        state.pop("lastAction", None)
        params, label = _params_of(st.get("params"))
        node = _node_of(str(st["action"]), None, params, servers)
        per, msgs = _split_post(state, node, servers)
        steps.append(Step(len(steps), str(st["action"]), node, params, label, per, msgs))
    return servers, steps, str(obj.get("spec", ""))


def load(path: Path) -> tuple[list[int], list[Step], str]:
    return load_lines(path.read_text().splitlines(), str(path))


# ---------------------------------------------------------------------- matching


def _peer(step: Step) -> int | None:
    p = step.params
    if isinstance(p, dict) and isinstance(p.get("j"), int):
        return int(p["j"])
    if isinstance(p, list) and len(p) >= 2 and isinstance(p[1], int):
        return int(p[1])
    return None


def _msg_type(m: Any) -> str:
    if isinstance(m, dict):
        if "mtype" in m:
            return str(m["mtype"])
        if "leader" in m:
            return "NOTIFICATION"
    return "MSG"


def _msg_detail(m: Any) -> str:
    if not isinstance(m, dict):
        return ""
    if "txn" in m:
        return _zxid_text(m["txn"])
    if m.get("mtype") in ("DIFF", "TRUNC", "SNAP") and m.get("txns"):
        return f"{_zxid_text(m['zxid'])} +{len(m['txns'])}"
    if "zxid" in m and m.get("mtype") not in ("FOLLOWERINFO",):
        return _zxid_text(m["zxid"])
    if "epoch" in m and "leader" not in m:
        return f"e{m['epoch']}"
    if "leader" in m:
        return f"vote {m['leader']} r{m.get('round', '?')}"
    return ""


def _match_exact(servers: list[int], steps: list[Step]) -> list[Message]:
    """Messages from the channels' diffs, step by step (FIFO queues)."""
    queues: dict[tuple[int, int], list[Message]] = {}
    prev: dict[tuple[int, int], list[Any]] = {}
    out: list[Message] = []
    for st in steps:
        now = st.msgs or {}
        received = False
        for link in sorted(set(prev) | set(now)):
            old, new = prev.get(link, []), now.get(link, [])
            # how many left the head: with equal messages queued several splits fit, and a
            # receive on this link takes its head
            mine = st.node == link[1] and _peer(st) == link[0] and st.action not in FAULTS
            order = ([1] if mine and old else []) + list(range(len(old) + 1))
            k = next(k for k in order if old[k:] == new[: len(old) - k])
            q = queues.setdefault(link, [])
            for n in range(k):
                m = q.pop(0) if q else None
                recv_here = (
                    n == 0
                    and st.node == link[1]
                    and _peer(st) == link[0]
                    and st.action not in FAULTS
                )
                if m is None:  # taken from a channel nobody was seen to fill
                    m = Message(link[0], link[1], _msg_type(old[n]), None, None)
                    m.detail = _msg_detail(old[n])
                    out.append(m)
                if recv_here:
                    m.recv = st.index
                    received = True
                else:
                    m.dropped_at = st.index
            for x in new[len(old) - k :]:
                m = Message(link[0], link[1], _msg_type(x), st.index, None, _msg_detail(x))
                q.append(m)
                out.append(m)
        want = RECEIVES.get(st.action, "-")
        frm = _peer(st)
        if want != "-" and not received and st.node is not None and frm is not None:
            link = (frm, st.node)
            # a receive that left its message queued (FLE's finalize wait puts a better vote
            # back) is a peek; one that took nothing from its channel is an orphan
            if not (prev.get(link) and prev.get(link) == now.get(link)):
                out.append(Message(frm, st.node, want or "?", None, st.index))
        prev = now
    return out


@dataclass(slots=True)
class _Cand:
    pos: tuple[int, int]  # (step, order within the step)
    frm: int
    to: int  # ANY: any receiver (or any of `among`)
    mtype: str
    zxid: str | None
    definite: bool
    many: bool = False  # may stand for several messages (count unknown)
    among: frozenset[int] | None = None  # ANY restricted to these
    used_by: set[int] = field(default_factory=set)


def _ints(v: Any) -> list[int]:
    return [x for x in v if isinstance(x, int)] if isinstance(v, list) else []


def _zx(v: Any) -> str | None:
    return None if v is None else _zxid_text(v)


def _candidates(
    st: Step,
    prev_epoch: dict[int, Any],
    decided: set[int],
    infos: dict[int, set[int]],
    role: dict[int, Any],
    acklds: dict[int, set[int]],
    zab: dict[int, Any],
) -> list[_Cand]:
    """What step `st` can have sent, from its action and parameters."""
    i, j, p, a = st.node, _peer(st), st.params, st.action
    post = st.post.get(i, {}) if i is not None else {}
    out: list[_Cand] = []

    def add(
        frm: int,
        to: int,
        mtype: str,
        zxid: str | None = None,
        *,
        definite: bool = True,
        many: bool = False,
        among: frozenset[int] | None = None,
    ) -> None:
        out.append(_Cand((st.index, len(out)), frm, to, mtype, zxid, definite, many, among))

    if a == "ElectLeader":
        q = _ints(p.get("Q")) if isinstance(p, dict) else []
        if isinstance(p, list):
            q = _ints(p[1]) if len(p) == 2 and isinstance(p[1], list) else _ints(p)
        for x in q:
            if i is not None and x != i:
                add(x, i, "FOLLOWERINFO")
    elif a == "FLEReplyDecided" and i is not None and j is not None:
        add(i, j, "NOTIFICATION")
    elif a in ("FollowLeader", "FLERestart", "FLENotmsgTimeout", "Init") and i is not None:
        if a == "FollowLeader":
            to = j if j is not None else (_ints(p)[0] if _ints(p) else None)
            if to is not None:
                add(i, to, "FOLLOWERINFO")
        else:
            add(i, ANY, "NOTIFICATION", many=False)
    if i is None:
        if a == "Init" and any("currentVote" in v for v in st.post.values()):
            for s in st.post:  # FLE: every server starts by broadcasting its own vote
                add(s, ANY, "NOTIFICATION")
        return out
    if a == "LeaderProcessFOLLOWERINFO":
        e = post.get("acceptedEpoch")
        if e is not None and e != prev_epoch.get(i):
            # the epoch is decided: LEADERINFO to every follower heard from so far
            add(i, ANY, "LEADERINFO", among=frozenset(infos.get(i, set())))
        elif (i in decided or e is None) and j is not None:
            add(i, j, "LEADERINFO", definite=e is not None)
    elif a == "FollowerProcessLEADERINFO" and j is not None and post.get("state") != "LOOKING":
        add(i, j, "ACKEPOCH")
    elif a == "LeaderSyncFollower" and j is not None:
        mode = p.get("mode") if isinstance(p, dict) else None
        for t in [str(mode)] if mode in SYNC_TYPES else SYNC_TYPES:
            add(i, j, t, definite=mode is not None)
        add(i, j, "NEWLEADER")
    elif a == "FollowerProcessNEWLEADER" and j is not None:
        add(i, j, "ACKLD", definite=post.get("nlPhase") == "acked")
    elif a == "FollowerReplyACKLD":
        add(i, ANY, "ACKLD")
        add(i, ANY, "ACK", None, many=True, definite=False)
    elif a == "LeaderProcessACKLD":
        if post.get("zabState") == "BROADCAST" and zab.get(i) not in (None, "BROADCAST"):
            # a quorum of NEWLEADER ACKs: UPTODATE to every follower that sent one
            add(i, ANY, "UPTODATE", among=frozenset(acklds.get(i, set())))
        elif j is not None and post.get("zabState") == "BROADCAST":
            add(i, j, "UPTODATE")  # a follower joining an established leader
        elif "zabState" not in post:
            add(i, ANY, "UPTODATE", definite=False)
    elif a == "LeaderProcessRequest":
        add(i, ANY, "PROPOSAL", _zx(p.get("txn")) if isinstance(p, dict) else None)
    elif a == "FollowerProcessPROPOSAL" and j is not None:
        add(i, j, "ACK", _zx(p.get("zxid")) if isinstance(p, dict) else None, definite=False)
    elif a == "NodeFsyncLog":
        new = p.get("new") if isinstance(p, dict) else None
        if post.get("state", role.get(i)) == "LEADING":  # its own ACK may commit
            add(i, ANY, "COMMIT", None, many=True, definite=False)
        elif isinstance(new, list):
            for z in new:
                add(i, ANY, "ACK", _zx(z))
        else:
            add(i, ANY, "ACK", None, many=True, definite=False)
    elif a in ("LeaderProcessACK",):
        com = p.get("committed") if isinstance(p, dict) else None
        if isinstance(com, list):
            for z in com:
                add(i, ANY, "COMMIT", _zx(z))
        else:
            add(i, ANY, "COMMIT", None, many=True, definite=False)
    elif a == "FLEHandleNotmsg":
        vote = post.get("currentVote")
        # a LOOKING server that changed its vote broadcasts it; otherwise it may answer j
        changed = vote is not None and vote != prev_epoch.get(-i)
        add(i, ANY, "NOTIFICATION", definite=changed and post.get("state") == "LOOKING")
    return out


def _receive(st: Step) -> tuple[int, str, str | None] | None:
    """(sender, message type, zxid) that step `st` takes, or None when it takes nothing."""
    if st.action not in RECEIVES or st.node is None:
        return None
    if st.action == "FLEFinalizeWaitNotmsg" and st.post.get(st.node, {}).get("waiting") is False:
        return None  # re-queued, not taken: the next FLEHandleNotmsg takes it
    j = _peer(st)
    if j is None:
        return None
    want = RECEIVES[st.action]
    p = st.params if isinstance(st.params, dict) else {}
    if want is None:
        mode = p.get("mode")
        want = str(mode) if mode in SYNC_TYPES else "SYNC"
    zxid = _zx(p["zxid"]) if want in ("PROPOSAL", "ACK", "COMMIT") and "zxid" in p else None
    return j, want, zxid


def _type_ok(want: str, mtype: str) -> bool:
    if want == "":
        return True
    if want == "SYNC":
        return mtype in SYNC_TYPES
    return mtype == want


def _match_inferred(servers: list[int], steps: list[Step]) -> list[Message]:
    cands: dict[int, list[_Cand]] = {s: [] for s in servers}
    cursor: dict[tuple[int, int], tuple[int, int]] = {}  # link -> last matched position
    prev_epoch: dict[int, Any] = {}
    decided: set[int] = set()
    infos: dict[int, set[int]] = {}  # leader -> followers whose FOLLOWERINFO it took
    role: dict[int, Any] = {}
    down: set[int] = set()
    zab: dict[int, Any] = {}  # zabState
    acklds: dict[int, set[int]] = {}  # leader -> followers whose NEWLEADER ACK it took
    out: list[Message] = []

    def cut(s: int, at: int) -> None:
        for o in servers:
            for link in ((s, o), (o, s)):
                cursor[link] = max(cursor.get(link, (-1, -1)), (at, -1))

    for st in steps:
        i = st.node
        rcv = _receive(st)
        if rcv is not None and i is not None:
            j, want, zxid = rcv
            last = cursor.get((j, i), (-1, -1))
            pool = [
                c
                for c in cands.get(j, [])
                if (c.pos > last or (c.many and c.pos == last))
                and (c.to == i or (c.to == ANY and (c.among is None or i in c.among)))
                and _type_ok(want, c.mtype)
                and (zxid is None or c.zxid is None or c.zxid == zxid)
                and (i not in c.used_by or c.many)
            ]
            best = next((c for c in pool if c.definite), None) or (pool[0] if pool else None)
            if best is None:
                out.append(Message(j, i, want or "?", None, st.index))
            else:
                best.used_by.add(i)
                cursor[(j, i)] = best.pos
                out.append(
                    Message(j, i, best.mtype, best.pos[0], st.index, zxid or best.zxid or "")
                )
        if st.action == "LeaderProcessFOLLOWERINFO" and i is not None and rcv is not None:
            infos.setdefault(i, set()).add(rcv[0])
        if st.action == "LeaderProcessACKLD" and i is not None and rcv is not None:
            acklds.setdefault(i, set()).add(rcv[0])
        if i is not None and st.action == "NodeStart":
            down.discard(i)
            cut(i, st.index)
        if i is not None and st.action in ("ElectLeader", "FollowLeader"):
            # new connections: whatever the old ones carried is gone
            q = st.params.get("Q") if isinstance(st.params, dict) else st.params
            joining = [i, *(_ints(q) if st.action == "ElectLeader" else [])]
            for x in joining:
                cut(x, st.index)
                role[x] = "LEADING" if x == i and st.action == "ElectLeader" else "FOLLOWING"
        for c in _candidates(st, prev_epoch, decided, infos, role, acklds, zab):
            if c.frm not in down:  # a crashed server sends nothing
                cands.setdefault(c.frm, []).append(c)
        if i is not None and st.action == "NodeCrash":
            down.add(i)
        if i is not None:
            post = st.post.get(i, {})
            if st.action == "LeaderProcessFOLLOWERINFO" and post.get(
                "acceptedEpoch"
            ) != prev_epoch.get(i):
                decided.add(i)
            if (
                st.action in ("ElectLeader", "NodeCrash")
                or post.get("state", "LEADING") != "LEADING"
            ):
                decided.discard(i)
                infos.pop(i, None)
                acklds.pop(i, None)
            if "acceptedEpoch" in post:
                prev_epoch[i] = post["acceptedEpoch"]
            if "currentVote" in post:
                prev_epoch[-i] = post["currentVote"]
            # a Zab server that goes back to LOOKING drops its connections (FLE's do not)
            went_looking = (
                post.get("state") == "LOOKING"
                and role.get(i) not in (None, "LOOKING")
                and not st.action.startswith("FLE")
            )
            if st.action == "NodeCrash" or went_looking:
                cut(i, st.index)
            if "state" in post:
                role[i] = post["state"]
            if "zabState" in post:
                zab[i] = post["zabState"]
            if st.action in ("PartitionStart",) and _peer(st) is not None:
                j2 = _peer(st)
                assert j2 is not None
                for link in ((i, j2), (j2, i)):
                    cursor[link] = max(cursor.get(link, (-1, -1)), (st.index, -1))
    return out


def build_chart(
    servers: list[int], steps: list[Step], title: str = "trace", notes: dict[int, str] | None = None
) -> Chart:
    exact = any(st.msgs is not None for st in steps)
    msgs = _match_exact(servers, steps) if exact else _match_inferred(servers, steps)
    return Chart(title, servers, steps, msgs, "exact" if exact else "inferred", dict(notes or {}))


# ---------------------------------------------------------------------- drawing


def _esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def _view(spec: str, vals: dict[str, Any]) -> dict[str, str]:
    """The few things worth showing of a server: role, epoch or round, last zxid or vote."""
    out: dict[str, str] = {}
    if "state" in vals:
        out["role"] = str(vals["state"])
    if "online" in vals and vals["online"] is False:
        out["role"] = "DOWN"
    if "currentEpoch" in vals:
        out["epoch"] = f"e{vals['currentEpoch']}"
    if "acceptedEpoch" in vals:
        out["accepted"] = f"acc{vals['acceptedEpoch']}"
    if "logicalClock" in vals:
        out["epoch"] = f"round {vals['logicalClock']}"
    h = vals.get("history")
    if isinstance(h, list):
        out["zxid"] = "z=" + (_zxid_text(h[-1]) if h else "0:0")
        d = vals.get("disk")
        durable = h[:d] if isinstance(d, int) and not isinstance(d, bool) else d
        if isinstance(durable, list) and durable != h:
            out["disk"] = "disk=" + (_zxid_text(durable[-1]) if durable else "0:0")
        elif isinstance(durable, list):
            out["disk"] = ""
    v = vals.get("currentVote")
    if isinstance(v, dict):
        out["zxid"] = f"vote {v.get('leader')}"
    return out


def _lx(chart: Chart, s: int) -> float:
    return LEFT + COL_W * chart.servers.index(s) + COL_W / 2


def _ry(k: int) -> float:
    return TOP + ROW_H * k + ROW_H / 2 - 6


def render_svg(chart: Chart) -> str:
    n = len(chart.steps)
    width = LEFT * 2 + COL_W * max(len(chart.servers), 1) + 260
    height = TOP + ROW_H * n + 50
    bottom = TOP + ROW_H * n + 10
    o: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="ui-monospace,monospace" font-size="11">',
        "<defs>"
        '<marker id="arr" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7"'
        ' orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#2b5d9b"/></marker>'
        '<marker id="arrbad" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7"'
        ' markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"'
        ' fill="#c0262d"/></marker></defs>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{_esc(chart.title)}</text>',
        f'<text x="{LEFT}" y="34" fill="#555">messages matched: {_esc(chart.mode)}'
        f" ({len(chart.steps)} steps, {len(chart.messages)} messages,"
        f" {len(chart.orphans)} orphan receives)</text>",
    ]
    # lifelines, dashed while the server is down
    down: dict[int, list[tuple[int, int]]] = {s: [] for s in chart.servers}
    since: dict[int, int] = {}
    for st in chart.steps:
        if st.node is None:
            continue
        if st.action == "NodeCrash":
            since[st.node] = st.index
        elif st.action == "NodeStart" and st.node in since:
            down[st.node].append((since.pop(st.node), st.index))
    for s, k in since.items():
        down[s].append((k, n))
    for s in chart.servers:
        x = _lx(chart, s)
        o.append(f'<g class="lifeline" data-server="{s}" data-x="{x:.1f}">')
        o.append(
            f'<text x="{x:.1f}" y="{TOP - 12}" text-anchor="middle" font-size="13"'
            f' font-weight="bold">server {s}</text>'
        )
        o.append(f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{bottom}" stroke="#888"/>')
        for a, b in down[s]:
            y1, y2 = _ry(a), (_ry(b) if b < n else bottom)
            o.append(
                f'<line class="down" x1="{x:.1f}" y1="{y1:.1f}" x2="{x:.1f}" y2="{y2:.1f}"'
                ' stroke="white" stroke-width="3"/>'
            )
            o.append(
                f'<line x1="{x:.1f}" y1="{y1:.1f}" x2="{x:.1f}" y2="{y2:.1f}"'
                ' stroke="#c0262d" stroke-dasharray="3 4"/>'
            )
        o.append("</g>")
    # partitions
    for st in chart.steps:
        j = _peer(st)
        if st.action in ("PartitionStart", "PartitionRecover") and st.node is not None and j:
            y = _ry(st.index)
            colour = "#c0262d" if st.action == "PartitionStart" else "#17823b"
            x1, x2 = sorted((_lx(chart, st.node), _lx(chart, j)))
            o.append(
                f'<line class="partition" x1="{x1:.1f}" y1="{y + 12:.1f}" x2="{x2:.1f}"'
                f' y2="{y + 12:.1f}" stroke="{colour}" stroke-width="2"'
                ' stroke-dasharray="8 4"/>'
            )
    # messages
    for m in chart.messages:
        o.append(_arrow(chart, m))
    # step boxes and state changes
    shown: dict[int, dict[str, str]] = {}
    down_now: set[int] = set()
    for st in chart.steps:
        y = _ry(st.index)
        if st.node is not None and st.node in chart.servers:
            x = _lx(chart, st.node)
        else:
            x = LEFT + COL_W * len(chart.servers) + 100
        fill = {"NodeCrash": "#f6c1c1", "NodeStart": "#c9ecc9", "PartitionStart": "#f6d9a8"}.get(
            st.action, "#eef3fa"
        )
        title = f"{st.action}({st.label})" if st.label else st.action
        o.append(
            f'<g class="step" data-step="{st.index}" data-action="{_esc(st.action)}"'
            f' data-node="{st.node if st.node is not None else ""}">'
        )
        o.append(f"<title>{_esc(title)}</title>")
        o.append(
            f'<rect x="{x - BOX_W / 2:.1f}" y="{y - 9:.1f}" width="{BOX_W}" height="18"'
            f' rx="3" fill="{fill}" stroke="#6b86ab"/>'
        )
        name = st.action if len(st.action) <= 27 else st.action[:26] + "…"
        o.append(f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle">{_esc(name)}</text>')
        o.append(
            f'<text x="{LEFT - 4 + 0:.1f}" y="{y + 4:.1f}" fill="#999"'
            f' font-size="9">{st.index}</text>'
        )
        o.append("</g>")
        if st.action == "NodeCrash" and st.node is not None:
            down_now.add(st.node)
        if st.action == "NodeStart" and st.node is not None:
            down_now.discard(st.node)
        for s, vals in sorted(st.post.items()):
            view = _view("", vals)
            if s in down_now:
                view["role"] = "DOWN"
            old = shown.get(s, {})
            new = {**old, **view}
            if new != old and s in chart.servers:
                shown[s] = new
                txt = " ".join(new[k] for k in ("role", "epoch", "zxid", "disk") if new.get(k))
                o.append(
                    f'<text class="state" data-server="{s}" data-step="{st.index}"'
                    f' x="{_lx(chart, s) + 4:.1f}" y="{y + 21:.1f}" fill="#1f5f99"'
                    f' font-size="9">{_esc(txt)}</text>'
                )
        if st.index in chart.notes:  # a remark, one line per ": "-separated part
            nx = LEFT + COL_W * len(chart.servers) + 10
            for k, part in enumerate(chart.notes[st.index].split(": ")):
                o.append(
                    f'<text class="note" x="{nx}" y="{y + 4 + 13 * k:.1f}" fill="#c0262d"'
                    f' font-weight="bold">{_esc(part)}</text>'
                )
    o.append("</svg>")
    return "\n".join(o)


def _arrow(chart: Chart, m: Message) -> str:
    attrs = (
        f'class="msg{" orphan" if m.orphan else ""}{" lost" if m.dropped_at is not None else ""}"'
        f' data-from="{m.frm}" data-to="{m.to}" data-mtype="{_esc(m.mtype)}"'
        f' data-send="{"" if m.send is None else m.send}"'
        f' data-recv="{"" if m.recv is None else m.recv}"'
    )
    label = f"{m.mtype} {m.detail}".strip()
    if m.frm not in chart.servers or m.to not in chart.servers:
        return f"<g {attrs}/>"
    xf, xt = _lx(chart, m.frm), _lx(chart, m.to)
    sign = 1 if xt > xf else -1
    if m.send is None:  # orphan: a red question mark pointing at the receive
        assert m.recv is not None
        y = _ry(m.recv)
        x2 = xt - sign * BOX_W / 2
        x1 = x2 - sign * 40
        return (
            f'<g {attrs}><line x1="{x1:.1f}" y1="{y - 14:.1f}" x2="{x2:.1f}" y2="{y:.1f}"'
            ' stroke="#c0262d" stroke-width="1.5" stroke-dasharray="4 3"'
            ' marker-end="url(#arrbad)"/>'
            f'<text x="{x1 - sign * 4:.1f}" y="{y - 14:.1f}" fill="#c0262d" font-size="14"'
            f' font-weight="bold" text-anchor="middle">?</text>'
            f'<text x="{x1:.1f}" y="{y - 22:.1f}" fill="#c0262d" font-size="9"'
            f' text-anchor="middle">orphan {_esc(label)}: no send</text></g>'
        )
    ys = _ry(m.send)
    sender_box = chart.steps[m.send].node == m.frm
    x1 = xf + (sign * BOX_W / 2 if sender_box else 0)
    if m.recv is not None:
        y2 = _ry(m.recv)
        x2 = xt - sign * BOX_W / 2
        body = (
            f'<line x1="{x1:.1f}" y1="{ys:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#2b5d9b"'
            ' stroke-width="1.2" marker-end="url(#arr)"/>'
        )
        end = ""
    else:  # dropped by a cut, or still queued when the trace ends
        stop = m.dropped_at if m.dropped_at is not None else len(chart.steps)
        y2 = _ry(stop) if m.dropped_at is not None else TOP + ROW_H * len(chart.steps)
        x2 = (x1 + xt) / 2
        body = (
            f'<line x1="{x1:.1f}" y1="{ys:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#999"'
            ' stroke-width="1.2" stroke-dasharray="5 3"/>'
        )
        end = (
            f'<text x="{x2:.1f}" y="{y2 + 5:.1f}" fill="#c0262d" font-size="15"'
            ' text-anchor="middle">&#215;</text>'
            if m.dropped_at is not None
            else ""
        )
    mx, my = x1 + (x2 - x1) * 0.35, ys + (y2 - ys) * 0.35
    w = 5.6 * len(label) + 4
    return (
        f"<g {attrs}>{body}{end}"
        f'<rect x="{mx - w / 2:.1f}" y="{my - 8:.1f}" width="{w:.1f}" height="11"'
        ' fill="white" fill-opacity="0.85"/>'
        f'<text x="{mx:.1f}" y="{my + 1:.1f}" text-anchor="middle" font-size="9"'
        f' fill="#1d4877">{_esc(label)}</text></g>'
    )


def render_html(chart: Chart) -> str:
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{_esc(chart.title)}</title><style>body{{font-family:system-ui,sans-serif;"
        "margin:1.5em} li{font-size:.9em}</style></head><body>"
        f"<h1>{_esc(chart.title)}</h1>"
        "<p>One lifeline per server; a box per spec action; an arrow per message (dashed and"
        " crossed: dropped; red ?: a receive whose send is not in the trace). Blue text under a"
        " box: the server's role, epoch and last zxid when they change.</p>\n"
        + render_svg(chart)
        + "\n</body></html>\n"
    )


def draw(path: Path, out: Path, title: str | None = None) -> Chart:
    servers, steps, spec = load(path)
    chart = build_chart(servers, steps, title or f"{path.name} ({spec})")
    text = render_html(chart) if out.suffix == ".html" else render_svg(chart)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return chart


# ---------------------------------------------------------------------- examples for docs


Scenario = tuple[list[str], dict[int, str]]  # trace lines, notes by step


def example_normal() -> Scenario:
    """Election, discovery, synchronization of two followers, then two writes."""
    from zkref.sim.zab_cluster import ZabCluster

    c = ZabCluster(3, seed=1)
    c.elect(c.sids[2])
    c.run_until_quiet()
    c.write(b"a")
    c.write(b"b")
    c.run_until_quiet()
    return c.trace_lines(), {}


def example_diff_trunc() -> Scenario:
    """Leader 3 logs a txn nobody else gets and crashes; 2 leads epoch 2 and syncs 1 by DIFF;
    3 comes back and is synced by TRUNC (its txn 1:2 was never committed)."""
    from zkref.sim.zab_cluster import ZabCluster

    c = ZabCluster(3, seed=2)
    s1, s2, s3 = c.sids
    c.elect(s3)
    c.run_until_quiet()
    c.write(b"a")
    c.run_until_quiet()
    c.hold(s3, s1)
    c.hold(s3, s2)
    c.write(b"b")
    c.fsync(s3)
    c.crash(s3)
    c.release(s3, s1)
    c.release(s3, s2)
    c.elect(s2, {s1, s2})
    c.run_until_quiet()
    c.restart(s3)
    c.follow(s3, s2)
    c.run_until_quiet()
    return c.trace_lines(), {}


def example_zk3911() -> Scenario:
    """ZOOKEEPER-3911/4646 with its bug flag on: follower 2 ACKs NEWLEADER before the txn it got
    by DIFF is logged; the leader commits it on that ACK while it is durable on 1 only."""
    from zkref.sim.zab_cluster import InvariantViolation, ZabCluster

    c = ZabCluster(3, seed=11, bug_ackld_before_fsync=True)
    s1, s2, s3 = c.sids
    notes: dict[int, str] = {}
    try:
        c.elect(s1)
        c.run_until_quiet()
        c.hold(s1, s2)
        c.hold(s1, s3)
        c.write()
        c.fsync(s1)
        c.crash(s1)
        c.release(s1, s2)
        c.release(s1, s3)
        c.restart(s1)
        c.crash(s3)
        c.elect(s1, {s1, s2})
        c.run_until_quiet()
    except InvariantViolation as e:
        notes[len(c.records) - 1] = f"{e.name} violated: {e.detail}"
    return c.trace_lines(), notes


SCENARIOS: dict[str, tuple[str, Any]] = {
    "zab-normal": ("Zab: election, sync, two writes (simulator, seed 1)", example_normal),
    "zab-diff-trunc": ("Zab: DIFF vs TRUNC after a leader crash (simulator)", example_diff_trunc),
    "zab-zk3911": ("ZOOKEEPER-3911/4646, bug flag on (simulator, seed 11)", example_zk3911),
}


def examples(directory: Path) -> list[Path]:
    """The pictures of docs/zab.md, from scripted simulator runs."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, (title, run) in SCENARIOS.items():
        lines, notes = run()
        servers, steps, _ = load_lines(lines, name)
        chart = build_chart(servers, steps, title, notes)
        path = directory / f"{name}.svg"
        path.write_text(render_svg(chart) + "\n")
        (directory / f"{name}.ndjson").write_text("".join(x + "\n" for x in lines))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="zkref trace draw", description="draw a trace as a message-sequence chart (SVG)"
    )
    ap.add_argument("file", nargs="?", metavar="FILE", help="NDJSON trace or TLC path (.json)")
    ap.add_argument("-o", "--out", help="OUT.svg or OUT.html (default: FILE with .svg)")
    ap.add_argument("--title")
    ap.add_argument("--examples", metavar="DIR", help="write the docs/zab.md pictures to DIR")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if args.examples:
        for p in examples(Path(args.examples)):
            print(p)
        return 0
    if not args.file:
        print("zkref trace draw: FILE is required", file=sys.stderr)
        return 2
    src = Path(args.file)
    out = Path(args.out) if args.out else src.with_suffix(".svg")
    try:
        chart = draw(src, out, args.title)
    except (OSError, ValueError, KeyError) as e:
        print(f"{src}: ERROR: {e}", file=sys.stderr)
        return 2
    print(
        f"{out}: {len(chart.steps)} steps, {len(chart.messages)} messages ({chart.mode}),"
        f" {len(chart.orphans)} orphan receives"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
