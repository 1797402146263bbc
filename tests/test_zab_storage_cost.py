"""The incremental bookkeeping that makes a txn O(1) amortised (SyncRequestProcessor, SimDisk,
HistoryView) agrees with the plain definitions it replaces, over random operation sequences."""

from __future__ import annotations

import copy
import json
import random

import pytest

from zkref.core.acl import OPEN_ACL_UNSAFE
from zkref.core.zab.effects import Effect
from zkref.core.zab.messages import Txn
from zkref.core.zab.storage import HistoryView, SyncRequestProcessor, trunc_to
from zkref.core.zab.zxid import make_zxid
from zkref.sim.disk import SimDisk
from zkref.wire.constants import OpCode
from zkref.wire.records import CreateTxn, TxnHeader


def txn(e: int, c: int) -> Txn:
    z = make_zxid(e, c)
    return Txn(
        z,
        TxnHeader(1, c, z, 0, int(OpCode.create)),
        CreateTxn(f"/{e}-{c}", b"", OPEN_ACL_UNSAFE, False, c),
    )


def test_history_view_is_a_frozen_prefix_equal_to_its_list() -> None:
    enc: list[list[int]] = [[1, 1], [1, 2]]
    v = HistoryView(enc, 2)
    enc.append([2, 1])  # later appends do not show in an earlier view
    assert v == [[1, 1], [1, 2]] and len(v) == 2 and v[-1] == [1, 2] and list(v) == v.tolist()
    assert v != [[1, 1]] and v != [[1, 1], [1, 3]]
    assert copy.deepcopy({"h": v}) == {"h": [[1, 1], [1, 2]]}
    assert json.dumps(v.tolist()) == "[[1, 1], [1, 2]]"
    with pytest.raises(IndexError):
        v[2]


@pytest.mark.parametrize("seed", range(30))
def test_storage_bookkeeping_matches_the_plain_definitions(seed: int) -> None:
    r = random.Random(seed)
    st = SyncRequestProcessor()
    disk = SimDisk()
    views: list[tuple[HistoryView, list[Txn]]] = []
    e, c = 1, 0

    def nothing(new: list[Txn]) -> list[Effect]:
        assert all(map(st.is_durable, new))
        return []

    for _ in range(200):
        op = r.random()
        if op < 0.5:
            k = r.randint(1, 3)
            txns = [txn(e, c + i + 1) for i in range(k)]
            c += k
            st.append(txns)
            disk.append(txns)
        elif op < 0.7:
            st.flush(nothing)
            disk.fsync()
        elif op < 0.8 and st.history:
            z = r.choice(st.history).zxid
            st.truncate(z)
            disk.truncate(z)
            e, c = e + 1, 0
        elif op < 0.87:
            snap = trunc_to(st.history, r.choice([0, *(t.zxid for t in st.history)]))
            st.install_snapshot(0, snap)
            disk.replace(snap)
            e, c = e + 1, 0
        elif op < 0.93:
            st.crash(list(disk.crash().log))
        else:
            e, c = e + 1, 0
        assert st.synced() == (st.disk == st.history)
        assert disk.synced() == (disk.log == disk.durable_log)
        assert st.history == disk.log and st.disk == disk.durable_log
        for ep in {t.epoch for t in st.history} | {e}:
            assert st.count_of_epoch(ep) == sum(1 for t in st.history if t.epoch == ep)
        assert all(st.is_durable(t) == (t in st.disk) for t in st.history)
        views.append((st.history_view(), list(st.history)))
    for v, h in views:
        assert v == [[t.epoch, t.counter] for t in h]
