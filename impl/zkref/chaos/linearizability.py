"""Linearizability of one znode's operations: Wing & Gong's search with Lowe's memoisation.

Rules:
- the model is a versioned register that can be absent: ``(exists, value, version)``, the state
  ZooKeeper keeps per znode for getData/setData/create/delete; versions make every successful write
  observable, so a lost or reordered write cannot hide behind an equal value;
- ``ok`` and ``fail`` operations must be linearized inside ``[call, ret]`` with the result they
  reported (a ``fail`` is an observation too: BadVersion says the version differed);
- an ``info`` operation has no return: it may be linearized at any point after its call, and only
  with the outcome "took effect" — "did not take effect" is the same as never linearizing it;
- the search is P-compositional: the caller runs it per znode (Herlihy & Wing's locality);
- memo: a pair (set of linearized ops as an int bitset, model state) is explored once (Lowe 2017,
  as in Porcupine's ``checkSingle``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from zkref.chaos.history import Op

__all__ = [
    "ABSENT",
    "LinResult",
    "RegisterState",
    "check_register",
    "minimal_window",
    "step",
]

RegisterState = tuple[bool, str | None, int]
ABSENT: RegisterState = (False, None, -1)
UNSEEN = "\x00unseen"  # stands for any written value that no read in the history returns
_READS = ("read", "final-read", "sync")


def _written_values(ops: Sequence[Op]) -> list[str | None]:
    """Each op's written value, or UNSEEN when no read among ``ops`` returns it."""
    seen = {
        o.out_value
        for o in ops
        if o.status == "ok" and o.f in ("read", "final-read") and o.out_value is not None
    }
    return [
        UNSEEN if o.f in ("write", "cas", "create") and o.value not in seen else o.value
        for o in ops
    ]


def step(state: RegisterState, op: Op) -> RegisterState | None:
    """The state after ``op`` if ``op`` with its recorded outcome is legal in ``state``;
    None if it is not."""
    return _step(state, op, op.value)


def _step(state: RegisterState, op: Op, written: str | None) -> RegisterState | None:
    exists, value, version = state
    f = op.f
    status = op.status
    if status == "fail":
        err = op.error
        if f in ("create", "enqueue"):
            return state if (err != "NodeExists" or exists) else None
        if err == "NoNode":
            return state if not exists else None
        if err == "BadVersion":
            if f == "cas" or f == "delete":
                return state if exists and version != op.exp_version else None
            return None
        if err == "NodeExists":
            return state if exists else None
        # Any other server error (NoAuth, NotEmpty, …) says nothing about data or version.
        return state
    took_effect_only = status == "info"
    if f in ("read", "final-read"):
        if took_effect_only:
            return state
        if op.out_value is None and (op.out_version is None or op.out_version < 0):
            return state if not exists else None
        if not exists or value != op.out_value:
            return None
        if op.out_version is not None and op.out_version >= 0 and op.out_version != version:
            return None
        return state
    if f == "create":
        if exists:
            return None
        return (True, written, 0)
    if f == "write":
        if not exists:
            return None
        if not took_effect_only and op.out_version is not None and op.out_version != version + 1:
            return None
        return (True, written, version + 1)
    if f == "cas":
        if not exists or version != op.exp_version:
            return None
        if not took_effect_only and op.out_version is not None and op.out_version != version + 1:
            return None
        return (True, written, version + 1)
    if f == "delete":
        if not exists:
            return None
        if op.exp_version is not None and op.exp_version != -1 and op.exp_version != version:
            return None
        return ABSENT
    if f == "sync":
        return state
    raise ValueError(f"operation {f!r} is not a register operation")


@dataclass(slots=True)
class _Node:
    op: Op | None
    is_call: bool
    time: int
    match: _Node | None = None  # call -> its return node (None for info)
    prev: _Node | None = None
    next: _Node | None = None


@dataclass(slots=True)
class LinResult:
    ok: bool | None  # None: search budget exhausted
    explored: int
    linearization: list[Op] = field(default_factory=list)
    culprit: Op | None = None  # the op whose return no linearization could get past
    final_states: list[RegisterState] = field(default_factory=list)


def _build_list(ops: Sequence[Op]) -> _Node:
    entries: list[tuple[int, int, int, _Node]] = []
    for i, op in enumerate(ops):
        call = _Node(op=op, is_call=True, time=op.call)
        # At equal timestamps calls sort before returns: the two ops are then concurrent, which
        # can only make the checker more permissive, never report a false violation.
        entries.append((op.call, 0, i, call))
        if op.ret is not None:
            ret = _Node(op=op, is_call=False, time=op.ret)
            call.match = ret
            entries.append((op.ret, 1, i, ret))
    entries.sort(key=lambda t: (t[0], t[1], t[2]))
    head = _Node(op=None, is_call=False, time=-1)
    prev = head
    for _, _, _, node in entries:
        prev.next = node
        node.prev = prev
        prev = node
    return head


def _lift(call: _Node) -> None:
    assert call.prev is not None
    call.prev.next = call.next
    if call.next is not None:
        call.next.prev = call.prev
    ret = call.match
    if ret is not None:
        assert ret.prev is not None
        ret.prev.next = ret.next
        if ret.next is not None:
            ret.next.prev = ret.prev


def _unlift(call: _Node) -> None:
    ret = call.match
    if ret is not None:
        assert ret.prev is not None
        ret.prev.next = ret
        if ret.next is not None:
            ret.next.prev = ret
    assert call.prev is not None
    call.prev.next = call
    if call.next is not None:
        call.next.prev = call


def check_register(
    ops: Sequence[Op],
    init: RegisterState = ABSENT,
    *,
    budget: int = 5_000_000,
    cache: set[tuple[int, RegisterState]] | None = None,
) -> LinResult:
    """Is there a linearization of ``ops`` (one znode) starting from ``init``?

    ``cache`` may be shared between calls on the *same* ``ops`` from different initial states:
    a (linearized set, state) pair that led nowhere from one start leads nowhere from any.

    Depth-first over "which op takes effect next": the candidates at each level are the calls
    before the earliest pending return (Wing & Gong), completed ops first and ``info`` ops last
    (an info op is optional, so trying the obligatory ones first finds a witness sooner; the
    search stays exhaustive). Info reads and syncs constrain nothing and are dropped.

    Two reductions keep lost replies from making the search exponential (both exact):
    values no read in ``ops`` ever returns are replaced by one placeholder, so states that differ
    only in an unobservable value share a memo entry; and among pending ``info`` ops with the
    same effect (same f, value or placeholder, expected version) only the earliest-called is a
    candidate, since any linearization using a later one can use the earlier one at the same
    point instead (it is pending there too) with identical observations.
    """
    ops = [o for o in ops if not (o.status == "info" and o.f in _READS)]
    ids = {id(op): i for i, op in enumerate(ops)}
    written = _written_values(ops)
    head = _build_list(ops)
    remaining = sum(1 for o in ops if o.ret is not None)
    state = init
    linearized = 0
    if cache is None:
        cache = set()
    # Frame: (candidates at this level, index being tried, state before it).
    frames: list[tuple[list[_Node], int, RegisterState]] = []
    explored = 0
    deepest: _Node | None = None

    def level() -> tuple[list[_Node], _Node | None]:
        done: list[_Node] = []
        info: list[_Node] = []
        effects: set[tuple[str, str | None, int | None]] = set()
        e = head.next
        while e is not None and e.is_call:
            op = e.op
            assert op is not None
            if e.match is not None:
                done.append(e)
            else:
                # Pending info ops with the same effect are interchangeable: try the earliest.
                effect = (op.f, written[ids[id(op)]], op.exp_version)
                if effect not in effects:
                    effects.add(effect)
                    info.append(e)
            e = e.next
        return done + info, e

    cands, blocker = level()
    i = 0
    while True:
        if remaining == 0:
            lin = [f[0][f[1]].op for f in frames]
            return LinResult(
                ok=True,
                explored=explored,
                linearization=[o for o in lin if o is not None],
                final_states=[state],
            )
        advanced = False
        while i < len(cands):
            explored += 1
            if explored > budget:
                return LinResult(ok=None, explored=explored)
            node = cands[i]
            op = node.op
            assert op is not None
            new_state = _step(state, op, written[ids[id(op)]])
            if new_state is not None:
                new_lin = linearized | (1 << ids[id(op)])
                key = (new_lin, new_state)
                if key not in cache:
                    cache.add(key)
                    frames.append((cands, i, state))
                    state = new_state
                    linearized = new_lin
                    if node.match is not None:
                        remaining -= 1
                    _lift(node)
                    cands, blocker = level()
                    i = 0
                    advanced = True
                    break
            i += 1
        if advanced:
            continue
        # No candidate works here: the op of the earliest pending return cannot be placed.
        if blocker is not None and (deepest is None or blocker.time > deepest.time):
            deepest = blocker
        if not frames:
            culprit = deepest.op if deepest is not None else None
            return LinResult(ok=False, explored=explored, culprit=culprit)
        cands, i, state = frames.pop()
        node = cands[i]
        assert node.op is not None
        linearized &= ~(1 << ids[id(node.op)])
        if node.match is not None:
            remaining += 1
        _unlift(node)
        _, blocker = _first_return(head)
        i += 1


def _first_return(head: _Node) -> tuple[None, _Node | None]:
    e = head.next
    while e is not None and e.is_call:
        e = e.next
    return None, e


def candidate_states(ops: Sequence[Op]) -> list[RegisterState]:
    """States a znode is known to have had at some point (for window search): absent, and every
    (value, version) pair an ``ok`` op reported or produced."""
    out: set[RegisterState] = {ABSENT}
    for op in ops:
        if op.status != "ok":
            continue
        if op.f in ("read", "final-read") and op.out_value is not None:
            out.add((True, op.out_value, op.out_version if op.out_version is not None else 0))
        elif op.f == "create":
            out.add((True, op.value, 0))
        elif op.f in ("write", "cas") and op.out_version is not None:
            out.add((True, op.value, op.out_version))
    return sorted(out, key=lambda s: (s[0], s[2], s[1] or ""))


def _window_fails(window: Sequence[Op], states: Sequence[RegisterState], budget: int) -> bool:
    cache: set[tuple[int, RegisterState]] = set()
    for s in states:
        r = check_register(window, s, budget=budget, cache=cache)
        if r.ok is not False:
            return False
    return True


def minimal_window(
    ops: Sequence[Op],
    culprit: Op,
    *,
    budget: int = 200_000,
    max_starts: int = 300,
    time_limit_s: float = 20.0,
) -> tuple[list[Op], list[RegisterState], bool]:
    """A short stretch of time ending at ``culprit``'s return whose operations cannot be
    linearized from *any* state the znode was observed in.

    The window for a start time t0 holds every op whose interval meets [t0, culprit.ret] (ops
    that returned later are cut short to "pending", which only adds freedom). t0 moves back one
    call at a time until the window fails; then observations (reads, failed ops) the failure
    does not depend on are dropped. Writes are never dropped: removing one could invent a
    contradiction the real history does not have.

    Returns (window ordered by call, states tried, proven). If no refutable window is found within
    ``max_starts`` start times / ``time_limit_s``, the last ``max_starts`` ops up to the culprit
    are returned with proven=False (the whole-history verdict stands; only the window is loose).
    """
    t_stop = time.monotonic() + time_limit_s
    assert culprit.ret is not None
    end = culprit.ret
    upto = [o for o in ops if o.call <= end]
    trimmed = [o if o.ret is None or o.ret <= end else _pending(o) for o in upto]
    states = candidate_states(ops)
    starts = sorted({o.call for o in upto if o.call <= culprit.call}, reverse=True)
    window: list[Op] | None = None

    def window_at(k: int) -> list[Op]:
        t0 = starts[k]
        return sorted(
            (o for o in trimmed if o.ret is None or o.ret >= t0), key=lambda o: (o.call, o.id)
        )

    # Galloping then bisection over how far back the window starts: a window that fails keeps
    # failing when it grows (more constraints, same ops at its end), so the shortest failing one
    # is found in O(log n) searches instead of one per start time.
    lo, hi = -1, None  # starts[lo] known not to fail (lo=-1: none tried); starts[hi] fails
    k = 0
    while k < min(len(starts), max_starts) and time.monotonic() <= t_stop:
        if _window_fails(window_at(k), states, budget):
            hi = k
            break
        lo = k
        k = 2 * k + 1
    if hi is None and lo < len(starts) - 1 and len(starts) <= max_starts:
        last = len(starts) - 1
        if _window_fails(window_at(last), states, budget):
            hi = last
    if hi is not None:
        while hi - lo > 1 and time.monotonic() <= t_stop:
            mid = (lo + hi) // 2
            if _window_fails(window_at(mid), states, budget):
                hi = mid
            else:
                lo = mid
        window = window_at(hi)
    originals = {o.id: o for o in upto}
    if window is None:
        tail = sorted(upto, key=lambda o: (o.call, o.id))[-max_starts:]
        return tail, states, False
    i = 0
    while i < len(window) and time.monotonic() <= t_stop:
        o = window[i]
        droppable = o.id != culprit.id and (
            o.f in ("read", "final-read", "sync") or o.status == "fail"
        )
        if droppable:
            trial = window[:i] + window[i + 1 :]
            if _window_fails(trial, states, budget):
                window = trial
                continue
        i += 1
    # Report the ops as recorded (not the trimmed copies).
    return [originals[o.id] for o in window], states, True


def _pending(op: Op) -> Op:
    """A copy of a completed op treated as still outstanding (took effect or not, any time)."""
    return replace(op, ret=None, status="info")
