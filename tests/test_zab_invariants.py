"""Each Python twin of a `spec/Zab.tla` invariant holds on a good state and fails on a state
built to break it."""

from __future__ import annotations

import dataclasses
from typing import Any

from zkref.conform import invariants as inv
from zkref.conform.invariants import ZabVars
from zkref.core.acl import OPEN_ACL_UNSAFE
from zkref.core.zab.messages import Sid, Txn
from zkref.core.zab.zxid import make_zxid
from zkref.wire.constants import OpCode
from zkref.wire.records import CreateTxn, TxnHeader

S1, S2, S3 = Sid(1), Sid(2), Sid(3)


def txn(e: int, c: int, v: int = 0) -> Txn:
    z = make_zxid(e, c)
    body = CreateTxn(f"/n{e}_{c}_{v}", b"", OPEN_ACL_UNSAFE, False, 0)
    return Txn(z, TxnHeader(v, c, z, 0, int(OpCode.create)), body)


A, B, C = txn(1, 1), txn(1, 2), txn(2, 1)


def good(**changes: Any) -> ZabVars:
    """Leader 1 of epoch 2 in BROADCAST; all three hold and deliver [A, B, C]."""
    sids = (S1, S2, S3)
    log = (A, B, C)
    v = ZabVars(
        servers=sids,
        state={S1: "LEADING", S2: "FOLLOWING", S3: "FOLLOWING"},
        zab_state={s: "BROADCAST" for s in sids},
        online={s: True for s in sids},
        leader_of={S1: None, S2: S1, S3: S1},
        accepted_epoch={s: 2 for s in sids},
        current_epoch={s: 2 for s in sids},
        history={s: log for s in sids},
        disk={s: log for s in sids},
        last_committed={s: 3 for s in sids},
        nl_phase={S1: "none", S2: "acked", S3: "acked"},
        proposed=frozenset(log),
        committed=frozenset(log),
        epoch_leader=frozenset({(1, S2), (2, S1)}),
    )
    return dataclasses.replace(v, **changes)


def only(v: ZabVars) -> set[str]:
    return set(inv.violations(v))


def test_the_good_state_satisfies_every_invariant() -> None:
    assert only(good()) == set()


def test_leadership() -> None:
    assert only(good(epoch_leader=frozenset({(2, S1), (2, S3)}))) == {"Leadership"}


def test_prefix_consistency_agreement_total_order() -> None:
    other = txn(1, 2, v=9)  # a different (1,2)
    v = good(
        history={S1: (A, B, C), S2: (A, other), S3: (A, B, C)},
        disk={S1: (A, B, C), S2: (A, other), S3: (A, B, C)},
        last_committed={S1: 3, S2: 2, S3: 3},
        proposed=frozenset({A, B, C, other}),
        nl_phase={S1: "none", S2: "none", S3: "acked"},
    )
    # and leader 1 of epoch 2 lacks the other (1,2) that 2 delivered
    assert only(v) == {"PrefixConsistency", "Agreement", "PrimaryIntegrity"}
    swapped = good(
        history={S1: (A, B, C), S2: (B, A, C), S3: (A, B, C)},
        nl_phase={S1: "none", S2: "none", S3: "acked"},
    )
    assert {"PrefixConsistency", "TotalOrder", "LocalPrimaryOrder"} <= only(swapped)


def test_integrity() -> None:
    assert only(good(proposed=frozenset({A, B}))) == {"Integrity"}


def test_local_primary_order_gap() -> None:
    x = txn(1, 3)
    v = good(
        history={s: (A, x) for s in (S1, S2, S3)},
        disk={s: (A, x) for s in (S1, S2, S3)},
        last_committed={s: 2 for s in (S1, S2, S3)},
        proposed=frozenset({A, B, x}),
        committed=frozenset({A, x}),
    )
    assert only(v) == {"LocalPrimaryOrder"}  # (1,2) was proposed, (1,3) delivered without it


def test_global_primary_order() -> None:
    log = (C, A, B)
    v = good(history={s: log for s in (S1, S2, S3)}, disk={s: log for s in (S1, S2, S3)})
    assert "GlobalPrimaryOrder" in only(v)


def test_primary_integrity() -> None:
    v = good(
        history={S1: (A, C), S2: (A, B, C), S3: (A, B, C)},
        disk={S1: (A, C), S2: (A, B, C), S3: (A, B, C)},
        last_committed={S1: 1, S2: 3, S3: 3},
        state={S1: "LEADING", S2: "LOOKING", S3: "LOOKING"},
        leader_of={S1: None, S2: None, S3: None},
        nl_phase={s: "none" for s in (S1, S2, S3)},
    )
    assert only(v) == {"PrimaryIntegrity"}  # leader 1 of epoch 2 lacks B, delivered by 2


def test_committed_log_durability() -> None:
    v = good(disk={S1: (A, B, C), S2: (A, B), S3: (A, B)})
    assert only(v) == {"CommittedLogDurability"}


def test_process_consistency() -> None:
    v = good(
        history={S1: (A, B, C), S2: (A, B, C), S3: (A, C)}, last_committed={S1: 3, S2: 3, S3: 1}
    )
    assert "ProcessConsistency" in only(v)
    # not once the leader is offline
    off = dataclasses.replace(v, online={S1: False, S2: True, S3: True})
    assert "ProcessConsistency" not in only(off)
