"""A whole ensemble's FastLeaderElection in one process, driven from one seed.

Two schedules:
- spec timing (`run_until_stable`, and the heal phase of `swarm`): a ready message is always
  delivered before time moves, i.e. every message delay is below one tick and so below the
  finalize wait, which is the assumption `spec/FastLeaderElection.tla` makes ("decide only when
  no notification is in flight to me"). The spec's invariants are checked after every step.
- swarm (`swarm`): delivery order, ticks and faults (partitions, held/delayed/reset links,
  crashes, restarts, new rounds) are drawn from the seed; the timing assumption no longer
  holds, so only VoteMonotonicLooking is checked during the faults; then everything heals and
  every live member must decide on one leader within a step budget (all the invariants then).

The invariants are the Python twins of the spec's (`INVARIANTS`, same names). Swarm runs check,
after every step, `VoteMonotonicLooking` (a server that stays LOOKING in one round only moves its
vote up), the part of VoteMonotonic that holds whatever the timing, crashes and restarts.

A decided server goes back to LOOKING (`FastLeaderElection.start_round`, the spec's FLERestart)
when its leader is gone for `leader_timeout_ticks`: crashed, cut off, no longer LEADING, or, for
a leader, without a quorum of followers. This stands in for Zab's timeouts until the Zab cores
exist. A failure raises `SimFailure` whose message ends with "reproduce with seed=N".
"""

from __future__ import annotations

import json
import random
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from zkref.core.election.fle import (
    Decided,
    Effect,
    FastLeaderElection,
    Notification,
    Requeue,
    Send,
    ServerState,
    Sid,
    Vote,
    truly_better,
)
from zkref.sim.clock import SimClock
from zkref.sim.network import Network

Nodes = Mapping[Sid, FastLeaderElection]


class SimFailure(AssertionError):
    """A simulated run broke an invariant or did not converge."""


class InvariantViolation(SimFailure):
    def __init__(self, name: str, detail: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.detail = detail


# ---------------------------------------------------------------------- the spec's invariants
# Each takes the live servers and returns None when the invariant holds, else what broke it.


def election_agreement(nodes: Nodes) -> str | None:
    """ElectionAgreement: never two leaders in one round (FLE never deposes an old leader:
    leaders of different rounds may coexist until Zab's timeouts end the old one)."""
    by_round: dict[int, list[Sid]] = {}
    for s, e in sorted(nodes.items()):
        if e.state is ServerState.LEADING:
            by_round.setdefault(e.logical_clock, []).append(s)
    for r, leaders in sorted(by_round.items()):
        if len(leaders) > 1:
            return f"servers {leaders} are all LEADING in round {r}"
    return None


def vote_monotonic(nodes: Nodes) -> str | None:
    """VoteMonotonic: while LOOKING, within a round a server's vote only moves up the (true)
    vote order (deciding for an established leader may adopt a worse vote)."""
    for s, e in sorted(nodes.items()):
        if (
            e.state is ServerState.LOOKING
            and e.prev_round == e.logical_clock
            and not (e.prev_vote == e.current_vote or truly_better(e.current_vote, e.prev_vote))
        ):
            return f"server {s} in round {e.logical_clock}: {e.prev_vote} -> {e.current_vote}"
    return None


def voted_for(sid: Sid, e: FastLeaderElection) -> bool:
    """The spec's VotedFor: the server's own notification of its round is the vote it decided
    on (it voted for its leader rather than joining a leader that others had elected)."""
    own = e.recv_votes.get(sid)
    return own is not None and own.election_epoch == e.logical_clock and own.vote == e.current_vote


def leader_has_best_vote(nodes: Nodes) -> str | None:
    """LeaderHasBestVote: no follower that voted for its leader has a (truly) better initial
    vote than the leader."""
    for i, li in sorted(nodes.items()):
        if li.state is not ServerState.LEADING:
            continue
        for j, fj in sorted(nodes.items()):
            if (
                fj.state is ServerState.FOLLOWING
                and fj.current_vote.leader == i
                and voted_for(j, fj)
                and truly_better(fj.self_vote(), li.self_vote())
            ):
                return f"leader {i} {li.self_vote()} is followed by {j} {fj.self_vote()}"
    return None


INVARIANTS: dict[str, Callable[[Nodes], str | None]] = {
    "ElectionAgreement": election_agreement,
    "VoteMonotonic": vote_monotonic,
    "LeaderHasBestVote": leader_has_best_vote,
}

Seen = tuple[FastLeaderElection, ServerState, int, Vote]


def vote_monotonic_looking(before: Mapping[Sid, Seen], nodes: Nodes) -> str | None:
    """VoteMonotonicLooking (a step property; not in the spec): a server that stays LOOKING in
    the same round only moves its vote up the true order. This is the part of VoteMonotonic
    that holds whatever the timing, restarts and crashes (the spec's ghost also compares the
    vote a server adopts when it follows an established leader, which may be worse)."""
    for s, e in sorted(nodes.items()):
        seen = before.get(s)
        if seen is None:
            continue
        core, state, rnd, vote = seen
        if (
            core is e
            and state is ServerState.LOOKING
            and e.state is ServerState.LOOKING
            and rnd == e.logical_clock
            and not (vote == e.current_vote or truly_better(e.current_vote, vote))
        ):
            return f"server {s} in round {rnd}: {vote} -> {e.current_vote}"
    return None


class ElectionCluster:
    def __init__(
        self,
        n: int,
        seed: int,
        *,
        observers: int = 0,
        zxids: Sequence[int] | None = None,
        epochs: Sequence[int] | None = None,
        finalize_wait_ticks: int = 2,
        max_notification_interval_ticks: int = 16,
        leader_timeout_ticks: int = 24,
        bug_vote_order_1419: bool = False,
        bug_no_finalize_wait: bool = False,
        bug_restart_same_round: bool = False,
        history: int = 40,
        record: bool = False,
    ) -> None:
        assert n >= 1 and observers >= 0
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = SimClock()
        self.voters = [Sid(i) for i in range(1, n + 1)]
        self.observers = [Sid(i) for i in range(n + 1, n + observers + 1)]
        self.members = self.voters + self.observers
        self.network: Network[Sid, Notification] = Network(self.members, self.clock, self.rng)
        # the peers' durable inputs: drawn from the seed unless given (small ranges, so that
        # ties on epoch and zxid are common)
        self.zxids = dict(
            zip(self.voters, zxids or [self.rng.randrange(3) for _ in self.voters], strict=True)
        )
        self.epochs = dict(
            zip(self.voters, epochs or [self.rng.randrange(2) for _ in self.voters], strict=True)
        )
        for o in self.observers:
            self.zxids[o], self.epochs[o] = 0, 0
        self.finalize_wait_ticks = finalize_wait_ticks
        self.max_notification_interval_ticks = max_notification_interval_ticks
        self.leader_timeout_ticks = leader_timeout_ticks
        self.bug_vote_order_1419 = bug_vote_order_1419
        self.bug_no_finalize_wait = bug_no_finalize_wait
        self.bug_restart_same_round = bug_restart_same_round
        self.nodes: dict[Sid, FastLeaderElection | None] = {s: None for s in self.members}
        self.trace: list[dict[str, object]] | None = [] if record else None
        self.lost_ticks: dict[Sid, int] = dict.fromkeys(self.members, 0)
        self.decisions: list[tuple[int, Sid, Decided]] = []
        self.steps = 0
        self.recent: deque[str] = deque(maxlen=history)
        self.checked: Sequence[str] = list(INVARIANTS)  # the spec invariants `check` runs
        self.seen: dict[Sid, Seen] = {}
        self.check_steps = True  # VoteMonotonicLooking after every step
        # FLERestart steps still allowed (the spec's MaxRestarts); None: unbounded
        self.restarts_left: int | None = None
        self.restarts_done = 0
        for s in self.members:
            self._boot(s)

    # ------------------------------------------------------------------ plumbing

    def _new_core(self, sid: Sid) -> FastLeaderElection:
        return FastLeaderElection(
            sid,
            self.voters,
            finalize_wait_ticks=self.finalize_wait_ticks,
            max_notification_interval_ticks=self.max_notification_interval_ticks,
            bug_vote_order_1419=self.bug_vote_order_1419,
            bug_no_finalize_wait=self.bug_no_finalize_wait,
            bug_restart_same_round=self.bug_restart_same_round,
        )

    def _boot(self, sid: Sid) -> None:
        core = self._new_core(sid)
        self.nodes[sid] = core
        self.lost_ticks[sid] = 0
        self._run(sid, core.start_election(self.zxids[sid], self.epochs[sid]))
        self._record(sid, core, {"i": sid})

    def _run(self, sid: Sid, effects: Sequence[Effect]) -> None:
        for eff in effects:
            match eff:
                case Send(to=to, msg=msg):
                    self.network.send(sid, to, msg)
                case Decided():
                    self.decisions.append((self.clock.now, sid, eff))
                    self._log(f"{sid} decided {eff.state} leader={eff.leader}")

    def _record(self, sid: Sid, core: FastLeaderElection, params: dict[str, int]) -> None:
        """One trace record per spec action a core took (STYLE.md "Records")."""
        if self.trace is not None and core.last_action:
            self.trace.append(
                {
                    "seq": len(self.trace),
                    "node": sid,
                    "action": core.last_action,
                    "params": params,
                    "post": core.spec_vars(),
                }
            )

    def trace_ndjson(self) -> str:
        """The recorded trace as NDJSON, header first."""
        assert self.trace is not None, "ElectionCluster(record=True)"
        header = {
            "kind": "header",
            "schema": 1,
            "spec": "FastLeaderElection",
            "servers": self.members,
            "seed": self.seed,
            "source": "sim",
        }
        return "".join(json.dumps(r) + "\n" for r in [header, *self.trace])

    def _log(self, what: str) -> None:
        self.recent.append(f"[{self.steps} t={self.clock.now}] {what}")

    def live(self) -> dict[Sid, FastLeaderElection]:
        return {s: e for s, e in self.nodes.items() if e is not None}

    def fail(self, why: str) -> SimFailure:
        msg = (
            f"{why}\n  last steps:\n    "
            + "\n    ".join(self.recent)
            + f"\n  states: {self.describe()}\nreproduce with seed={self.seed}"
        )
        print(f"election simulation failed; reproduce with seed={self.seed}", file=sys.stderr)
        return SimFailure(msg)

    def describe(self) -> str:
        parts = []
        for s, e in self.nodes.items():
            if e is None:
                parts.append(f"{s}:down")
            else:
                parts.append(
                    f"{s}:{e.state}/r{e.logical_clock}/v{e.current_vote.leader}"
                    + ("/wait" if e.waiting else "")
                )
        return " ".join(parts)

    def check(self, names: Sequence[str] | None = None) -> None:
        """The spec's invariants `names` (default: all) and VoteMonotonicLooking since the
        last check."""
        live = self.live()
        found = [(n, INVARIANTS[n](live)) for n in (self.checked if names is None else names)]
        if self.check_steps:
            found.append(("VoteMonotonicLooking", vote_monotonic_looking(self.seen, live)))
        self.seen = {s: (e, e.state, e.logical_clock, e.current_vote) for s, e in live.items()}
        for name, detail in found:
            if detail is not None:
                raise InvariantViolation(
                    name, detail, str(self.fail(f"invariant {name} violated: {detail}"))
                )

    # ------------------------------------------------------------------ actions

    def deliver(self, frm: Sid, to: Sid) -> None:
        msg = self.network.deliver(frm, to)
        core = self.nodes[to]
        assert core is not None, "a down node has no links"
        self._log(
            f"{frm}->{to} {msg.state} r{msg.election_epoch} leader={msg.leader}"
            f" ({to} {core.state} r{core.logical_clock})"
        )
        core.last_action = ""
        if core.state is ServerState.LOOKING and core.waiting:
            # two spec steps, two records: the finalize wait takes the notification
            # (FLEFinalizeWaitNotmsg) and, if it is better, re-queues it; it is the oldest
            # this server holds, so it is handled next (FLEHandleNotmsg), as `receive` does
            effects = core.finalize_wait_notification(msg)
            self._run(to, [e for e in effects if not isinstance(e, Requeue)])
            self._record(to, core, {"i": to, "j": frm})
            for e in effects:
                if isinstance(e, Requeue):
                    core.last_action = ""
                    self._run(to, core.process_notification(e.msg))
                    self._record(to, core, {"i": to, "j": frm})
            return
        self._run(to, core.receive(frm, msg))
        self._record(to, core, {"i": to, "j": frm})

    def tick(self) -> None:
        self.clock.advance()
        self._log("tick")
        for sid, core in self.live().items():
            core.last_action = ""
            self._run(sid, core.tick())
            self._record(sid, core, {"i": sid})
        self._supervise()

    def _supervise(self) -> None:
        """Zab's stand-in: a decided server whose leadership is gone starts a new round.

        A follower keeps its leader while the leader is up, reachable, LEADING with the same
        vote in the same round (a leader that went through another election closed its
        followers' connections); a leader keeps leading while such followers make a quorum."""
        live = self.live()
        for sid, core in live.items():
            if core.state is ServerState.LOOKING:
                self.lost_ticks[sid] = 0
                continue
            if core.state is ServerState.LEADING:
                followers = {j for j in live if self._follows(j, sid)}
                ok = core.is_quorum(followers | {sid})
            else:
                ok = self._follows(sid, core.current_vote.leader)
            self.lost_ticks[sid] = 0 if ok else self.lost_ticks[sid] + 1
            if self.lost_ticks[sid] >= self.leader_timeout_ticks and self.restarts_left != 0:
                self.new_round(sid)

    def _follows(self, j: Sid, leader: Sid) -> bool:
        f, lc = self.nodes[j], self.nodes[leader]
        return (
            f is not None
            and lc is not None
            and f.state in (ServerState.FOLLOWING, ServerState.OBSERVING)
            and lc.state is ServerState.LEADING
            and f.current_vote == lc.current_vote
            and f.logical_clock == lc.logical_clock
            and self.network.connected(j, leader)
        )

    def new_round(self, sid: Sid) -> None:
        """FLERestart: a decided server goes back to LOOKING (uses up the restart budget)."""
        core = self.nodes[sid]
        assert core is not None and core.state is not ServerState.LOOKING
        assert self.restarts_left != 0
        if self.restarts_left is not None:
            self.restarts_left -= 1
        self.restarts_done += 1
        self.lost_ticks[sid] = 0
        self._log(f"{sid} starts round {core.logical_clock + 1}")
        self._run(sid, core.start_round())
        self._record(sid, core, {"i": sid})

    def crash(self, sid: Sid) -> None:
        """The process dies: its election state is gone (its zxid and epoch are not)."""
        self._log(f"{sid} crashes")
        self.nodes[sid] = None
        self.network.crash(sid)

    def restart(self, sid: Sid) -> None:
        assert self.nodes[sid] is None
        self._log(f"{sid} restarts")
        self.network.revive(sid)
        self._boot(sid)

    def step(self, *, tick_chance: float = 0.0) -> None:
        """Deliver one ready message (a random link), or let a tick pass when none is ready
        (or, with `tick_chance`, even when one is: breaks the spec's timing assumption)."""
        self.steps += 1
        ready = self.network.ready_links()
        if ready and (tick_chance == 0.0 or self.rng.random() >= tick_chance):
            self.deliver(*self.rng.choice(ready))
        else:
            self.tick()

    # ------------------------------------------------------------------ runs

    def stable(self) -> bool:
        """Every live member has decided, all on the same leader, which is live and LEADING."""
        live = self.live()
        leaders = {e.current_vote.leader for e in live.values()}
        if len(leaders) != 1 or any(e.state is ServerState.LOOKING for e in live.values()):
            return False
        (leader,) = leaders
        lc = live.get(leader)
        return lc is not None and lc.state is ServerState.LEADING

    def run_until_stable(self, max_steps: int, *, check: bool = True) -> int:
        """Spec timing; the spec's invariants after every step. Returns the steps it took."""
        for taken in range(max_steps):
            if self.stable():
                return taken
            self.step()
            if check:
                self.check()
        if self.stable():
            return max_steps
        raise self.fail(f"no stable leader after {max_steps} steps")

    def run_spec(self, steps: int, *, max_restarts: int, restart_chance: float = 0.05) -> None:
        """Spec timing with at most `max_restarts` FLERestart steps (random decided servers, or
        the leader-loss stand-in), the spec's invariants after every step. Afterwards restarts
        are unbounded again (for a convergence run)."""
        self.restarts_left = max_restarts
        for _ in range(steps):
            decided = [s for s, e in self.live().items() if e.state is not ServerState.LOOKING]
            if self.restarts_left and decided and self.rng.random() < restart_chance:
                self.steps += 1
                self.new_round(self.rng.choice(decided))
            else:
                self.step()
            self.check()
        self.restarts_left = None

    def swarm(self, fault_steps: int, converge_steps: int) -> int:
        """Random faults for `fault_steps`, then heal and converge. Returns the heal-phase steps."""
        rng = self.rng
        f = (len(self.voters) - 1) // 2
        pairs = list(self.network.links)
        # swarm testing: this run's mix of faults is itself drawn from the seed (some off)
        kinds = ("partition", "heal", "hold", "release", "reset", "delay", "crash", "round")
        weights = [rng.choice((0, 1, 2, 4)) for _ in kinds]
        fault_chance = rng.choice((0.05, 0.1, 0.2, 0.3)) if any(weights) else 0.0
        tick_chance = rng.choice((0.0, 0.05, 0.15, 0.3))
        self._log(f"swarm mix {dict(zip(kinds, weights, strict=True))} ticks {tick_chance}")
        for _ in range(fault_steps):
            if rng.random() >= fault_chance:
                self.step(tick_chance=tick_chance)
                self.check(())
                continue
            kind = rng.choices(kinds, weights)[0]
            if kind == "partition":
                a, b = rng.sample(self.members, 2)
                self._log(f"partition {a}|{b}")
                self.network.partition(a, b)
            elif kind == "heal" and self.network.partitions:
                a, b = sorted(rng.choice(sorted(self.network.partitions, key=sorted)))
                self._log(f"heal {a}|{b}")
                self.network.heal(a, b)
            elif kind == "hold":
                a, b = rng.choice(pairs)
                self._log(f"hold {a}->{b}")
                self.network.hold(a, b)
            elif kind == "release":
                a, b = rng.choice(pairs)
                self._log(f"release {a}->{b}")
                self.network.release(a, b)
            elif kind == "reset":
                a, b = rng.choice(pairs)
                self._log(f"reset {a}->{b} ({self.network.reset(a, b)} lost)")
            elif kind == "delay":
                a, b = rng.choice(pairs)
                d = rng.randrange(4)
                self._log(f"delay {a}->{b} {d}")
                self.network.set_delay(a, b, d)
            elif kind == "crash":
                up = [s for s, e in self.nodes.items() if e is not None]
                down = [s for s, e in self.nodes.items() if e is None]
                if down and (rng.random() < 0.5 or len(up) <= 1):
                    self.restart(rng.choice(down))
                elif up:
                    self.crash(rng.choice(up))
            elif kind == "round":
                decided = [s for s, e in self.live().items() if e.state is not ServerState.LOOKING]
                if decided and self.restarts_left != 0:
                    self.new_round(rng.choice(decided))
            self.check(())
        # heal: links whole again, all but at most f voters (and any observer) back up
        self._log("heal everything")
        self.network.heal()
        down_voters = [s for s in self.voters if self.nodes[s] is None]
        rng.shuffle(down_voters)
        for s in down_voters[f:] + [o for o in self.observers if self.nodes[o] is None]:
            self.restart(s)
        # what was sent during the faults may still be in flight: it is delivered first; the
        # spec's invariants hold again once everyone has decided (they speak of one round, and
        # of the servers that voted for their leader, not of those that joined it late)
        for taken in range(converge_steps):
            if self.stable():
                self.check()
                return taken
            self.step()
            self.check(())
        if self.stable():
            return converge_steps
        raise self.fail(f"no stable leader {converge_steps} steps after healing")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m zkref.sim.election_cluster --n 5 --seeds 0-99 --swarm`: run seeds, print one
    line each; a failure prints its steps and "reproduce with seed=N"."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--n", type=int, default=3, help="voting members")
    p.add_argument("--observers", type=int, default=0)
    p.add_argument("--seeds", default="0", help="N or A-B (inclusive)")
    p.add_argument("--swarm", action="store_true", help="random faults, then heal")
    p.add_argument("--fault-steps", type=int, default=300)
    p.add_argument("--max-steps", type=int, default=5_000)
    p.add_argument("--bug-1419", action="store_true", help="plant ZOOKEEPER-1419")
    p.add_argument("-v", "--verbose", action="store_true", help="print every step")
    args = p.parse_args(argv)
    lo, _, hi = args.seeds.partition("-")
    failed = 0
    for seed in range(int(lo), int(hi or lo) + 1):
        c = ElectionCluster(
            args.n, seed, observers=args.observers, bug_vote_order_1419=args.bug_1419
        )
        if args.verbose:
            c.recent = deque(maxlen=None)
        try:
            if args.swarm:
                c.swarm(args.fault_steps, args.max_steps)
            else:
                c.run_until_stable(args.max_steps)
        except SimFailure as e:
            failed += 1
            print(f"seed={seed} FAILED\n{e}")
            continue
        if args.verbose:
            print("\n".join(c.recent))
        print(f"seed={seed} steps={c.steps} ticks={c.clock.now} {c.describe()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
