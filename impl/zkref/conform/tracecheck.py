"""Trace validation: does some behaviour of the spec explain an implementation trace?

Rules:
- A trace (zkref.conform.trace) becomes a generated TLA+ module that EXTENDS the hand-written
  wrapper `spec/trace/Trace<Spec>.tla`: `InitOK` for the leading `Init` records, `Step(k)` for
  record k (the action named by `lastAction'`, its parameters, and the post variables given;
  the rest is left to TLC's nondeterminism, as in Cirstea et al.). TLC 2.15 has no Json module,
  so the trace is compiled to TLA+ text, never read by TLC.
- TLC runs BFS with a cursor `l`. ACCEPTED: the invariant `l < TraceLen` is violated. REJECTED:
  BFS ends; its depth D says records 1..D-1 matched and record D did not. A second, small run
  (the diagnosis) prints every successor after D-1 records and which parts of record D it fails,
  so the verdict names the action and the post variables that no behaviour matches. ERROR: TLC
  or the mapping failed; the message says why.
- Generated modules, TLC's states/ and its tmp files live in a temporary directory.
- `simulate` runs TLC's random simulation on a small model of a spec and turns the behaviour
  into a trace, so the checker can be tested on traces the spec itself produced.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from zkref.conform.tlavalue import TlaParseError, TlaValue, parse_value
from zkref.conform.tlc import JAVA, TlcResult, parse_output, parse_trace, repo_root, tla2tools_jar
from zkref.conform.trace import Header, Record, Trace
from zkref.conform.tracemap import (
    SPEC_MAPS,
    Fn,
    Ids,
    Json,
    MappingError,
    Param,
    Seq,
    Set,
    SpecMap,
    T,
    tla_string,
)

MODULE = "ZkrefTrace"


class Status(StrEnum):
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A successor state TLC found for the rejected record, and what of the record it fails."""

    action: str
    params: str
    fails: tuple[str, ...]
    values: dict[str, Json]


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    spec: str
    steps: int  # records checked as steps (leading Init records and skipped ones excluded)
    matched: int = 0  # steps matched before the first divergence (= steps when accepted)
    step: int | None = None  # the first step no behaviour explains (0: the initial state)
    record: Record | None = None
    action_enabled: bool = True  # some successor had the record's action (and params)
    variables: tuple[str, ...] = ()  # post variables that no behaviour matches at `step`
    expected: dict[str, Json] = field(default_factory=dict)  # the record's values of those
    found: dict[str, Json] = field(default_factory=dict)  # the closest behaviour's values
    actions_possible: tuple[str, ...] = ()  # actions enabled at `step` (when the record's is not)
    skipped: int = 0
    message: str = ""
    tlc_seconds: float = 0.0
    diag_seconds: float = 0.0
    states: int = 0

    @property
    def accepted(self) -> bool:
        return self.status is Status.ACCEPTED

    def report(self) -> str:
        head = f"{self.status}: {self.spec} trace, {self.steps} steps"
        t = f"TLC {self.tlc_seconds:.1f}s" + (
            f" + diagnosis {self.diag_seconds:.1f}s" if self.diag_seconds else ""
        )
        return f"{head} ({t}, {self.states} distinct states)\n{self.message}".rstrip()


# --------------------------------------------------------------------------- translation


@dataclass(frozen=True, slots=True)
class Compiled:
    """TLA+ text for one record: the action and params tests and one conjunction per variable."""

    action: str
    params: str
    post: dict[str, str]
    expected: dict[str, Json]
    types: dict[str, T]


def _conj(parts: Sequence[str]) -> str:
    return " /\\ ".join(f"({p})" for p in parts) if parts else "TRUE"


def _params(m: SpecMap, ids: Ids, rec: Record) -> list[tuple[int, Param, Json]]:
    formals = m.actions.get(rec.action)
    if formals is None:
        return []
    node_first = rec.node is not None and formals and formals[0].type.name == "Sid"
    given: list[tuple[int, Param, Json]] = []
    p = rec.params
    if isinstance(p, dict):
        for k, f in enumerate(formals):
            if f.name in p:
                given.append((k, f, p[f.name]))
            elif k == 0 and node_first:
                given.append((0, f, rec.node))
        return given
    if isinstance(p, list):
        flat = not any(isinstance(x, (list, dict)) for x in p)
        if node_first and len(formals) == 2 and isinstance(formals[1].type, (Set, Seq)) and flat:
            # [node, collection] written flat: `"params": [1, 2]` for ElectLeader(i, {1, 2})
            return [(0, formals[0], rec.node), (1, formals[1], p)]
        if len(p) == len(formals):
            return [(k, f, v) for k, (f, v) in enumerate(zip(formals, p, strict=True))]
        if node_first and len(p) == len(formals) - 1:
            return [(0, formals[0], rec.node)] + [
                (k + 1, f, v) for k, (f, v) in enumerate(zip(formals[1:], p, strict=True))
            ]
        raise MappingError(
            f"{rec.action} takes {len(formals)} params ({', '.join(f.name for f in formals)}), "
            f"the record gives {len(p)}"
        )
    if node_first:
        return [(0, formals[0], rec.node)]
    return []


def compile_record(m: SpecMap, ids: Ids, rec: Record, primed: bool) -> Compiled:
    pr = "'" if primed else ""
    action = f"lastAction{pr}.name = {tla_string(rec.action)}"
    parts: list[str] = []
    ps = _params(m, ids, rec)
    formals = m.actions.get(rec.action, ())
    if ps:
        parts.append(f"Len(lastAction{pr}.params) = {len(formals)}")
    for k, f, v in ps:
        try:
            parts += f.type.constrain(f"lastAction{pr}.params[{k + 1}]", v, ids)
        except MappingError as e:
            raise MappingError(f"{rec.where()}: param {f.name}: {e}") from None
    post: dict[str, str] = {}
    types: dict[str, T] = {}
    for var, value in rec.post.items():
        if var not in m.variables:
            raise MappingError(
                f"{rec.where()}: {var!r} is not a variable of {m.spec} "
                f"(known: {', '.join(m.variables)})"
            )
        t = m.variables[var]
        lhs = f"{var}{pr}"
        if m.per_node(var) and rec.node is not None:
            assert isinstance(t, Fn)
            lhs, t = f"{lhs}[{ids.server(rec.node)}]", t.value
        try:
            post[var] = _conj(t.constrain(lhs, value, ids))
        except MappingError as e:
            raise MappingError(f"{rec.where()}: post {var}: {e}") from None
        types[var] = t
    return Compiled(action, _conj(parts), post, dict(rec.post), types)


def _constants(m: SpecMap, header: Header, inits: Sequence[Record], ids: Ids) -> dict[str, Json]:
    values: dict[str, Json] = {}
    derived = m.derive(inits, ids) if m.derive else {}
    for name, (_, default) in m.constants.items():
        if name in header.constants:
            values[name] = header.constants[name]
        elif name in derived:
            values[name] = derived[name]
        elif default is not None:
            values[name] = default
        else:
            raise MappingError(
                f"constant {name} of {m.spec} is not in the header's 'constants' "
                f"and cannot be derived from the trace"
            )
    unknown = set(header.constants) - set(m.constants)
    if unknown:
        raise MappingError(f"header constants not in {m.spec}: {', '.join(sorted(unknown))}")
    return values


def _model(m: SpecMap, ids: Ids, consts: dict[str, Json]) -> tuple[list[str], list[str]]:
    """Module definitions and cfg CONSTANTS lines for the spec's constants."""
    defs: list[str] = []
    cfg: list[str] = [f"    {v} = {v}" for v in ids.model_values()]
    defs.append("C_Server == {" + ", ".join(ids.server(n) for n in ids.servers) + "}")
    cfg.append("    Server <- C_Server")
    if m.spec == "Sessions":
        defs.append("C_Client == {" + ", ".join(ids.client(n) for n in ids.clients) + "}")
        cfg.append("    Client <- C_Client")
    for name, value in consts.items():
        t = m.constants[name][0]
        defs.append(f"C_{name} == {t.to_tla(value, ids)}")
        cfg.append(f"    {name} <- C_{name}")
    return defs, cfg


@dataclass(frozen=True, slots=True)
class Plan:
    """A trace compiled against a spec: the pieces of the generated module."""

    m: SpecMap
    ids: Ids
    defs: list[str]
    cfg_constants: list[str]
    inits: list[Record]
    init: dict[str, str]  # variable -> conjunction over all Init records
    steps: list[tuple[Record, Compiled]]
    skipped: int


def plan(trace: Trace) -> Plan:
    m = SPEC_MAPS[trace.header.spec]
    h = trace.header
    if m.spec == "Sessions" and not h.clients:
        raise MappingError("a Sessions trace needs 'clients' in its header")
    ids = m.ids(h.servers, h.clients)
    records = [r for r in trace.records if r.action not in m.skip]
    skipped = len(trace.records) - len(records)
    k = 0
    while k < len(records) and records[k].action == "Init":
        k += 1
    inits, rest = records[:k], records[k:]
    consts = _constants(m, h, inits, ids)
    defs, cfg = _model(m, ids, consts)
    init: dict[str, list[str]] = {}
    for r in inits:
        c = compile_record(m, ids, r, primed=False)
        for var, text in c.post.items():
            init.setdefault(var, []).append(text)
    steps = [(r, compile_record(m, ids, r, primed=True)) for r in rest]
    return Plan(m, ids, defs, cfg, inits, {v: _conj(t) for v, t in init.items()}, steps, skipped)


def _fails(test_action: str, test_params: str, post: dict[str, str]) -> str:
    parts = [
        f'(IF {test_action} THEN (IF {test_params} THEN {{}} ELSE {{"params"}}) ELSE {{"action"}})'
    ]
    parts += [f"(IF {text} THEN {{}} ELSE {{{tla_string(v)}}})" for v, text in post.items()]
    return " \\cup ".join(parts)


def _values(m: SpecMap, ids: Ids, rec: Record | None, vars_: Sequence[str], primed: bool) -> str:
    pr = "'" if primed else ""
    if not vars_:
        return "<<>>"
    fields = []
    for v in vars_:
        e = f"{v}{pr}"
        if rec is not None and rec.node is not None and m.per_node(v):
            e = f"{e}[{ids.server(rec.node)}]"
        fields.append(f"{v} |-> {e}")
    return "[" + ", ".join(fields) + "]"


def module_text(p: Plan, diag_step: int | None = None) -> tuple[str, str]:
    """The generated module and its cfg. `diag_step`: build the diagnosis of that step."""
    lines = [f"---- MODULE {MODULE} ----", f"EXTENDS {p.m.wrapper}"]
    mv = p.ids.model_values()
    if mv:
        lines.append("CONSTANTS " + ", ".join(mv))
    lines += p.defs
    n = len(p.steps) if diag_step is None else diag_step
    lines.append(f"TraceLen == {n}")
    lines.append("InitOK == " + _conj(list(p.init.values())))
    arms = []
    for k, (_, c) in enumerate(p.steps[:n], start=1):
        lines.append(f"S_{k} == " + _conj([c.action, c.params, *c.post.values()]))
        arms.append(f"k = {k} -> S_{k}")
    if arms:
        lines.append("Step(k) == CASE " + "\n    [] ".join(arms) + "\n    [] OTHER -> FALSE")
    else:
        lines.append("Step(k) == FALSE")
    lines.append("TraceInit == TraceInitOf(InitOK)")
    lines.append("TraceNext == TraceNextOf(TraceLen, Step)")
    lines.append("NotDone == TraceUnfinished(TraceLen)")
    cfg = ["CONSTANTS", *p.cfg_constants]
    if diag_step is None:
        cfg += ["INIT TraceInit", "NEXT TraceNext", "INVARIANT NotDone"]
    elif diag_step == 0:
        fails = " \\cup ".join(
            [f"(IF {t} THEN {{}} ELSE {{{tla_string(v)}}})" for v, t in p.init.items()]
        )
        lines.append(f"Fails == {fails or '{}'}")
        lines.append(f"Values == {_values(p.m, p.ids, None, list(p.init), False)}")
        lines.append("DiagInit == TraceDiagInitOf(Fails, Values)")
        cfg += ["INIT DiagInit", "NEXT TraceStop"]
    else:
        rec, c = p.steps[diag_step - 1]
        lines.append(f"Fails == {_fails(c.action, c.params, c.post)}")
        lines.append(f"Values == {_values(p.m, p.ids, rec, list(c.post), True)}")
        lines.append(f"DiagNext == TraceDiagNextOf({diag_step}, Step, Fails, Values)")
        cfg += ["INIT TraceInit", "NEXT DiagNext"]
    cfg.append("VIEW TraceView")
    lines.append("=" * 40)
    return "\n".join(lines) + "\n", "\n".join(cfg) + "\n"


# --------------------------------------------------------------------------- running TLC


@dataclass(frozen=True, slots=True)
class Run:
    result: TlcResult
    lines: list[str]


def run_module(
    module: str,
    tla: str,
    cfg: str,
    *,
    extra_args: Sequence[str] = (),
    timeout_s: float = 300.0,
    root: Path | None = None,
) -> Run:
    """Run TLC on a generated module next to copies of spec/*.tla and spec/trace/*.tla.

    (tlc.run_tlc only runs models/ configs; this reuses its jar lookup and output parser.)
    """
    base = root or repo_root()
    with tempfile.TemporaryDirectory(prefix="zkref-trace-") as tmp:
        work = Path(tmp)
        for src in [*(base / "spec").glob("*.tla"), *(base / "spec" / "trace").glob("*.tla")]:
            shutil.copy(src, work / src.name)
        (work / f"{module}.tla").write_text(tla)
        (work / f"{module}.cfg").write_text(cfg)
        (work / "java-tmp").mkdir()
        cmd = [
            JAVA,
            "-Xmx1g",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            f"-Djava.io.tmpdir={work / 'java-tmp'}",
            "-cp",
            str(tla2tools_jar()),
            "tlc2.TLC",
            "-workers",
            "1",
            "-metadir",
            str(work / "meta"),
            "-config",
            f"{module}.cfg",
            *extra_args,
            module,
        ]
        start = time.monotonic()
        try:
            proc = subprocess.run(
                cmd, cwd=work, capture_output=True, text=True, timeout=timeout_s, check=False
            )
            out = proc.stdout + proc.stderr
        except subprocess.TimeoutExpired:
            out = f"Error: TLC timed out after {timeout_s:.0f}s"
        seconds = time.monotonic() - start
    return Run(parse_output(module, out, seconds), out.splitlines())


def _diag_lines(lines: Sequence[str]) -> list[TlaValue]:
    """The `<<"zkref-diag", ...>>` values TLC printed (they may wrap over several lines)."""
    out: list[TlaValue] = []
    i = 0
    while i < len(lines):
        if not lines[i].replace(" ", "").startswith('<<"zkref-diag"'):
            i += 1
            continue
        buf = lines[i]
        j = i + 1
        while True:
            try:
                out.append(parse_value(buf))
                break
            except TlaParseError:
                if j >= len(lines) or j - i > 2000:
                    break
                buf += " " + lines[j]
                j += 1
        i = j
    return out


def _candidates(values: Sequence[TlaValue]) -> list[Candidate]:
    seen: dict[str, Candidate] = {}
    for v in values:
        if not (isinstance(v, tuple) and len(v) == 4):
            continue
        _, la, fails, vals = v
        name, params = "Init", ""
        if isinstance(la, dict):
            name, params = str(la.get("name")), _tla_text(la.get("params", ()))
        elif isinstance(la, str):
            name = la
        fs = tuple(sorted(str(x) for x in getattr(fails, "items", ())))
        c = Candidate(name, params, fs, {"_raw": vals})
        seen.setdefault(json.dumps([name, params, fs, repr(vals)]), c)
    return list(seen.values())


def _tla_text(v: TlaValue) -> str:
    if isinstance(v, tuple):
        return "<<" + ", ".join(_tla_text(x) for x in v) + ">>"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    name = getattr(v, "name", None)
    if isinstance(name, str):
        return name
    items = getattr(v, "items", None)
    if isinstance(items, tuple):
        return "{" + ", ".join(_tla_text(x) for x in items) + "}"
    return str(v)


def _describe(rec: Record) -> str:
    params = "" if rec.params is None else json.dumps(rec.params)
    return f"{rec.action}{'(' + params + ')' if params else ''} [{rec.where()}]"


def check_trace(trace: Trace, *, timeout_s: float = 300.0, diagnose: bool = True) -> Verdict:
    """Validate `trace` against its header's spec."""
    spec = trace.header.spec
    try:
        p = plan(trace)
    except MappingError as e:
        return Verdict(Status.ERROR, spec, 0, message=f"cannot translate the trace: {e}")
    n = len(p.steps)
    tla, cfg = module_text(p)
    run = run_module(MODULE, tla, cfg, extra_args=["-deadlock"], timeout_s=timeout_s)
    r = run.result
    base = Verdict(
        Status.ERROR,
        spec,
        n,
        skipped=p.skipped,
        tlc_seconds=r.seconds,
        states=r.distinct_states,
    )
    if r.outcome == "invariant" and r.violated == "NotDone":
        return replace(
            base,
            status=Status.ACCEPTED,
            matched=n,
            message=f"a behaviour of {spec} explains all {n} steps"
            + (f" ({p.skipped} non-spec records skipped)" if p.skipped else ""),
        )
    if r.outcome != "pass":
        msg = r.error or f"unexpected TLC outcome {r.outcome}"
        errs = [ln for ln in run.lines if ln.strip()][-12:]
        return replace(base, message=f"TLC failed: {msg}\n" + "\n".join(errs))
    # BFS finished without reaching the end: depth D = levels explored (initial = level 1)
    failing = r.depth if r.distinct_states > 0 else 0
    failing = min(failing, n)
    rec = p.steps[failing - 1][0] if failing >= 1 else (p.inits[0] if p.inits else None)
    v = replace(base, status=Status.REJECTED, matched=max(failing - 1, 0), step=failing, record=rec)
    if failing == 0:
        v = replace(v, message="no initial state of the spec matches the trace's Init records")
    else:
        v = replace(
            v,
            message=f"no behaviour explains step {failing} of {n}: "
            f"{_describe(p.steps[failing - 1][0])} (steps 1..{failing - 1} matched)",
        )
    if diagnose:
        v = _diagnose(p, v, timeout_s)
    return v


def _diagnose(p: Plan, v: Verdict, timeout_s: float) -> Verdict:
    k = v.step or 0
    tla, cfg = module_text(p, diag_step=k)
    run = run_module(MODULE, tla, cfg, extra_args=["-deadlock"], timeout_s=timeout_s)
    cands = _candidates(_diag_lines(run.lines))
    v = replace(v, diag_seconds=run.result.seconds)
    if k == 0:
        rec_types: dict[str, T] = {}
        expected: dict[str, Json] = {}
        for r in p.inits:
            c = compile_record(p.m, p.ids, r, primed=False)
            rec_types |= c.types
            expected |= c.expected
    else:
        rec, comp = p.steps[k - 1]
        rec_types, expected = comp.types, comp.expected
    if not cands:
        return replace(
            v,
            action_enabled=False,
            message=v.message + "\n  no successor state at all (the diagnosis run found none)",
        )
    same = [c for c in cands if "action" not in c.fails and "params" not in c.fails]
    if k > 0 and not same:
        names = tuple(sorted({c.action for c in cands}))
        named = [c for c in cands if "action" not in c.fails]
        rec = p.steps[k - 1][0]
        if rec.action not in p.m.actions:
            why = f"{rec.action!r} is not an action of {p.m.spec}"
        elif named:
            got = ", ".join(sorted({c.params for c in named}))
            why = f"{rec.action} is enabled here only with params {got}"
        else:
            why = f"{rec.action} is not enabled in any state reached by steps 1..{k - 1}"
        return replace(
            v,
            action_enabled=False,
            actions_possible=names,
            message=v.message + f"\n  {why}; enabled here: {', '.join(names)}",
        )
    best = min(len(c.fails) for c in same)
    closest = [c for c in same if len(c.fails) == best]
    first = closest[0]
    found: dict[str, Json] = {}
    raw = first.values.get("_raw")
    if isinstance(raw, dict):
        for var in first.fails:
            if var in raw and var in rec_types:
                try:
                    found[var] = rec_types[var].from_tla(raw[var], p.ids)
                except (MappingError, TypeError, ValueError):
                    found[var] = _tla_text(raw[var])
    exp = {var: expected[var] for var in first.fails if var in expected}
    alts = sorted({", ".join(c.fails) for c in closest})
    lines = [
        f"  post variable(s) no behaviour matches: {', '.join(first.fails)}"
        + (f" (alternatives: {' | '.join(alts)})" if len(alts) > 1 else ""),
    ]
    for var in first.fails:
        a, b = _narrow(exp.get(var), found.get(var))
        lines.append(f"    {var}: trace {json.dumps(a)}")
        lines.append(f"    {' ' * len(var)}  spec  {json.dumps(b)}")
    return replace(
        v,
        variables=first.fails,
        expected=exp,
        found=found,
        message=v.message + "\n" + "\n".join(lines),
    )


def _narrow(a: Json, b: Json) -> tuple[Json, Json]:
    """Of two objects, only the keys whose values differ (recursively), to keep messages short."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = [k for k in a if a.get(k) != b.get(k)]  # keys the trace leaves out are free
        pairs = {k: _narrow(a.get(k), b.get(k)) for k in keys}
        return {k: p[0] for k, p in pairs.items()}, {k: p[1] for k, p in pairs.items()}
    return a, b


# --------------------------------------------------------------------------- traces from the spec


@dataclass(frozen=True, slots=True)
class Behaviour:
    """A behaviour TLC printed: per state, the action and the variables (TLC's text)."""

    spec: str
    ids: Ids
    constants: dict[str, Json]
    states: list[tuple[str, dict[str, str]]]  # (action name, variables incl. lastAction)
    seconds: float


def simulate(
    spec: str,
    *,
    servers: Sequence[int] = (1, 2, 3),
    clients: Sequence[int] = (),
    constants: dict[str, Json] | None = None,
    depth: int = 20,
    seed: int = 1,
    timeout_s: float = 120.0,
) -> Behaviour:
    """One random behaviour of `spec` with at most `depth` states (TLC -simulate)."""
    m = SPEC_MAPS[spec]
    ids = m.ids(servers, clients)
    header = Header(spec, tuple(servers), tuple(clients), dict(constants or {}))
    consts = _constants(m, header, [], ids)
    defs, cfg_consts = _model(m, ids, consts)
    lines = [f"---- MODULE {MODULE} ----", f"EXTENDS {spec}, TLC"]
    if ids.model_values():
        lines.append("CONSTANTS " + ", ".join(ids.model_values()))
    lines += defs
    lines.append(f'Short == TLCGet("level") < {depth}')
    lines.append("=" * 40)
    cfg = ["CONSTANTS", *cfg_consts, "INIT Init", "NEXT Next", "INVARIANT Short"]
    # no -deadlock: a behaviour that gets stuck early is reported (and printed) as a deadlock
    run = run_module(
        MODULE,
        "\n".join(lines) + "\n",
        "\n".join(cfg) + "\n",
        extra_args=["-simulate", "-depth", str(depth + 1), "-seed", str(seed)],
        timeout_s=timeout_s,
    )
    trace, _ = parse_trace(run.lines)
    if not trace:
        raise RuntimeError("TLC printed no behaviour:\n" + "\n".join(run.lines[-15:]))
    states = [(st.action, st.variables) for st in trace]
    return Behaviour(spec, ids, consts, states, run.result.seconds)


def behaviour_trace(
    b: Behaviour,
    *,
    variables: Sequence[str] | None = None,
    per_node: bool = True,
    params_as: str = "dict",
) -> Trace:
    """The behaviour as a trace. `variables`: the post subset (default: all). `per_node`:
    records carry `node` (the action's first parameter, when a server) and per-server variables
    are that node's slice, as the implementation emits them."""
    m = SPEC_MAPS[b.spec]
    chosen = list(m.variables) if variables is None else list(variables)
    records: list[Record] = []
    for seq, (action, tvars) in enumerate(b.states):
        values = {v: m.variables[v].from_tla(parse_value(tvars[v]), b.ids) for v in chosen}
        la = parse_value(tvars["lastAction"])
        assert isinstance(la, dict)
        raw_params = la.get("params", ())
        assert isinstance(raw_params, tuple)
        formals = m.actions.get(action, ())
        params_json = [f.type.from_tla(x, b.ids) for f, x in zip(formals, raw_params, strict=True)]
        node: int | None = None
        if per_node and formals and formals[0].type.name == "Sid":
            node = params_json[0]
        elif per_node and action == "Init":
            node = None
        post: dict[str, Json] = {}
        for var, val in values.items():
            if node is not None and m.per_node(var):
                post[var] = val[str(node)]
            else:
                post[var] = val
        params: dict[str, Any] | list[Any] | None
        if action == "Init":
            params = None
        elif params_as == "dict":
            params = {f.name: x for f, x in zip(formals, params_json, strict=True)}
        else:
            params = params_json
        records.append(Record(action, seq=seq, node=node, params=params, post=post))
    header = Header(
        b.spec,
        b.ids.servers,
        b.ids.clients,
        {k: v for k, v in b.constants.items()},
        {"source": "tlc-simulate"},
    )
    return Trace(header, tuple(records))


def env_timeout() -> float:
    return float(os.environ.get("ZKREF_TRACE_TIMEOUT", "300"))
