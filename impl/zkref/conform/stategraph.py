"""TLC state graphs: dump a model's reachable states with `-dump dot,actionlabels` and load them.

Rules:
- TLC 2.15 writes `strict digraph DiskGraph { ... }`: one line per node
  `FP [label="/\\ var = value\\n/\\ ...",style = filled]` (filled = initial state) and one line per
  generated transition `FP -> FP [label="ActionName",color=...]`. The label is only the
  operator's name; the parameters come from the spec's last-action variable.
- The dump is taken with the model's `VIEW` and `SYMMETRY` removed (in a temporary copy of the
  cfg). With a VIEW that hides `lastAction`, TLC merges states that differ only in their last
  action and prints the first one it met, so an edge into a merged state would carry another
  edge's parameters; with SYMMETRY an edge may point to a permutation of the real successor.
  Without them each node's `lastAction` is exactly the step of every edge into it, and every
  path is a real behaviour. `view_key` gives the spec's own state (lastAction dropped).
- Invariants and properties are dropped from the dump run: a graph is wanted, not a verdict.
- TLC repeats an edge once per way the successor was generated (`\\E p, q` over an unused q):
  the loader keeps one edge per (source, target), keyed 0, with `action` (label) and `params`.
- Values are parsed into Python: integers, strings, booleans, sequences/tuples as `tuple`,
  records as `dict[str, ...]`, functions `a :> x @@ b :> y` as `dict`, sets as `frozenset`,
  model values as `ModelValue`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from zkref.conform.tlc import JAVA, repo_root, tla2tools_jar

LAST_ACTION = "lastAction"


# --------------------------------------------------------------------------- TLA+ values


@dataclass(frozen=True, slots=True)
class ModelValue:
    """A TLC model value (a bare identifier such as `s1` or `NP`)."""

    name: str

    def __str__(self) -> str:
        return self.name


class ValueSyntaxError(ValueError):
    pass


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>-?\d+)
      | (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<op><<|>>|\|->|:>|@@|\.\.|[\[\]{}(),])
      | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueSyntaxError(f"cannot read TLA+ value at {pos}: {text[pos : pos + 40]!r}")
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise ValueSyntaxError("unexpected end of value")
        tok = self.toks[self.i]
        if expected is not None and tok[1] != expected:
            raise ValueSyntaxError(f"expected {expected!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def value(self) -> Any:
        first = self.atom()
        if self.peek() != ":>":
            return first
        # a function written a :> x @@ b :> y
        out: dict[Any, Any] = {}
        key = first
        while True:
            self.take(":>")
            out[key] = self.atom()
            if self.peek() != "@@":
                return out
            self.take("@@")
            key = self.atom()

    def atom(self) -> Any:
        kind, tok = self.take()
        if kind == "num":
            if self.peek() == "..":  # an integer interval a..b
                self.take("..")
                hi = int(self.take()[1])
                return frozenset(range(int(tok), hi + 1))
            return int(tok)
        if kind == "str":
            return bytes(tok[1:-1], "utf-8").decode("unicode_escape")
        if kind == "id":
            if tok == "TRUE":
                return True
            if tok == "FALSE":
                return False
            return ModelValue(tok)
        if tok == "<<":
            items: list[Any] = []
            while self.peek() != ">>":
                items.append(self.value())
                if self.peek() == ",":
                    self.take(",")
            self.take(">>")
            return tuple(items)
        if tok == "{":
            elems: list[Any] = []
            while self.peek() != "}":
                elems.append(self.value())
                if self.peek() == ",":
                    self.take(",")
            self.take("}")
            return frozenset(_freeze(e) for e in elems)
        if tok == "[":
            rec: dict[str, Any] = {}
            while self.peek() != "]":
                field = self.take()[1]
                self.take("|->")
                rec[field] = self.value()
                if self.peek() == ",":
                    self.take(",")
            self.take("]")
            return rec
        if tok == "(":
            inner = self.value()
            self.take(")")
            return inner
        raise ValueSyntaxError(f"unexpected {tok!r}")


def _freeze(v: Any) -> Any:
    """A hashable form (set elements must be hashable)."""
    if isinstance(v, dict):
        return tuple(sorted(((k, _freeze(x)) for k, x in v.items()), key=repr))
    if isinstance(v, tuple):
        return tuple(_freeze(x) for x in v)
    return v


def parse_value(text: str) -> Any:
    """Parse one TLA+ value as TLC prints it."""
    p = _Parser(text)
    v = p.value()
    if p.i != len(p.toks):
        raise ValueSyntaxError(f"trailing text after value: {text!r}")
    return v


# --------------------------------------------------------------------------- DOT

_RE_NODE = re.compile(r'^(-?\d+) \[label="(.*)"(,style = filled)?\];?$')
_RE_EDGE = re.compile(r'^(-?\d+) -> (-?\d+) \[label="([^"]*)"')
_RE_VAR = re.compile(r"^/\\ (\w+) = (.*)$", re.DOTALL)


def _unescape_label(label: str) -> str:
    """DOT label text -> TLC's state text (`\\n` newline, `\\"` quote, `\\\\` backslash)."""
    return (
        label.replace("\\\\", "\x00").replace("\\n", "\n").replace('\\"', '"').replace("\x00", "\\")
    )


def parse_state_text(text: str) -> dict[str, str]:
    """TLC's `/\\ var = value` lines -> {var: raw value text} (values may span lines)."""
    raw: dict[str, str] = {}
    current: str | None = None
    for line in text.split("\n"):
        m = _RE_VAR.match(line)
        if m:
            current = m.group(1)
            raw[current] = m.group(2)
        elif current is not None and line.strip():
            raw[current] += " " + line.strip()
    return raw


@dataclass(frozen=True, slots=True)
class ActionStep:
    """What produced a state: the last-action variable's name and parameters."""

    name: str
    params: tuple[Any, ...]


def last_action_of(variables: dict[str, Any]) -> ActionStep:
    la = variables.get(LAST_ACTION)
    if not isinstance(la, dict) or "name" not in la:
        raise ValueError(f"state has no usable {LAST_ACTION} variable: {la!r}")
    params = la.get("params", ())
    if not isinstance(params, tuple):
        params = (params,)
    return ActionStep(str(la["name"]), params)


def view_key(variables: dict[str, str]) -> str:
    """The spec's state without the last action (raw texts, for counting the VIEW graph)."""
    return "\n".join(f"{k}={v}" for k, v in sorted(variables.items()) if k != LAST_ACTION)


def parse_dot(text: str) -> nx.MultiDiGraph:
    """Parse TLC 2.15's `-dump dot,actionlabels` output.

    Node attributes: `raw` (value texts; `state_vars` parses them), `init` (bool), `view` (key
    of the spec state without lastAction). Edge attributes: `action` (TLC's label), `params` (from
    the target's lastAction; `None` when the target has no lastAction variable).
    """
    g = nx.MultiDiGraph()
    edges: list[tuple[str, str, str]] = []
    for line in text.splitlines():
        if m := _RE_EDGE.match(line):
            edges.append((m.group(1), m.group(2), m.group(3)))
        elif m := _RE_NODE.match(line):
            raw = parse_state_text(_unescape_label(m.group(2)))
            g.add_node(m.group(1), raw=raw, init=m.group(3) is not None, view=view_key(raw))
    for u, v, label in edges:
        if g.has_edge(u, v):
            if all(d["action"] != label for d in g[u][v].values()):
                g.add_edge(u, v, key=len(g[u][v]), action=label, params=None)
            continue
        if u not in g or v not in g:
            raise ValueError(f"edge {u} -> {v} names a state the dump does not define")
        target = g.nodes[v]["raw"]
        params: tuple[Any, ...] | None = None
        if LAST_ACTION in target:
            step = last_action_of({LAST_ACTION: parse_value(target[LAST_ACTION])})
            if step.name != label:
                raise ValueError(
                    f"edge {u} -> {v} is labelled {label} but the target's lastAction is "
                    f"{step.name} (was the dump taken with a VIEW hiding lastAction?)"
                )
            params = step.params
        g.add_edge(u, v, key=0, action=label, params=params)
    return g


def state_vars(g: nx.MultiDiGraph, node: str) -> dict[str, Any]:
    """A node's variables as Python values (parsed on first use, then cached on the node)."""
    attrs = g.nodes[node]
    if "vars" not in attrs:
        attrs["vars"] = {k: parse_value(v) for k, v in attrs["raw"].items()}
    values: dict[str, Any] = attrs["vars"]
    return values


def initial_states(g: nx.MultiDiGraph) -> list[str]:
    """The initial states, in a deterministic order."""
    return sorted(n for n, d in g.nodes(data=True) if d["init"])


@dataclass(frozen=True, slots=True)
class GraphStats:
    states: int
    edges: int
    initial: int
    actions: tuple[str, ...]
    view_states: int  # the spec's own states (lastAction dropped), as TLC counts with its VIEW
    view_edges: int  # (view state, action+params, view state) triples
    max_depth: int  # BFS depth from the initial states

    def as_dict(self) -> dict[str, object]:
        return {
            "states": self.states,
            "edges": self.edges,
            "initial": self.initial,
            "actions": list(self.actions),
            "view_states": self.view_states,
            "view_edges": self.view_edges,
            "max_depth": self.max_depth,
        }


def action_names(g: nx.MultiDiGraph) -> set[str]:
    return {d["action"] for _, _, d in g.edges(data=True)}


def view_edge_keys(g: nx.MultiDiGraph, edges: Iterator[tuple[str, str]] | None = None) -> set[Any]:
    """The edges of the spec's own graph (lastAction dropped) that `edges` (default: all) cross."""
    nodes = g.nodes
    pairs = edges if edges is not None else ((u, v) for u, v, _ in g.edges(keys=True))
    return {
        (nodes[u]["view"], g[u][v][0]["action"], repr(g[u][v][0]["params"]), nodes[v]["view"])
        for u, v in pairs
    }


def stats(g: nx.MultiDiGraph) -> GraphStats:
    inits = initial_states(g)
    depth = 0
    if inits:
        lengths = nx.multi_source_dijkstra_path_length(g, inits, weight=lambda *_: 1)
        depth = max(lengths.values())
    return GraphStats(
        states=g.number_of_nodes(),
        edges=g.number_of_edges(),
        initial=len(inits),
        actions=tuple(sorted(action_names(g))),
        view_states=len({d["view"] for _, d in g.nodes(data=True)}),
        view_edges=len(view_edge_keys(g)),
        max_depth=depth,
    )


# --------------------------------------------------------------------------- running TLC

_DROP_SECTIONS = {"VIEW", "SYMMETRY", "INVARIANT", "INVARIANTS", "PROPERTY", "PROPERTIES"}
_KEYWORDS = {
    "CONSTANT",
    "CONSTANTS",
    "INIT",
    "NEXT",
    "SPECIFICATION",
    "CONSTRAINT",
    "CONSTRAINTS",
    "ACTION_CONSTRAINT",
    "ACTION_CONSTRAINTS",
    *_DROP_SECTIONS,
}


def dump_cfg(cfg_text: str) -> str:
    """The model's cfg with VIEW, SYMMETRY, INVARIANT(S) and PROPERTY(IES) removed."""
    out: list[str] = []
    dropping = False
    for raw in cfg_text.splitlines():
        line = raw.split("\\*", 1)[0].strip()
        head = line.split()[0] if line else ""
        if head in _KEYWORDS:
            dropping = head in _DROP_SECTIONS
        if not dropping:
            out.append(raw)
    return "\n".join(out) + "\n"


class DumpError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Dump:
    model: str
    dot: str
    seconds: float
    tlc_output: str


def dump_model(
    module: str,
    config: str,
    *,
    root: Path | None = None,
    model_dir: Path | None = None,
    spec_dir: Path | None = None,
    cfg_file: Path | None = None,
    timeout_s: float = 600.0,
    heap: str = "2g",
    on_line: Callable[[str], None] | None = None,
) -> Dump:
    """Run TLC on `<model_dir>/<config>.cfg` for `<module>.tla` and return the DOT dump.

    `cfg_file` overrides the cfg's location (e.g. a test-only model of `models/<module>.tla`).
    Everything (copied specs, TLC's metadir, the dump) lives in a temporary directory.
    """
    base = root or repo_root()
    mdir = model_dir or base / "models"
    sdir = spec_dir or base / "spec"
    name = config.removesuffix(".cfg")
    cfg_path = cfg_file or mdir / f"{name}.cfg"
    with tempfile.TemporaryDirectory(prefix=f"zkref-dump-{name}-") as tmp:
        work = Path(tmp)
        for tla in [*sdir.glob("*.tla"), *mdir.glob("*.tla")]:
            shutil.copy(tla, work / tla.name)
        (work / f"{name}.cfg").write_text(dump_cfg(cfg_path.read_text()))
        (work / "java-tmp").mkdir()
        dot_path = work / "graph.dot"
        cmd = [
            JAVA,
            f"-Xmx{heap}",
            "-XX:+UseParallelGC",
            f"-Djava.io.tmpdir={work / 'java-tmp'}",
            "-cp",
            str(tla2tools_jar()),
            "tlc2.TLC",
            "-deadlock",
            "-fp",
            "1",
            "-workers",
            "1",
            "-metadir",
            str(work / "meta"),
            "-dump",
            "dot,actionlabels",
            str(dot_path),
            "-config",
            f"{name}.cfg",
            module,
        ]
        start = time.monotonic()
        try:
            proc = subprocess.run(
                cmd, cwd=work, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as e:
            raise DumpError(f"{name}: TLC did not finish within {timeout_s:.0f}s") from e
        seconds = time.monotonic() - start
        out = proc.stdout + proc.stderr
        if on_line is not None:
            for line in out.splitlines():
                on_line(line)
        if "Model checking completed. No error has been found" not in out:
            errs = [ln for ln in out.splitlines() if ln.startswith("Error") or "Exception" in ln]
            raise DumpError(f"{name}: TLC failed: {'; '.join(errs[:3]) or out[-500:]}")
        # TLC appends ".dot" to the name it is given unless it already ends so
        candidates = [dot_path, work / "graph.dot.dot"]
        for c in candidates:
            if c.is_file():
                return Dump(name, c.read_text(), round(seconds, 1), out)
        raise DumpError(f"{name}: TLC wrote no dump")


def load_model_graph(module: str, config: str, **kwargs: Any) -> nx.MultiDiGraph:
    """Dump and parse a model's state graph."""
    return parse_dot(dump_model(module, config, **kwargs).dot)
