"""Purge of old snapshots and txn logs: ZooKeeper's `PurgeTxnLog` rule (zkCleanup.sh, autopurge).

Rules:
- keep the newest `snap_retain_count` valid snapshots (at least 3, as ZooKeeper);
- with X the zxid of the oldest kept snapshot, delete every `snapshot.*` and `log.*` named below X,
  except the last log that starts at or before X (it may hold txns after X) — so every kept
  snapshot can still be restored and replayed to the end of the log;
- nothing is deleted when no valid snapshot exists.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

from zkref.server.storage import (
    LOG_PREFIX,
    SNAP_PREFIX,
    VERSION_DIR,
    SnapshotStore,
    list_files,
    logs_needed_from,
)

log = logging.getLogger(__name__)

MIN_SNAP_RETAIN_COUNT: Final = 3


def purge(data_dir: Path, data_log_dir: Path | None, snap_retain_count: int) -> list[Path]:
    """Delete what restore no longer needs; returns the deleted files.

    `data_dir`/`data_log_dir` are zoo.cfg's `dataDir`/`dataLogDir` (None = same as dataDir);
    the files live in their `version-2/` subdirectories.
    """
    if snap_retain_count < MIN_SNAP_RETAIN_COUNT:
        raise ValueError(
            f"snap_retain_count should be greater than or equal to 3, not {snap_retain_count}"
        )
    snap_dir = Path(data_dir) / VERSION_DIR
    log_dir = Path(data_log_dir if data_log_dir is not None else data_dir) / VERSION_DIR
    kept = SnapshotStore(snap_dir).find_valid(snap_retain_count)
    if not kept:
        return []
    least_zxid = kept[-1][0]
    logs = list_files(log_dir, LOG_PREFIX)
    retained = {p for _, p in logs_needed_from(logs, least_zxid)}
    doomed = [p for z, p in logs if z < least_zxid and p not in retained]
    doomed += [p for z, p in list_files(snap_dir, SNAP_PREFIX) if z < least_zxid]
    removed: list[Path] = []
    for p in doomed:
        log.info("Removing file: %s", p)
        try:
            p.unlink()
        except OSError as e:
            log.error("Failed to remove %s: %s", p, e)
            continue
        removed.append(p)
    return removed
