"""Random histories that are linearizable by construction (for property tests and the benchmark).

A discrete-event simulation of ``processes`` clients on ``keys`` znodes: each op is invoked,
later takes effect atomically on a sequential model (its linearization point), and later still
returns the model's answer. Some ops lose their reply (``info``) before or after taking effect;
some of those never take effect at all.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from zkref.chaos.history import History, HistoryBuilder
from zkref.chaos.linearizability import ABSENT, RegisterState

__all__ = ["generate"]


@dataclass(slots=True)
class _Pending:
    f: str
    path: str
    call: int
    value: str | None
    exp_version: int | None
    applied: bool = False
    lost: bool = False  # reply lost: becomes info
    status: str = "ok"
    out_value: str | None = None
    out_version: int | None = None
    error: str | None = None


def _apply(state: RegisterState, p: _Pending) -> RegisterState:
    exists, value, version = state
    f = p.f
    if f == "read" or f == "final-read":
        p.out_value, p.out_version = (value, version) if exists else (None, -1)
        return state
    if f == "create":
        if exists:
            p.status, p.error = "fail", "NodeExists"
            return state
        p.out_version = 0
        return (True, p.value, 0)
    if not exists:
        p.status, p.error = "fail", "NoNode"
        return state
    if f == "write":
        p.out_version = version + 1
        return (True, p.value, version + 1)
    if f == "cas":
        if version != p.exp_version:
            p.status, p.error = "fail", "BadVersion"
            return state
        p.out_version = version + 1
        return (True, p.value, version + 1)
    if f == "delete":
        if p.exp_version not in (None, -1) and p.exp_version != version:
            p.status, p.error = "fail", "BadVersion"
            return state
        return ABSENT
    raise AssertionError(f)


def generate(
    seed: int,
    *,
    n_ops: int,
    processes: int = 5,
    keys: int = 3,
    info_rate: float = 0.02,
    final_reads: bool = True,
) -> History:
    rng = random.Random(seed)
    paths = [f"/k{i}" for i in range(keys)]
    state: dict[str, RegisterState] = dict.fromkeys(paths, ABSENT)
    b = HistoryBuilder({"source": "gen", "seed": seed, "processes": processes})
    pending: dict[int, _Pending] = {}
    proc_ids = list(range(processes))
    limbo: list[tuple[int, _Pending]] = []  # info ops that may still take effect
    now = 0
    started = 0
    counter = 0
    while started < n_ops or pending:
        now += rng.randint(1, 1000)
        slot = rng.randrange(processes)
        pid = proc_ids[slot]
        p = pending.get(pid)
        if limbo and rng.random() < 0.05:
            _, lp = limbo.pop(rng.randrange(len(limbo)))
            if not lp.applied and rng.random() < 0.5:
                state[lp.path] = _apply(state[lp.path], lp)
                lp.applied = True
            continue
        if p is None:
            if started >= n_ops:
                continue
            started += 1
            counter += 1
            path = rng.choice(paths)
            _, _, version = state[path]
            f = rng.choices(
                ["read", "write", "cas", "create", "delete"], weights=[3, 3, 3, 1, 0.5]
            )[0]
            value = f"v{counter}" if f in ("write", "cas", "create") else None
            exp = None
            if f == "cas":
                exp = max(version, 0) + rng.choice([0, 0, 0, -1, 1])
            elif f == "delete":
                exp = rng.choice([-1, max(version, 0)])
            pending[pid] = _Pending(f=f, path=path, call=now, value=value, exp_version=exp)
            continue
        if not p.applied and not p.lost:
            if rng.random() < info_rate:
                p.lost = True  # reply lost before taking effect; may still take effect later
            else:
                state[p.path] = _apply(state[p.path], p)
                p.applied = True
                if rng.random() < info_rate:
                    p.lost = True
            continue
        # Return.
        del pending[pid]
        if p.lost:
            b.add(pid, p.f, p.path, p.call, None, "info", value=p.value, version=p.exp_version,
                  error="ConnectionLoss")  # fmt: skip
            if not p.applied and p.f != "read":
                limbo.append((pid, p))
            # A worker whose op was lost continues as a new process (Jepsen's rule).
            proc_ids[slot] = max(proc_ids) + 1
            continue
        b.add(pid, p.f, p.path, p.call, now, "ok" if p.status == "ok" else "fail",
              value=p.value, version=p.exp_version, out_value=p.out_value,
              out_version=p.out_version, error=p.error)  # fmt: skip
    if final_reads:
        for path in paths:
            now += 1000
            fr = _Pending(f="final-read", path=path, call=now, value=None, exp_version=None)
            _apply(state[path], fr)
            b.add(10_000, "final-read", path, now, now + 500, out_value=fr.out_value,
                  out_version=fr.out_version)  # fmt: skip
            now += 500
    return b.build()
