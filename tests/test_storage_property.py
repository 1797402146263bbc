"""Hypothesis: any interleaving of txns, syncs, rolls, fuzzy-snapshot steps and crashes.

Invariant after every crash + restore: the tree (and session map) equals the in-memory oracle at
the restored zxid, which is at least the last synced zxid and at most the last appended one —
a crash loses only txns that were never synced, never a synced one, and never half a txn.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_storage import State, Workload, tree_state
from zkref.server.storage import FileTxnSnapLog, SnapshotWriter

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("txns"), st.integers(1, 6)),
        st.tuples(st.just("sync"), st.just(0)),
        st.tuples(st.just("roll"), st.just(0)),
        st.tuples(st.just("snapshot"), st.just(0)),
        st.tuples(st.just("step"), st.integers(1, 8)),
        st.tuples(st.just("crash"), st.integers(0, 100)),  # % of unsynced bytes that hit disk
    ),
    max_size=40,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(seed=st.integers(0, 2**16), ops=OPS)
def test_any_interleaving_restores_a_synced_prefix(
    tmp_path: Path, seed: int, ops: list[tuple[str, int]]
) -> None:
    d = tmp_path / f"case-{seed}-{abs(hash(tuple(ops)))}"
    shutil.rmtree(d, ignore_errors=True)
    w = Workload(seed)
    store = FileTxnSnapLog(d, force_sync=False)
    w.oracle = store.restore().tree
    states: dict[int, tuple[State, dict[int, int]]] = {0: (tree_state(w.oracle), {})}
    writer: SnapshotWriter | None = None
    for op, arg in [*ops, ("crash", 0)]:
        if op == "txns":
            for _ in range(arg):
                store.txn_log.append(*w.next_txn())
                states[w.zxid] = tree_state(w.oracle), dict(w.sessions)
        elif op == "sync":
            store.txn_log.sync()
        elif op == "roll":
            store.txn_log.roll()
        elif op == "snapshot" and writer is None:
            writer = store.begin_snapshot(w.oracle, w.sessions)
        elif op == "step" and writer is not None:
            writer.step(arg)
            if writer.walk_done:
                writer.finish()
                writer = None
        elif op == "crash":
            synced = store.txn_log.last_synced_zxid
            appended = store.txn_log.last_appended_zxid
            # what the OS may have written of the unsynced batch: a prefix of its bytes
            segs = store.txn_log._segments
            path = store.txn_log.current_path
            if segs and segs[0].start_zxid is None and path is not None:
                buf = bytes(segs[0].buf)
                with open(path, "ab") as f:
                    f.write(buf[: len(buf) * arg // 100])
            store = FileTxnSnapLog(d, force_sync=False)  # the old objects are simply dropped
            writer = None
            res = store.restore()
            assert max(synced, 0) <= res.last_zxid <= max(appended, 0)
            assert (tree_state(res.tree), res.sessions) == states[res.last_zxid]
            # carry on from the restored state, as a restarted server would
            w.oracle, w.sessions, w.zxid = res.tree, dict(res.sessions), res.last_zxid
            states = {z: s for z, s in states.items() if z <= res.last_zxid}
    store.close()
