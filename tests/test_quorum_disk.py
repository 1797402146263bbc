"""PeerDisk: an ensemble member's durable fields on real files (the twin of the simulator's
SimDisk): epochs, the txn log, TRUNC/SNAP rewrites and what a restart reads back."""

from __future__ import annotations

from pathlib import Path

from zkref.core.acl import OPEN_ACL_UNSAFE
from zkref.core.zab.messages import Txn
from zkref.core.zab.zxid import make_zxid
from zkref.server.config import ZooCfg
from zkref.server.peer_host import PeerDisk
from zkref.wire.constants import OpCode
from zkref.wire.records import CreateTxn, TxnHeader


def _txn(epoch: int, counter: int) -> Txn:
    z = make_zxid(epoch, counter)
    return Txn(
        z,
        TxnHeader(1, counter, z, 0, int(OpCode.create)),
        CreateTxn(f"/n{epoch}-{counter}", b"v", OPEN_ACL_UNSAFE, False, counter),
    )


def _cfg(tmp_path: Path) -> ZooCfg:
    return ZooCfg(data_dir=tmp_path, prealloc_kb=64)


def test_epochs_and_synced_log_survive_a_restart(tmp_path: Path) -> None:
    d = PeerDisk(_cfg(tmp_path))
    assert d.durable().accepted_epoch == 0 and d.durable().log == ()
    d.write_epoch("acceptedEpoch", 3)
    d.write_epoch("currentEpoch", 2)
    assert (tmp_path / "acceptedEpoch").read_text().strip() == "3"  # ZooKeeper's format
    txns = [_txn(1, 1), _txn(1, 2), _txn(2, 1)]
    d.append(tuple(txns))
    d.sync()
    d.close()
    again = PeerDisk(_cfg(tmp_path)).durable()
    assert (again.accepted_epoch, again.current_epoch) == (3, 2)
    assert list(again.log) == txns
    assert not list(tmp_path.glob("*.tmp"))


def test_rewrite_keeps_exactly_the_given_txns_and_appends_continue(tmp_path: Path) -> None:
    d = PeerDisk(_cfg(tmp_path))
    d.append((_txn(1, 1), _txn(1, 2), _txn(1, 3)))
    d.sync()
    d.rewrite([_txn(1, 1)])  # TRUNC to 0x100000001
    d.append((_txn(2, 1),))
    d.sync()
    d.close()
    assert list(PeerDisk(_cfg(tmp_path)).durable().log) == [_txn(1, 1), _txn(2, 1)]


def test_a_crash_between_the_swap_renames_is_repaired(tmp_path: Path) -> None:
    d = PeerDisk(_cfg(tmp_path))
    d.append((_txn(1, 1),))
    d.sync()
    d.close()
    # as if the process died after moving the old log aside, before the new one took its place
    (tmp_path / "version-2").rename(tmp_path / "version-2.new")
    assert list(PeerDisk(_cfg(tmp_path)).durable().log) == [_txn(1, 1)]
    assert not (tmp_path / "version-2.new").exists()
