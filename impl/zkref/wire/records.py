"""ZooKeeper's jute records as typed, immutable Python values.

One class per record of `zookeeper.jute` that the client protocol, the transaction log and the
snapshot use. Field names are the jute names in snake_case; `bytes | None` is a jute `buffer`
(None = the -1 "null" length), `str | None` likewise for `ustring`. The encoding lives in
`zkref.wire.codec`; these classes hold no behaviour beyond construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# --- org.apache.zookeeper.data -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Id:
    scheme: str
    id: str


@dataclass(frozen=True, slots=True)
class ACL:
    perms: int
    id: Id


@dataclass(frozen=True, slots=True)
class Stat:
    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeral_owner: int
    data_length: int
    num_children: int
    pzxid: int


@dataclass(frozen=True, slots=True)
class StatPersisted:
    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeral_owner: int
    pzxid: int


@dataclass(frozen=True, slots=True)
class ClientInfo:
    auth_scheme: str
    user: str


# --- org.apache.zookeeper.proto: handshake and headers --------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    protocol_version: int
    last_zxid_seen: int
    time_out: int
    session_id: int
    passwd: bytes
    read_only: bool = False
    # True when the client sent the trailing readOnly byte (older clients omit it).
    has_read_only: bool = field(default=True, compare=False)


@dataclass(frozen=True, slots=True)
class ConnectResponse:
    protocol_version: int
    time_out: int
    session_id: int
    passwd: bytes
    read_only: bool = False
    # False: omit the trailing readOnly byte, as ZooKeeper does for a client that omitted it.
    has_read_only: bool = field(default=True, compare=False)


@dataclass(frozen=True, slots=True)
class RequestHeader:
    xid: int
    type: int


@dataclass(frozen=True, slots=True)
class ReplyHeader:
    xid: int
    zxid: int
    err: int


@dataclass(frozen=True, slots=True)
class MultiHeader:
    type: int
    done: bool
    err: int


@dataclass(frozen=True, slots=True)
class AuthPacket:
    type: int
    scheme: str
    auth: bytes


@dataclass(frozen=True, slots=True)
class WatcherEvent:
    type: int
    state: int
    path: str


# --- requests -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateRequest:
    path: str
    data: bytes | None
    acl: tuple[ACL, ...]
    flags: int


@dataclass(frozen=True, slots=True)
class CreateTTLRequest:
    path: str
    data: bytes | None
    acl: tuple[ACL, ...]
    flags: int
    ttl: int


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    path: str
    version: int


@dataclass(frozen=True, slots=True)
class ExistsRequest:
    path: str
    watch: bool


@dataclass(frozen=True, slots=True)
class GetDataRequest:
    path: str
    watch: bool


@dataclass(frozen=True, slots=True)
class SetDataRequest:
    path: str
    data: bytes | None
    version: int


@dataclass(frozen=True, slots=True)
class GetACLRequest:
    path: str


@dataclass(frozen=True, slots=True)
class SetACLRequest:
    path: str
    acl: tuple[ACL, ...]
    version: int


@dataclass(frozen=True, slots=True)
class GetChildrenRequest:
    path: str
    watch: bool


@dataclass(frozen=True, slots=True)
class GetChildren2Request:
    path: str
    watch: bool


@dataclass(frozen=True, slots=True)
class SyncRequest:
    path: str


@dataclass(frozen=True, slots=True)
class CheckVersionRequest:
    path: str
    version: int


@dataclass(frozen=True, slots=True)
class ReconfigRequest:
    joining_servers: str | None
    leaving_servers: str | None
    new_members: str | None
    cur_config_id: int


@dataclass(frozen=True, slots=True)
class CheckWatchesRequest:
    path: str
    type: int


@dataclass(frozen=True, slots=True)
class RemoveWatchesRequest:
    path: str
    type: int


@dataclass(frozen=True, slots=True)
class GetEphemeralsRequest:
    prefix_path: str


@dataclass(frozen=True, slots=True)
class GetAllChildrenNumberRequest:
    path: str


@dataclass(frozen=True, slots=True)
class AddWatchRequest:
    path: str
    mode: int


@dataclass(frozen=True, slots=True)
class SetWatches:
    relative_zxid: int
    data_watches: tuple[str, ...]
    exist_watches: tuple[str, ...]
    child_watches: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SetWatches2:
    relative_zxid: int
    data_watches: tuple[str, ...]
    exist_watches: tuple[str, ...]
    child_watches: tuple[str, ...]
    persistent_watches: tuple[str, ...]
    persistent_recursive_watches: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GetSASLRequest:
    token: bytes | None


# A multi op is (op code, request); `check` is CheckVersionRequest.
MultiOpRequest = (
    CreateRequest | CreateTTLRequest | DeleteRequest | SetDataRequest | CheckVersionRequest
)
MultiReadOpRequest = GetDataRequest | GetChildrenRequest


@dataclass(frozen=True, slots=True)
class MultiRequest:
    ops: tuple[tuple[int, MultiOpRequest], ...]


@dataclass(frozen=True, slots=True)
class MultiReadRequest:
    ops: tuple[tuple[int, MultiReadOpRequest], ...]


# --- responses ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateResponse:
    path: str


@dataclass(frozen=True, slots=True)
class Create2Response:
    path: str
    stat: Stat


@dataclass(frozen=True, slots=True)
class ExistsResponse:
    stat: Stat


@dataclass(frozen=True, slots=True)
class GetDataResponse:
    data: bytes | None
    stat: Stat


@dataclass(frozen=True, slots=True)
class SetDataResponse:
    stat: Stat


@dataclass(frozen=True, slots=True)
class GetACLResponse:
    acl: tuple[ACL, ...]
    stat: Stat


@dataclass(frozen=True, slots=True)
class SetACLResponse:
    stat: Stat


@dataclass(frozen=True, slots=True)
class GetChildrenResponse:
    children: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GetChildren2Response:
    children: tuple[str, ...]
    stat: Stat


@dataclass(frozen=True, slots=True)
class SyncResponse:
    path: str


@dataclass(frozen=True, slots=True)
class GetEphemeralsResponse:
    ephemerals: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GetAllChildrenNumberResponse:
    total_number: int


@dataclass(frozen=True, slots=True)
class WhoAmIResponse:
    client_info: tuple[ClientInfo, ...]


@dataclass(frozen=True, slots=True)
class SetSASLResponse:
    token: bytes | None


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    err: int


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Result of a successful `check` inside multi (no body on the wire)."""


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """Result of a successful `delete` inside multi (no body on the wire)."""


# One (op code, result) per op. op code is the MultiHeader type: the op's own code on success,
# -1 (OpCode.error) with ErrorResponse on failure.
MultiOpResult = (
    CreateResponse | Create2Response | SetDataResponse | CheckResult | DeleteResult | ErrorResponse
)
MultiReadOpResult = GetDataResponse | GetChildrenResponse | ErrorResponse


@dataclass(frozen=True, slots=True)
class MultiResponse:
    results: tuple[tuple[int, MultiOpResult], ...]


@dataclass(frozen=True, slots=True)
class MultiReadResponse:
    results: tuple[tuple[int, MultiReadOpResult], ...]


# --- org.apache.zookeeper.txn (transaction log) -----------------------------------------


@dataclass(frozen=True, slots=True)
class TxnHeader:
    client_id: int
    cxid: int
    zxid: int
    time: int
    type: int


@dataclass(frozen=True, slots=True)
class TxnDigest:
    version: int
    tree_digest: int


@dataclass(frozen=True, slots=True)
class CreateTxn:
    path: str
    data: bytes | None
    acl: tuple[ACL, ...]
    ephemeral: bool
    parent_c_version: int


@dataclass(frozen=True, slots=True)
class CreateTTLTxn:
    path: str
    data: bytes | None
    acl: tuple[ACL, ...]
    parent_c_version: int
    ttl: int


@dataclass(frozen=True, slots=True)
class CreateContainerTxn:
    path: str
    data: bytes | None
    acl: tuple[ACL, ...]
    parent_c_version: int


@dataclass(frozen=True, slots=True)
class DeleteTxn:
    path: str


@dataclass(frozen=True, slots=True)
class SetDataTxn:
    path: str
    data: bytes | None
    version: int


@dataclass(frozen=True, slots=True)
class CheckVersionTxn:
    path: str
    version: int


@dataclass(frozen=True, slots=True)
class SetACLTxn:
    path: str
    acl: tuple[ACL, ...]
    version: int


@dataclass(frozen=True, slots=True)
class CreateSessionTxn:
    time_out: int


@dataclass(frozen=True, slots=True)
class CloseSessionTxn:
    paths2_delete: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ErrorTxn:
    err: int


# A sub-transaction of MultiTxn: (type, record). type is the OpCode of the record
# (create, create2 as create, createContainer, createTTL, delete, deleteContainer, setData, check,
# error).
MultiSubTxn = (
    CreateTxn
    | CreateTTLTxn
    | CreateContainerTxn
    | DeleteTxn
    | SetDataTxn
    | CheckVersionTxn
    | ErrorTxn
)


@dataclass(frozen=True, slots=True)
class MultiTxn:
    txns: tuple[tuple[int, MultiSubTxn], ...]


TxnBody = (
    CreateTxn
    | CreateTTLTxn
    | CreateContainerTxn
    | DeleteTxn
    | SetDataTxn
    | CheckVersionTxn
    | SetACLTxn
    | CreateSessionTxn
    | CloseSessionTxn
    | ErrorTxn
    | MultiTxn
)


# --- persistence --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileHeader:
    magic: int
    version: int
    dbid: int
