"""Replay TLC state-graph paths on the implementation and check the refinement mapping.

Rules:
- A step of a path is an `ActionCall`: the edge's action name and the parameters read from the
  spec's last-action variable of the state it leads to. It is dispatched to the core method
  registered under that name in `zkref.core.spec_action.REGISTRY` (the method of the target
  object's class, or of a base class); a binding only says which core the call goes to, with
  which arguments, and what the environment (network, timers, bounds) does around it.
- After the initial state and after every step, the binding's refinement mapping must equal
  TLC's state on every variable the binding maps; the first difference is reported with the
  step, the action call and the variable path (e.g. `recvVotes[2][3].round`).
- Disabled actions (`check_disabled`): at every state of the path, each call that the
  environment could issue there (`binding.candidates()`) but that has no edge in the graph
  (the spec does not enable it) is tried on a copy of the implementation; it must return no
  effects and change none of the core-owned variables. This is what catches a removed guard,
  which a replay of enabled steps alone never exercises. A binding's optional
  `within_model(spec_vars) -> bool` states the model's CONSTRAINT: a trial that leaves it has
  no edge because TLC pruned the successor, not because the spec disables the action.
- `run_model` is the one driver for a model: dump TLC's state graph, cover it with paths, replay
  each on a fresh binding, store a few paths as small JSON (the first ones of the cover, then the
  diverging ones) that `replay_stored` replays by name. A spec's module (`replay_fle`,
  `replay_zab`) passes its binding factory, path projection and stored-path metadata.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import itertools
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, TypedDict

import networkx as nx

from zkref.conform.pathcover import cover
from zkref.conform.stategraph import (
    LAST_ACTION,
    ModelValue,
    load_model_graph,
    parse_value,
    state_vars,
    stats,
)
from zkref.conform.tlc import repo_root
from zkref.core.spec_action import REGISTRY


@dataclass(frozen=True, slots=True)
class ActionCall:
    """One spec step: the TLA+ action's name and its parameters (as in `lastAction.params`)."""

    action: str
    params: tuple[Any, ...]

    def __str__(self) -> str:
        return f"{self.action}({', '.join(_show(p) for p in self.params)})"


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Where a call goes: `target.<registered method>(*args, **kwargs)`."""

    target: object
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


class Binding(Protocol):
    """The glue between one spec and its cores (see `replay_fle.FleBinding`)."""

    def reset(self, initial: Mapping[str, Any]) -> None:
        """Build fresh cores for a path that starts in TLC state `initial`."""

    def dispatch(self, call: ActionCall) -> Dispatch:
        """The core and arguments for `call` (the environment acts here: pop a message,
        let a timer run out)."""

    def after(self, call: ActionCall, result: object) -> None:
        """Route the method's effects (sends become channel contents, ...)."""

    def spec_vars(self) -> dict[str, Any]:
        """The refinement mapping: the spec's variables computed from the implementation."""

    def candidates(self) -> list[ActionCall]:
        """Calls the environment could issue in the current state (for the disabled check)."""

    def core_vars(self) -> frozenset[str]:
        """The variables the cores own (a disabled call must leave them unchanged)."""

    def effects_empty(self, result: object) -> bool:
        """Did a call produce no effects?"""


class DispatchError(LookupError):
    pass


def registered_method(action: str, target: object) -> Callable[..., Any]:
    """The bound method of `target` registered for `action`."""
    qualnames = REGISTRY.get(action, [])
    classes = [c.__qualname__ for c in type(target).__mro__]
    for q in qualnames:
        cls, _, meth = q.rpartition(".")
        if cls in classes:
            fn: Callable[..., Any] = getattr(target, meth)
            return fn
    raise DispatchError(
        f"no method of {type(target).__qualname__} is registered for spec action {action!r} "
        f"(registered: {qualnames})"
    )


# --------------------------------------------------------------------------- comparing


def normalize(v: Any) -> Any:
    """One shape for spec and implementation values: functions with domain 1..n as tuples,
    lists as tuples, enums as their values, model values as their names."""
    if isinstance(v, Enum):
        return normalize(v.value)
    if isinstance(v, ModelValue):
        return v.name
    if isinstance(v, bool | int | str) or v is None:
        return v
    if isinstance(v, Mapping):
        keys = list(v.keys())
        ints = keys and all(isinstance(k, int) and not isinstance(k, bool) for k in keys)
        if ints and sorted(keys) == list(range(1, len(keys) + 1)):
            return tuple(normalize(v[k]) for k in sorted(keys))
        return {normalize(k): normalize(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return tuple(normalize(x) for x in v)
    if isinstance(v, set | frozenset):
        return frozenset(normalize(x) for x in v)
    return v


def first_difference(expected: Any, actual: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The innermost place where two normalised values differ: (path, expected, actual)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for k in sorted(set(expected) | set(actual), key=repr):
            if k not in expected or k not in actual:
                return (f"{path}.{k}", expected.get(k, "<absent>"), actual.get(k, "<absent>"))
            d = first_difference(expected[k], actual[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(expected, tuple) and isinstance(actual, tuple) and len(expected) == len(actual):
        for i, (a, b) in enumerate(zip(expected, actual, strict=True)):
            d = first_difference(a, b, f"{path}[{i + 1}]")
            if d:
                return d
        return None
    if expected != actual:
        return (path, expected, actual)
    return None


def _show(v: Any) -> str:
    return json.dumps(_jsonable(normalize(v)), sort_keys=True)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    if isinstance(v, frozenset | set):
        return sorted((_jsonable(x) for x in v), key=repr)
    return v


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first step at which the implementation and the spec disagree."""

    path: str
    step: int  # 0 = the initial state; k = after the k-th action
    call: ActionCall | None  # None for the initial state
    variable: str  # e.g. "recvVotes[2][3].round", or "<effects>" for a disabled call
    expected: Any
    actual: Any
    kind: str = "state"  # "state" | "disabled" | "dispatch"

    def __str__(self) -> str:
        where = "initial state" if self.call is None else f"step {self.step} {self.call}"
        if self.kind == "disabled":
            return (
                f"{self.path}: at step {self.step}, {self.call} is disabled in the spec but the "
                f"implementation changed {self.variable}: {_show(self.expected)} -> "
                f"{_show(self.actual)}"
            )
        if self.kind == "dispatch":
            return f"{self.path}: {where}: cannot dispatch: {self.actual}"
        return (
            f"{self.path}: {where}: variable {self.variable} differs: spec "
            f"{_show(self.expected)}, implementation {_show(self.actual)}"
        )


def compare(spec_state: Mapping[str, Any], impl: Mapping[str, Any]) -> tuple[str, Any, Any] | None:
    """Compare the variables the implementation maps (lastAction only if it maps it)."""
    for name in sorted(impl):
        if name not in spec_state:
            return (name, "<not a spec variable>", impl[name])
        d = first_difference(normalize(spec_state[name]), normalize(impl[name]), name)
        if d:
            return d
    return None


# --------------------------------------------------------------------------- paths


@dataclass(frozen=True, slots=True)
class Step:
    call: ActionCall
    state: dict[str, Any]  # TLC's full state after the step


@dataclass(frozen=True, slots=True)
class SpecPath:
    """A path of TLC states: the initial state and the labelled steps after it."""

    name: str
    initial: dict[str, Any]
    steps: tuple[Step, ...]
    nodes: tuple[str, ...] = ()  # graph node ids, when taken from a graph


def path_from_graph(g: nx.MultiDiGraph, nodes: Sequence[str], name: str) -> SpecPath:
    steps = []
    for u, v in itertools.pairwise(nodes):
        d = g[u][v][0]
        steps.append(Step(ActionCall(d["action"], tuple(d["params"] or ())), state_vars(g, v)))
    return SpecPath(name, state_vars(g, nodes[0]), tuple(steps), tuple(nodes))


def save_path(
    g: nx.MultiDiGraph, nodes: Sequence[str], file: Path, meta: Mapping[str, Any]
) -> None:
    """Store a path as small JSON: TLC's value texts, the initial state in full, then per step
    the action, its parameters and only the variables that changed."""
    raw0: dict[str, str] = g.nodes[nodes[0]]["raw"]
    steps: list[dict[str, Any]] = []
    prev = raw0
    for u, v in itertools.pairwise(nodes):
        raw: dict[str, str] = g.nodes[v]["raw"]
        d = g[u][v][0]
        changed = {k: x for k, x in raw.items() if prev.get(k) != x and k != LAST_ACTION}
        steps.append(
            {
                "action": d["action"],
                "params": raw.get(LAST_ACTION, ""),
                "changed": changed,
                "node": v,
            }
        )
        prev = raw
    doc = {**meta, "schema": 1, "initial": raw0, "initial_node": nodes[0], "steps": steps}
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def load_path(file: Path) -> SpecPath:
    doc = json.loads(file.read_text())
    raw: dict[str, str] = dict(doc["initial"])
    initial = {k: parse_value(x) for k, x in raw.items()}
    steps = []
    for s in doc["steps"]:
        raw.update(s["changed"])
        if s["params"]:
            raw[LAST_ACTION] = s["params"]
        state = {k: parse_value(x) for k, x in raw.items()}
        la = state.get(LAST_ACTION)
        params = tuple(la["params"]) if isinstance(la, dict) else ()
        steps.append(Step(ActionCall(s["action"], params), state))
    nodes = (doc.get("initial_node", ""), *(s.get("node", "") for s in doc["steps"]))
    return SpecPath(doc.get("name", file.stem), initial, tuple(steps), nodes)


# --------------------------------------------------------------------------- replay


@dataclass(frozen=True, slots=True)
class ReplayResult:
    path: str
    steps: int  # steps that matched the spec (all of them when ok)
    divergence: Divergence | None
    disabled_checked: int = 0

    @property
    def ok(self) -> bool:
        return self.divergence is None


def _enabled_calls(g: nx.MultiDiGraph | None, node: str) -> set[ActionCall] | None:
    if g is None or not node or node not in g:
        return None
    return {
        ActionCall(d["action"], tuple(normalize(d["params"] or ())))
        for _, _, d in g.out_edges(node, data=True)
    }


def _check_disabled(
    binding: Binding, enabled: set[ActionCall], path: SpecPath, step: int
) -> tuple[Divergence | None, int]:
    checked = 0
    for call in binding.candidates():
        if ActionCall(call.action, tuple(normalize(call.params))) in enabled:
            continue
        checked += 1
        trial = copy.deepcopy(binding)
        before = trial.spec_vars()
        try:
            d = trial.dispatch(call)
            result = registered_method(call.action, d.target)(*d.args, **d.kwargs)
            trial.after(call, result)
        except DispatchError as e:
            return Divergence(
                path.name, step, call, "<dispatch>", None, str(e), "dispatch"
            ), checked
        after = trial.spec_vars()
        within = getattr(binding, "within_model", None)
        if within is not None and not within(after):
            continue  # the model's state constraint prunes this successor: no edge, no bug
        for name in sorted(binding.core_vars()):
            diff = first_difference(normalize(before.get(name)), normalize(after.get(name)), name)
            if diff:
                return Divergence(path.name, step, call, diff[0], diff[1], diff[2], "disabled"), (
                    checked
                )
        if not binding.effects_empty(result):
            return Divergence(
                path.name, step, call, "<effects>", [], repr(result), "disabled"
            ), checked
    return None, checked


def replay(
    path: SpecPath,
    binding: Binding,
    *,
    graph: nx.MultiDiGraph | None = None,
    check_disabled: bool = False,
    checked_nodes: set[str] | None = None,
) -> ReplayResult:
    """Replay `path` on fresh cores built by `binding`; stop at the first divergence.

    `checked_nodes`, shared across the paths of one cover, skips the disabled-action check at
    graph states an earlier path already checked (paths share long prefixes)."""
    binding.reset(path.initial)
    checked = 0
    d0 = compare(path.initial, binding.spec_vars())
    if d0:
        return ReplayResult(path.name, 0, Divergence(path.name, 0, None, *d0))
    for k, step in enumerate(path.steps, 1):
        node = path.nodes[k - 1] if len(path.nodes) >= k else ""
        if check_disabled and not (checked_nodes is not None and node in checked_nodes):
            enabled = _enabled_calls(graph, node)
            if enabled is not None:
                bad, n = _check_disabled(binding, enabled, path, k - 1)
                checked += n
                if bad:
                    return ReplayResult(path.name, k - 1, bad, checked)
                if checked_nodes is not None:
                    checked_nodes.add(node)
        try:
            disp = binding.dispatch(step.call)
            method = registered_method(step.call.action, disp.target)
        except (DispatchError, KeyError, IndexError, ValueError) as e:
            div = Divergence(path.name, k, step.call, "<dispatch>", None, str(e), "dispatch")
            return ReplayResult(path.name, k - 1, div, checked)
        result = method(*disp.args, **disp.kwargs)
        binding.after(step.call, result)
        d = compare(step.state, binding.spec_vars())
        if d:
            return ReplayResult(path.name, k - 1, Divergence(path.name, k, step.call, *d), checked)
    return ReplayResult(path.name, len(path.steps), None, checked)


def replay_all(
    paths: Iterable[SpecPath],
    make_binding: Callable[[], Binding],
    *,
    graph: nx.MultiDiGraph | None = None,
    check_disabled: bool = False,
) -> list[ReplayResult]:
    return [replay(p, make_binding(), graph=graph, check_disabled=check_disabled) for p in paths]


# --------------------------------------------------------------------------- models, storage


def cfg_constant(cfg_text: str, name: str) -> int | None:
    """An integer constant assigned in a cfg (`MaxRestarts = 1`)."""
    m = re.search(rf"^\s*{name}\s*=\s*(\d+)\s*$", cfg_text, re.MULTILINE)
    return int(m.group(1)) if m else None


def trace_dir(root: Path | None = None) -> Path:
    """Where stored paths live: `traces/tlc/<model>/<model>-<index>.json`."""
    return (root or repo_root()) / "traces" / "tlc"


def find_stored(name: str, root: Path | None = None) -> Path:
    """A stored path by name (`MCZab_replay-00012`) or file."""
    p = Path(name)
    if p.is_file():
        return p
    model = name.rsplit("-", 1)[0]
    f = trace_dir(root) / model / f"{name}.json"
    if not f.is_file():
        raise FileNotFoundError(f"no stored path {name} (looked for {f})")
    return f


@dataclass(frozen=True, slots=True)
class ModelReport:
    model: str
    graph: dict[str, object]
    cover: dict[str, object]
    replayed: int
    clean: int
    validated_edges: int  # distinct edges replayed with the mapping equal after them
    disabled_checked: int  # spec-disabled calls tried on a copy (all left the cores alone)
    divergences: tuple[str, ...]
    stored: tuple[str, ...]
    seconds: dict[str, float]

    @property
    def action_coverage(self) -> float:
        c = self.cover
        return int(str(c["actions_covered"])) / max(1, int(str(c["actions_total"])))

    def as_dict(self) -> dict[str, object]:
        d: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        return d | {"divergences": list(self.divergences), "stored": list(self.stored)}


def _identity(path: SpecPath) -> SpecPath:
    return path


@dataclass(frozen=True, slots=True)
class ReplayTarget:
    """What a spec's module tells the driver: its TLA+ model module and spec file, a fresh
    binding per path, the projection of a graph path onto what the binding replays, and the
    metadata its stored paths carry (so that `replay_stored` rebuilds the same binding)."""

    module: str  # "MCFLE": the MC module the cfg instantiates
    spec: str  # "FastLeaderElection": spec/<spec>.tla
    make_binding: Callable[[], Binding]
    meta: Mapping[str, Any]
    replay_command: str  # the CLI that replays a stored path: `<replay_command> <name>`
    store_diverging: int
    project: Callable[[SpecPath], SpecPath] = _identity


class RunOptions(TypedDict, total=False):
    """`run_model`'s knobs, passed through by the spec modules' `run_model`."""

    max_len: int
    max_paths: int | None
    store: int
    out_dir: Path | None
    check_disabled: bool
    graph: nx.MultiDiGraph | None


def run_model(
    cfg: Path,
    target: ReplayTarget,
    *,
    name: str | None = None,
    max_len: int = 60,
    max_paths: int | None = None,
    store: int = 0,
    out_dir: Path | None = None,
    check_disabled: bool = True,
    graph: nx.MultiDiGraph | None = None,
) -> ModelReport:
    """Dump the graph of model `cfg`, cover it with paths of at most `max_len` steps (at most
    `max_paths` of them), replay every path on a fresh binding; store the first `store` paths
    of the cover and up to `target.store_diverging` diverging ones under `out_dir/<model>/`,
    each with its verdict and the command that replays it. The model's name is `name`, or the
    cfg's stem."""
    name = name or cfg.stem
    spec_text = (repo_root() / "spec" / f"{target.spec}.tla").read_bytes()
    t0 = time.monotonic()
    g = graph if graph is not None else load_model_graph(target.module, name, cfg_file=cfg)
    t1 = time.monotonic()
    c = cover(g, max_len=max_len, max_paths=max_paths)
    t2 = time.monotonic()
    clean = 0
    disabled = 0
    divergences: list[str] = []
    checked: set[str] = set()
    found: dict[int, str] = {}
    validated: set[tuple[str, str]] = set()  # edges replayed before any divergence
    keep: list[int] = list(range(min(store, len(c.paths))))
    for k, nodes in enumerate(c.paths):
        path = target.project(path_from_graph(g, nodes, f"{name}-{k:05d}"))
        r = replay(
            path,
            target.make_binding(),
            graph=g,
            check_disabled=check_disabled,
            checked_nodes=checked,
        )
        validated.update(itertools.pairwise(nodes[: r.steps + 1]))
        disabled += r.disabled_checked
        if r.ok:
            clean += 1
        else:
            divergences.append(str(r.divergence))
            found[k] = str(r.divergence)
            if k not in keep and len(keep) < store + target.store_diverging:
                keep.append(k)
    t3 = time.monotonic()
    stored: list[str] = []
    if store and out_dir is not None:
        folder = out_dir / name
        for old in folder.glob(f"{name}-*.json"):
            old.unlink()
        for k in keep:
            pname = f"{name}-{k:05d}"
            doc_meta = {
                "name": pname,
                "model": name,
                "spec": target.spec,
                "index": k,
                **target.meta,
                "replay": f"{target.replay_command} {pname}",
                "divergence": found.get(k),
            }
            save_path(g, c.paths[k], folder / f"{pname}.json", doc_meta)
            stored.append(pname)
    return ModelReport(
        model=name,
        graph=stats(g).as_dict() | {"spec_sha256": hashlib.sha256(spec_text).hexdigest()[:16]},
        cover=c.as_dict(),
        replayed=len(c.paths),
        clean=clean,
        validated_edges=len(validated),
        disabled_checked=disabled,
        divergences=tuple(divergences),
        stored=tuple(stored),
        seconds={
            "dump_and_parse": round(t1 - t0, 1),
            "cover": round(t2 - t1, 1),
            "replay": round(t3 - t2, 1),
        },
    )


def cli_parser(
    prog: str, description: str, model_help: str, max_len: int, store: int
) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser, argparse.ArgumentParser]:
    """The replay CLI of a spec: `run MODEL` and `replay NAME ...` (returned so that a spec's
    module can add its own flags)."""
    ap = argparse.ArgumentParser(prog=prog, description=description)
    sub = ap.add_subparsers(dest="cmd", required=True)
    run_p = sub.add_parser("run", help="dump, cover, replay a model; store paths")
    run_p.add_argument("model", help=model_help)
    run_p.add_argument("--max-len", type=int, default=max_len)
    run_p.add_argument("--max-paths", type=int, default=None)
    run_p.add_argument("--store", type=int, default=store)
    rep_p = sub.add_parser("replay", help="replay stored paths by name")
    rep_p.add_argument("names", nargs="+")
    return ap, run_p, rep_p


def print_stored(names: Iterable[str], replay_one: Callable[[str], ReplayResult]) -> int:
    """`replay NAME ...`: one line per stored path (and its divergence); 1 if any diverges."""
    status = 0
    for name in names:
        r = replay_one(name)
        print(f"{name}: {'ok' if r.ok else 'DIVERGES'} ({r.steps} steps)")
        if r.divergence is not None:
            print(f"  {r.divergence}")
            status = 1
    return status
