"""Jute primitives for the snapshot and txn-log files (private to `zkref.server.storage`).

Why not `zkref.wire.codec.encode_record`: the snapshot is a *stream* of variable-length records
(path, DataNode, path, ...) that must be read at an offset and written piecewise while the tree
keeps changing, and its hot loop (one path + one DataNode per znode) wants a single precompiled
`struct` per node. The byte layout is jute's (big-endian; ustring/buffer = int length + bytes,
-1 = null); `tests/test_storage.py` checks it against the codec's `encode_record`.
"""

from __future__ import annotations

import struct
from typing import Final

from zkref.wire.records import ACL, FileHeader, Id, StatPersisted

INT: Final = struct.Struct(">i")
LONG: Final = struct.Struct(">q")
# FileHeader{int magic, int version, long dbid}
FILE_HEADER: Final = struct.Struct(">iiq")
# StatPersisted{long czxid, long mzxid, long ctime, long mtime, int version, int cversion,
# int aversion, long ephemeralOwner, long pzxid}
STAT_PERSISTED: Final = struct.Struct(">qqqqiiiqq")
# The fixed tail of a snapshot node record: DataNode's long acl id, then its StatPersisted.
NODE_TAIL: Final = struct.Struct(">qqqqqiiiqq")
# txn-log record prefix: long checksum, int length
LOG_RECORD_PREFIX: Final = struct.Struct(">qi")
# a snapshot/log session entry: long id, int timeout
SESSION: Final = struct.Struct(">qi")


class JuteError(ValueError):
    """Bytes that are not the jute record they should be (short read, bad length)."""


def write_ustring(out: bytearray, s: str | None) -> None:
    if s is None:
        out += INT.pack(-1)
        return
    b = s.encode("utf-8")
    out += INT.pack(len(b))
    out += b


def write_buffer(out: bytearray, b: bytes | None) -> None:
    if b is None:
        out += INT.pack(-1)
        return
    out += INT.pack(len(b))
    out += b


def write_acl_vector(out: bytearray, acl: tuple[ACL, ...]) -> None:
    out += INT.pack(len(acl))
    for a in acl:
        out += INT.pack(a.perms)
        write_ustring(out, a.id.scheme)
        write_ustring(out, a.id.id)


def encode_file_header(h: FileHeader) -> bytes:
    return FILE_HEADER.pack(h.magic, h.version, h.dbid)


def encode_stat_persisted(s: StatPersisted) -> bytes:
    return STAT_PERSISTED.pack(
        s.czxid,
        s.mzxid,
        s.ctime,
        s.mtime,
        s.version,
        s.cversion,
        s.aversion,
        s.ephemeral_owner,
        s.pzxid,
    )


class Reader:
    """A cursor over a bytes object; every read checks bounds and raises `JuteError`."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def _need(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.buf):
            raise JuteError(
                f"short read: need {n} bytes at offset {self.pos}, have {len(self.buf)}"
            )

    def read_int(self) -> int:
        self._need(4)
        (v,) = INT.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(v)

    def read_long(self) -> int:
        self._need(8)
        (v,) = LONG.unpack_from(self.buf, self.pos)
        self.pos += 8
        return int(v)

    def read_buffer(self) -> bytes | None:
        n = self.read_int()
        if n == -1:
            return None
        if n < -1:
            raise JuteError(f"negative length {n} at offset {self.pos - 4}")
        self._need(n)
        b = self.buf[self.pos : self.pos + n]
        self.pos += n
        return b

    def read_ustring(self) -> str | None:
        b = self.read_buffer()
        if b is None:
            return None
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JuteError(f"bad utf-8 before offset {self.pos}") from e

    def read_ustring_not_null(self) -> str:
        s = self.read_ustring()
        if s is None:
            raise JuteError(f"null string before offset {self.pos}")
        return s

    def read_file_header(self) -> FileHeader:
        self._need(FILE_HEADER.size)
        magic, version, dbid = FILE_HEADER.unpack_from(self.buf, self.pos)
        self.pos += FILE_HEADER.size
        return FileHeader(magic=magic, version=version, dbid=dbid)

    def read_stat_persisted(self) -> StatPersisted:
        self._need(STAT_PERSISTED.size)
        f = STAT_PERSISTED.unpack_from(self.buf, self.pos)
        self.pos += STAT_PERSISTED.size
        return StatPersisted(
            czxid=f[0],
            mzxid=f[1],
            ctime=f[2],
            mtime=f[3],
            version=f[4],
            cversion=f[5],
            aversion=f[6],
            ephemeral_owner=f[7],
            pzxid=f[8],
        )

    def read_acl_vector(self) -> tuple[ACL, ...]:
        n = self.read_int()
        if n == -1:
            return ()
        if n < -1:
            raise JuteError(f"negative vector length {n} at offset {self.pos - 4}")
        out: list[ACL] = []
        for _ in range(n):
            perms = self.read_int()
            scheme = self.read_ustring_not_null()
            ident = self.read_ustring_not_null()
            out.append(ACL(perms=perms, id=Id(scheme=scheme, id=ident)))
        return tuple(out)


def read_nodes(
    buf: bytes, pos: int, acls: dict[int, tuple[ACL, ...]]
) -> tuple[list[tuple[str, bytes | None, tuple[ACL, ...], StatPersisted]], int]:
    """Snapshot node records (`ustring path, DataNode`) up to the "/" terminator.

    Returns the nodes (the root's "" as "/") and the offset after the terminator. One loop with
    precompiled structs: restore time is dominated by this for large trees.
    """
    out: list[tuple[str, bytes | None, tuple[ACL, ...], StatPersisted]] = []
    append = out.append
    unpack_int = INT.unpack_from
    unpack_tail = NODE_TAIL.unpack_from
    tail_size = NODE_TAIL.size
    end = len(buf)
    try:
        while True:
            (n,) = unpack_int(buf, pos)
            pos += 4
            if n < 0 or pos + n > end:
                raise JuteError(f"bad path length {n} at offset {pos - 4}")
            path = buf[pos : pos + n].decode("utf-8")
            pos += n
            if path == "/":
                return out, pos
            (n,) = unpack_int(buf, pos)
            pos += 4
            data: bytes | None
            if n == -1:
                data = None
            elif n < -1 or pos + n > end:
                raise JuteError(f"bad data length {n} at offset {pos - 4}")
            else:
                data = buf[pos : pos + n]
                pos += n
            f = unpack_tail(buf, pos)
            pos += tail_size
            acl = acls.get(f[0])
            if acl is None:
                raise JuteError(f"node {path!r} refers to unknown ACL id {f[0]}")
            append((path or "/", data, acl, StatPersisted(*f[1:])))
    except (struct.error, UnicodeDecodeError) as e:
        raise JuteError(f"truncated node record near offset {pos}: {e}") from e
