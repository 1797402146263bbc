-------------------------------- MODULE Zab --------------------------------
(***************************************************************************)
(* Zab as ZooKeeper 3.8 runs it: discovery, synchronization, broadcast,    *)
(* crash/restart with explicit durability points, partitions, and per-pair *)
(* FIFO channels that a crash or a partition empties.                      *)
(*                                                                         *)
(* Election is abstracted by an oracle (ElectLeader / FollowLeader): a     *)
(* quorum of LOOKING servers picks a member whose vote (currentEpoch, last *)
(* zxid) is maximal among them.  FastLeaderElection.tla checks the         *)
(* election itself; this split keeps the Zab models small enough for CI.  *)
(*                                                                         *)
(* Durable state: acceptedEpoch, currentEpoch, disk (the fsynced txn log). *)
(* Volatile state: history (in-memory log = disk + unsynced appends),      *)
(* lastCommitted, and all role/phase variables.                            *)
(*                                                                         *)
(* Every action names the Python method that implements it (`\* Impl:`).   *)
(* The BUG_* constants plant bugs; the correct protocol sets all FALSE.    *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets, TLC

CONSTANTS
    Server,            \* set of server ids (model values; symmetric)
    MaxEpoch,          \* no leader may propose an epoch above this
    MaxTxns,           \* bound on client requests proposed in a run
    MaxCrashes,        \* bound on NodeCrash steps
    MaxPartitions,     \* bound on PartitionStart steps
    SnapAllowed,       \* the leader may choose SNAP for any follower
    \* planted bugs (all FALSE in the correct models)
    BUG_ACK_BEFORE_FSYNC,      \* follower ACKs a PROPOSAL before fsync
    BUG_ACKLD_BEFORE_FSYNC,    \* ZOOKEEPER-3911/4646: ACK of NEWLEADER before synced txns are fsynced
    BUG_EPOCH_BEFORE_LOG,      \* ZOOKEEPER-4643: currentEpoch written before synced txns are logged
    BUG_REPORT_PROCESSED_ZXID, \* ZOOKEEPER-2845: follower reports its in-memory (processed) zxid
    BUG_COUNT_STALE_ACKEPOCH,  \* leader counts an ACKEPOCH for an epoch accepted before (ZooKeeper's -1)
    BUG_COMMIT_NO_QUORUM,      \* leader commits a proposal on a single ACK
    BUG_LOCAL_WRITE,           \* follower applies a client write without the leader
    BUG_LOSSY_LINK             \* a link drops a message without closing the connection

ASSUME IsFiniteSet(Server) /\ Cardinality(Server) >= 1

\* A leader that is still establishing itself may give up after initLimit
\* (LeaderInitLimitTimeout).  A definition, so that a cfg or a trace header may
\* override it: FALSE (not explored) unless a cfg says `InitLimitTimeouts = TRUE`,
\* so the older models keep their state graphs state for state.
InitLimitTimeouts == FALSE

-----------------------------------------------------------------------------
VARIABLES
    state,          \* LOOKING | FOLLOWING | LEADING
    zabState,       \* ELECTION | DISCOVERY | SYNCHRONIZATION | BROADCAST
    online,         \* FALSE between NodeCrash and NodeStart
    leaderOf,       \* for a FOLLOWING server: the leader it is connected to
    acceptedEpoch,  \* durable: file acceptedEpoch
    currentEpoch,   \* durable: file currentEpoch
    history,        \* in-memory txn log (sequence of txns)
    disk,           \* durable txn log (what survives a crash)
    lastCommitted,  \* index into history of the last committed (delivered) txn
    nlPhase,        \* follower: none | received | epochWritten | acked (NEWLEADER sub-steps)
    cepochRecv,     \* leader: set of <<sid, acceptedEpoch>> from FOLLOWERINFO this term
    ackeRecv,       \* leader: set of <<sid, lastZxid, fresh>> from ACKEPOCH
    ackldRecv,      \* leader: followers that ACKed NEWLEADER
    forwarding,     \* leader: followers that were synced and get PROPOSAL/COMMIT
    acks,           \* leader: set of <<sid, zxid>> acknowledgements of proposals
    msgs,           \* msgs[i][j]: FIFO channel from i to j
    partition,      \* set of unordered pairs {i, j} that cannot talk
    \* verification-only (ghost) variables
    proposed,       \* every txn a leader ever proposed
    committed,      \* every txn a leader ever committed
    epochLeader,    \* set of <<epoch, sid>>: who established itself in which epoch
    nCrashes, nPartitions,
    lastAction      \* [name, params] of the step that produced this state; not in VIEW

serverVars == <<state, zabState, online, leaderOf, acceptedEpoch, currentEpoch,
                history, disk, lastCommitted, nlPhase>>
leaderVars == <<cepochRecv, ackeRecv, ackldRecv, forwarding, acks>>
netVars == <<msgs, partition>>
ghostVars == <<proposed, committed, epochLeader, nCrashes, nPartitions>>
vars == <<serverVars, leaderVars, netVars, ghostVars, lastAction>>
\* TLC VIEW: everything except the last-action label.
view == <<serverVars, leaderVars, netVars, ghostVars>>

NoLeader == "none"

-----------------------------------------------------------------------------
(* Helpers *)
Max(S) == CHOOSE x \in S : \A y \in S : y <= x
IsQuorum(S) == 2 * Cardinality(S) > Cardinality(Server)
Sids(S) == {p[1] : p \in S}

ZxidLt(a, b) == a[1] < b[1] \/ (a[1] = b[1] /\ a[2] < b[2])
ZxidLe(a, b) == ZxidLt(a, b) \/ a = b
ZeroZxid == <<0, 0>>
LastZxid(h) == IF h = <<>> THEN ZeroZxid ELSE h[Len(h)].zxid
Range(s) == {s[k] : k \in DOMAIN s}
IsPrefix(s, t) == Len(s) <= Len(t) /\ s = SubSeq(t, 1, Len(s))
IndexOf(h, z) == IF \E k \in DOMAIN h : h[k].zxid = z
                 THEN CHOOSE k \in DOMAIN h : h[k].zxid = z ELSE 0
\* the prefix of h with zxids <= z (logs are zxid-ordered in the correct protocol)
TruncTo(h, z) == LET n == Cardinality({k \in DOMAIN h : ZxidLe(h[k].zxid, z)})
                 IN SubSeq(h, 1, n)
Delivered(i) == SubSeq(history[i], 1, lastCommitted[i])
Connected(i, j) == {i, j} \notin partition
\* the vote FastLeaderElection compares (the sid tie-break is abstracted away)
VoteGeq(i, j) == \/ currentEpoch[i] > currentEpoch[j]
                 \/ /\ currentEpoch[i] = currentEpoch[j]
                    /\ ZxidLe(LastZxid(history[j]), LastZxid(history[i]))
FollowersOf(i) == {j \in Server : state[j] = "FOLLOWING" /\ leaderOf[j] = i}
\* the followers of i it has heard from: their FOLLOWERINFO is no longer in flight
\* (ZooKeeper's leader knows a learner by its LearnerHandler, i.e. once it read FOLLOWERINFO)
HeardFollowersOf(i) ==
    {j \in FollowersOf(i) : \A k \in DOMAIN msgs[j][i] : msgs[j][i][k].mtype /= "FOLLOWERINFO"}

(* Channel operators take the channel map so sends and receives compose. *)
Recv(m, from, to) == [m EXCEPT ![from][to] = Tail(@)]
SendAll(m, from, tos, msg) ==
    [x \in Server |-> [y \in Server |->
        IF x = from /\ y \in tos THEN Append(m[x][y], msg) ELSE m[x][y]]]
SendSeq(m, from, to, s) == [m EXCEPT ![from][to] = @ \o s]
Head1(from, to) == msgs[from][to][1]
HasMsg(from, to, t) == msgs[from][to] /= <<>> /\ msgs[from][to][1].mtype = t

Act(name, params) == lastAction' = [name |-> name, params |-> params]

(* Put every server in D back to LOOKING: connections to it close, its     *)
(* channels empty, leaders forget it. Used by crash, partition, timeout.   *)
GoLooking(D) ==
    /\ state' = [x \in Server |-> IF x \in D THEN "LOOKING" ELSE state[x]]
    /\ zabState' = [x \in Server |-> IF x \in D THEN "ELECTION" ELSE zabState[x]]
    /\ leaderOf' = [x \in Server |-> IF x \in D THEN NoLeader ELSE leaderOf[x]]
    /\ nlPhase' = [x \in Server |-> IF x \in D THEN "none" ELSE nlPhase[x]]
    /\ cepochRecv' = [x \in Server |-> IF x \in D THEN {} ELSE cepochRecv[x]]
    /\ ackeRecv' = [x \in Server |-> IF x \in D THEN {}
                                     ELSE {p \in ackeRecv[x] : p[1] \notin D}]
    /\ ackldRecv' = [x \in Server |-> IF x \in D THEN {} ELSE ackldRecv[x] \ D]
    /\ forwarding' = [x \in Server |-> IF x \in D THEN {} ELSE forwarding[x] \ D]
    /\ acks' = [x \in Server |-> IF x \in D THEN {} ELSE acks[x]]
CutChannels(m, D) ==
    [x \in Server |-> [y \in Server |-> IF x \in D \/ y \in D THEN <<>> ELSE m[x][y]]]

-----------------------------------------------------------------------------
Init ==
    /\ state = [i \in Server |-> "LOOKING"]
    /\ zabState = [i \in Server |-> "ELECTION"]
    /\ online = [i \in Server |-> TRUE]
    /\ leaderOf = [i \in Server |-> NoLeader]
    /\ acceptedEpoch = [i \in Server |-> 0]
    /\ currentEpoch = [i \in Server |-> 0]
    /\ history = [i \in Server |-> <<>>]
    /\ disk = [i \in Server |-> <<>>]
    /\ lastCommitted = [i \in Server |-> 0]
    /\ nlPhase = [i \in Server |-> "none"]
    /\ cepochRecv = [i \in Server |-> {}]
    /\ ackeRecv = [i \in Server |-> {}]
    /\ ackldRecv = [i \in Server |-> {}]
    /\ forwarding = [i \in Server |-> {}]
    /\ acks = [i \in Server |-> {}]
    /\ msgs = [i \in Server |-> [j \in Server |-> <<>>]]
    /\ partition = {}
    /\ proposed = {}
    /\ committed = {}
    /\ epochLeader = {}
    /\ nCrashes = 0
    /\ nPartitions = 0
    /\ lastAction = [name |-> "Init", params |-> <<>>]

-----------------------------------------------------------------------------
(* Election (oracle) *)

\* A quorum Q of LOOKING servers settles on i, whose vote is maximal in Q.
\* Impl: zkref/core/election/fle.py FastLeaderElection.decide
ElectLeader(i, Q) ==
    /\ i \in Q /\ IsQuorum(Q)
    /\ \A j \in Q : online[j] /\ state[j] = "LOOKING" /\ Connected(i, j) /\ VoteGeq(i, j)
    /\ \A j \in Q : acceptedEpoch[j] < MaxEpoch
    \* shutting down the old role flushes the log (SyncRequestProcessor.shutdown)
    \* before the vote is cast; a crash can still come first
    /\ \A j \in Q : disk[j] = history[j]
    /\ state' = [x \in Server |-> IF x = i THEN "LEADING"
                                  ELSE IF x \in Q THEN "FOLLOWING" ELSE state[x]]
    /\ zabState' = [x \in Server |-> IF x \in Q THEN "DISCOVERY" ELSE zabState[x]]
    /\ leaderOf' = [x \in Server |-> IF x \in Q \ {i} THEN i ELSE leaderOf[x]]
    \* ConnectAndFollowerSendFOLLOWERINFO, folded in: each follower sends its acceptedEpoch
    /\ msgs' = [x \in Server |-> [y \in Server |->
                  IF y = i /\ x \in Q \ {i}
                  THEN Append(msgs[x][y], [mtype |-> "FOLLOWERINFO", epoch |-> acceptedEpoch[x]])
                  ELSE msgs[x][y]]]
    /\ cepochRecv' = [cepochRecv EXCEPT ![i] = {}]
    /\ UNCHANGED <<online, acceptedEpoch, currentEpoch, history, disk, lastCommitted, nlPhase,
                   ackeRecv, ackldRecv, forwarding, acks, partition, ghostVars>>
    /\ Act("ElectLeader", <<i, Q>>)

\* A LOOKING server learns (from out-of-election votes) that j leads, and follows it.
\* Impl: zkref/core/election/fle.py FastLeaderElection.process_out_of_election
FollowLeader(i, j) ==
    /\ online[i] /\ online[j] /\ i /= j
    /\ state[i] = "LOOKING" /\ state[j] = "LEADING" /\ Connected(i, j)
    /\ disk[i] = history[i]
    /\ state' = [state EXCEPT ![i] = "FOLLOWING"]
    /\ zabState' = [zabState EXCEPT ![i] = "DISCOVERY"]
    /\ leaderOf' = [leaderOf EXCEPT ![i] = j]
    /\ msgs' = SendSeq(msgs, i, j, <<[mtype |-> "FOLLOWERINFO", epoch |-> acceptedEpoch[i]]>>)
    /\ UNCHANGED <<online, acceptedEpoch, currentEpoch, history, disk, lastCommitted, nlPhase,
                   leaderVars, partition, ghostVars>>
    /\ Act("FollowLeader", <<i, j>>)

-----------------------------------------------------------------------------
(* Discovery *)

EpochDecided(i) == IsQuorum(Sids(cepochRecv[i]) \cup {i})

\* Impl: zkref/core/zab/leader.py Leader.process_followerinfo
LeaderProcessFOLLOWERINFO(i, j) ==
    /\ online[i] /\ state[i] = "LEADING" /\ HasMsg(j, i, "FOLLOWERINFO")
    /\ LET m == Head1(j, i)
           recv == cepochRecv[i] \cup {<<j, m.epoch>>}
           newEpoch == Max({p[2] : p \in recv} \cup {acceptedEpoch[i]}) + 1
           info(e) == [mtype |-> "LEADERINFO", epoch |-> e]
       IN
       /\ cepochRecv' = [cepochRecv EXCEPT ![i] = recv]
       /\ IF EpochDecided(i)
          THEN \* epoch already fixed: answer this late follower at once
               /\ msgs' = SendSeq(Recv(msgs, j, i), i, j, <<info(acceptedEpoch[i])>>)
               /\ UNCHANGED acceptedEpoch
          ELSE IF IsQuorum(Sids(recv) \cup {i})
          THEN \* getEpochToPropose: durability point, acceptedEpoch written before LEADERINFO
               \* goes to every waiting follower still connected: j and those heard from.  A
               \* sender that has since crashed or gone LOOKING still counts towards the quorum
               \* (ZooKeeper's connectingFollowers keeps it) but its connection is gone, so no
               \* LEADERINFO reaches it (found by trace validation with 5 servers, finding 8).
               /\ newEpoch <= MaxEpoch
               /\ acceptedEpoch' = [acceptedEpoch EXCEPT ![i] = newEpoch]
               /\ msgs' = SendAll(Recv(msgs, j, i), i,
                                  (Sids(recv) \cap HeardFollowersOf(i)) \cup {j}, info(newEpoch))
          ELSE /\ msgs' = Recv(msgs, j, i)
               /\ UNCHANGED acceptedEpoch
    /\ UNCHANGED <<state, zabState, online, leaderOf, currentEpoch, history, disk,
                   lastCommitted, nlPhase, ackeRecv, ackldRecv, forwarding, acks,
                   partition, ghostVars>>
    /\ Act("LeaderProcessFOLLOWERINFO", <<i, j>>)

\* Impl: zkref/core/zab/follower.py Follower.process_leaderinfo
FollowerProcessLEADERINFO(i, j) ==
    /\ online[i] /\ state[i] = "FOLLOWING" /\ leaderOf[i] = j /\ zabState[i] = "DISCOVERY"
    /\ HasMsg(j, i, "LEADERINFO")
    /\ LET e == Head1(j, i).epoch
           reported == IF BUG_REPORT_PROCESSED_ZXID THEN LastZxid(Delivered(i))
                       ELSE LastZxid(history[i])
       IN IF e >= acceptedEpoch[i]
          THEN \* durability point: acceptedEpoch is written before ACKEPOCH leaves.
               \* If e was accepted before, the ACK says so (ZooKeeper sends epoch -1)
               \* and the leader must not count it towards the epoch quorum.
               /\ acceptedEpoch' = [acceptedEpoch EXCEPT ![i] = e]
               /\ zabState' = [zabState EXCEPT ![i] = "SYNCHRONIZATION"]
               /\ msgs' = SendSeq(Recv(msgs, j, i), i, j,
                            <<[mtype |-> "ACKEPOCH", epoch |-> currentEpoch[i], zxid |-> reported,
                               fresh |-> e > acceptedEpoch[i]]>>)
               /\ UNCHANGED <<state, leaderOf, nlPhase, leaderVars>>
          ELSE \* the leader is behind this follower's accepted epoch: give up, elect again
               /\ GoLooking({i})
               /\ msgs' = CutChannels(msgs, {i})
               /\ UNCHANGED acceptedEpoch
    /\ UNCHANGED <<online, currentEpoch, history, disk, lastCommitted, partition, ghostVars>>
    /\ Act("FollowerProcessLEADERINFO", <<i, j>>)

\* Impl: zkref/core/zab/leader.py Leader.process_ackepoch
LeaderProcessACKEPOCH(i, j) ==
    /\ online[i] /\ state[i] = "LEADING" /\ HasMsg(j, i, "ACKEPOCH")
    /\ LET m == Head1(j, i)
           recv == ackeRecv[i] \cup {<<j, m.zxid, m.fresh>>}
           electing == {p[1] : p \in {q \in recv : q[3] \/ BUG_COUNT_STALE_ACKEPOCH}}
           established == zabState[i] = "DISCOVERY" /\ IsQuorum(electing \cup {i})
           \* waitForEpochAck: a follower more recent than the leader ends this leadership
           ahead == /\ zabState[i] = "DISCOVERY" /\ m.fresh
                    /\ \/ m.epoch > currentEpoch[i]
                       \/ m.epoch = currentEpoch[i] /\ ZxidLt(LastZxid(history[i]), m.zxid)
       IN
       IF ahead
       THEN LET D == {i} \cup FollowersOf(i)
            IN /\ GoLooking(D)
               /\ msgs' = CutChannels(msgs, D)
               /\ UNCHANGED <<currentEpoch, epochLeader>>
       ELSE
       /\ ackeRecv' = [ackeRecv EXCEPT ![i] = recv]
       /\ msgs' = Recv(msgs, j, i)
       /\ IF established
          THEN \* waitForEpochAck done: the leader writes currentEpoch and starts syncing
               /\ zabState' = [zabState EXCEPT ![i] = "SYNCHRONIZATION"]
               /\ currentEpoch' = [currentEpoch EXCEPT ![i] = acceptedEpoch[i]]
               /\ epochLeader' = epochLeader \cup {<<acceptedEpoch[i], i>>}
          ELSE UNCHANGED <<zabState, currentEpoch, epochLeader>>
       /\ UNCHANGED <<state, leaderOf, nlPhase, cepochRecv, ackldRecv, forwarding, acks>>
    /\ UNCHANGED <<online, acceptedEpoch, history, disk, lastCommitted, partition,
                   proposed, committed, nCrashes, nPartitions>>
    /\ Act("LeaderProcessACKEPOCH", <<i, j>>)

-----------------------------------------------------------------------------
(* Synchronization *)

\* Choose DIFF, TRUNC (+DIFF) or SNAP from the follower's reported last zxid,
\* then queue the sync packet and NEWLEADER; from now on j also gets proposals.
\* Impl: zkref/core/zab/leader.py LearnerHandler.sync_follower
SyncPacket(h, z, snap) ==
    IF snap THEN [mtype |-> "SNAP", zxid |-> LastZxid(h), txns |-> h]
    ELSE IF z = LastZxid(h) THEN [mtype |-> "DIFF", zxid |-> z, txns |-> <<>>]
    ELSE IF ZxidLt(LastZxid(h), z) THEN [mtype |-> "TRUNC", zxid |-> LastZxid(h), txns |-> <<>>]
    ELSE LET k == Len(TruncTo(h, z))   \* leader's txns at or below z
         IN IF z = ZeroZxid \/ (k > 0 /\ h[k].zxid = z)
            THEN [mtype |-> "DIFF", zxid |-> z, txns |-> SubSeq(h, k + 1, Len(h))]
            ELSE [mtype |-> "TRUNC", zxid |-> IF k = 0 THEN ZeroZxid ELSE h[k].zxid,
                  txns |-> SubSeq(h, k + 1, Len(h))]

LeaderSyncFollower(i, j) ==
    /\ online[i] /\ state[i] = "LEADING"
    /\ zabState[i] \in {"SYNCHRONIZATION", "BROADCAST"}
    /\ j \notin forwarding[i]
    /\ \E p \in ackeRecv[i] :
        /\ p[1] = j
        /\ \E snap \in (IF SnapAllowed THEN {FALSE, TRUE} ELSE {FALSE}) :
            msgs' = SendSeq(msgs, i, j,
                      <<SyncPacket(history[i], p[2], snap),
                        [mtype |-> "NEWLEADER", epoch |-> acceptedEpoch[i]]>>)
    /\ forwarding' = [forwarding EXCEPT ![i] = @ \cup {j}]
    /\ UNCHANGED <<serverVars, cepochRecv, ackeRecv, ackldRecv, acks, partition, ghostVars>>
    /\ Act("LeaderSyncFollower", <<i, j>>)

\* Impl: zkref/core/zab/follower.py Follower.process_sync_message
FollowerProcessSyncMessage(i, j) ==
    /\ online[i] /\ state[i] = "FOLLOWING" /\ leaderOf[i] = j
    /\ zabState[i] = "SYNCHRONIZATION" /\ nlPhase[i] = "none"
    /\ msgs[j][i] /= <<>> /\ Head1(j, i).mtype \in {"DIFF", "TRUNC", "SNAP"}
    /\ LET m == Head1(j, i)
       IN CASE m.mtype = "DIFF" ->
                 /\ history' = [history EXCEPT ![i] = @ \o m.txns]
                 /\ UNCHANGED <<disk, lastCommitted>>
            [] m.mtype = "TRUNC" ->
                 \* truncation rewrites the log file at once
                 LET kept == TruncTo(history[i], m.zxid)
                 IN /\ history' = [history EXCEPT ![i] = kept \o m.txns]
                    /\ disk' = [disk EXCEPT ![i] = TruncTo(@, m.zxid)]
                    /\ lastCommitted' = [lastCommitted EXCEPT ![i] =
                                           IF @ < Len(kept) THEN @ ELSE Len(kept)]
            [] m.mtype = "SNAP" ->
                 \* the snapshot reaches the disk only at the next fsync (at NEWLEADER)
                 /\ history' = [history EXCEPT ![i] = m.txns]
                 /\ lastCommitted' = [lastCommitted EXCEPT ![i] = 0]
                 /\ UNCHANGED disk
    /\ msgs' = Recv(msgs, j, i)
    /\ UNCHANGED <<state, zabState, online, leaderOf, acceptedEpoch, currentEpoch, nlPhase,
                   leaderVars, partition, ghostVars>>
    /\ Act("FollowerProcessSyncMessage", <<i, j>>)

\* NEWLEADER is handled in three steps so that a crash can fall between them:
\* received -> (log fsynced) currentEpoch written -> ACK sent.
\* Impl: zkref/core/zab/follower.py Follower.process_newleader
FollowerProcessNEWLEADER(i, j) ==
    /\ online[i] /\ state[i] = "FOLLOWING" /\ leaderOf[i] = j
    /\ zabState[i] = "SYNCHRONIZATION" /\ nlPhase[i] = "none"
    /\ HasMsg(j, i, "NEWLEADER")
    /\ LET e == Head1(j, i).epoch
           ackld == [mtype |-> "ACKLD", epoch |-> e]
       IN CASE BUG_ACKLD_BEFORE_FSYNC ->
                 \* ZOOKEEPER-3911/4646: epoch written and ACK sent, txns logged later
                 /\ currentEpoch' = [currentEpoch EXCEPT ![i] = e]
                 /\ nlPhase' = [nlPhase EXCEPT ![i] = "acked"]
                 /\ msgs' = SendSeq(Recv(msgs, j, i), i, j, <<ackld>>)
            [] BUG_EPOCH_BEFORE_LOG ->
                 \* ZOOKEEPER-4643: currentEpoch written before the synced txns are logged
                 /\ currentEpoch' = [currentEpoch EXCEPT ![i] = e]
                 /\ nlPhase' = [nlPhase EXCEPT ![i] = "epochWritten"]
                 /\ msgs' = Recv(msgs, j, i)
            [] OTHER ->
                 /\ nlPhase' = [nlPhase EXCEPT ![i] = "received"]
                 /\ msgs' = Recv(msgs, j, i)
                 /\ UNCHANGED currentEpoch
    /\ UNCHANGED <<state, zabState, online, leaderOf, acceptedEpoch, history, disk,
                   lastCommitted, leaderVars, partition, ghostVars>>
    /\ Act("FollowerProcessNEWLEADER", <<i, j>>)

\* Durability point: currentEpoch is written only once the synced txns are on disk.
\* Impl: zkref/core/zab/follower.py Follower.update_current_epoch
FollowerUpdateCurrentEpoch(i) ==
    /\ online[i] /\ state[i] = "FOLLOWING" /\ nlPhase[i] = "received"
    /\ disk[i] = history[i]
    /\ currentEpoch' = [currentEpoch EXCEPT ![i] = acceptedEpoch[i]]
    /\ nlPhase' = [nlPhase EXCEPT ![i] = "epochWritten"]
    /\ UNCHANGED <<state, zabState, online, leaderOf, acceptedEpoch, history, disk,
                   lastCommitted, leaderVars, netVars, ghostVars>>
    /\ Act("FollowerUpdateCurrentEpoch", <<i>>)

\* ACK messages for the txns of s that belong to i's accepted epoch, in log order.
AckMsgs(i, s) ==
    LET ks == {k \in DOMAIN s : s[k].zxid[1] = acceptedEpoch[i]}
        ord == [n \in 1..Cardinality(ks) |-> CHOOSE k \in ks : Cardinality({q \in ks : q <= k}) = n]
    IN [n \in 1..Len(ord) |-> [mtype |-> "ACK", zxid |-> s[ord[n]].zxid]]

\* The ACK of NEWLEADER leaves only after log and epoch are durable.
\* Impl: zkref/core/zab/follower.py Follower.reply_ackld
FollowerReplyACKLD(i) ==
    /\ online[i] /\ state[i] = "FOLLOWING" /\ nlPhase[i] = "epochWritten"
    /\ disk[i] = history[i]
    /\ nlPhase' = [nlPhase EXCEPT ![i] = "acked"]
    \* then ACK the synced proposals of this epoch that are already durable
    /\ msgs' = SendSeq(msgs, i, leaderOf[i],
                 <<[mtype |-> "ACKLD", epoch |-> acceptedEpoch[i]]>> \o AckMsgs(i, disk[i]))
    /\ UNCHANGED <<state, zabState, online, leaderOf, acceptedEpoch, currentEpoch, history,
                   disk, lastCommitted, leaderVars, partition, ghostVars>>
    /\ Act("FollowerReplyACKLD", <<i>>)

\* Impl: zkref/core/zab/leader.py Leader.process_ackld
LeaderProcessACKLD(i, j) ==
    /\ online[i] /\ state[i] = "LEADING" /\ HasMsg(j, i, "ACKLD")
    /\ zabState[i] \in {"SYNCHRONIZATION", "BROADCAST"}
    \* the leader counts itself only once its own log is on disk
    /\ disk[i] = history[i]
    /\ LET recv == ackldRecv[i] \cup {j}
           uptodate == [mtype |-> "UPTODATE", zxid |-> LastZxid(Delivered(i))]
       IN
       /\ ackldRecv' = [ackldRecv EXCEPT ![i] = recv]
       /\ IF zabState[i] = "SYNCHRONIZATION"
          THEN IF IsQuorum(recv \cup {i})
               THEN \* waitForNewLeaderAck done: the whole history is committed
                    LET allIn == [mtype |-> "UPTODATE", zxid |-> LastZxid(history[i])]
                    IN
                    /\ zabState' = [zabState EXCEPT ![i] = "BROADCAST"]
                    /\ lastCommitted' = [lastCommitted EXCEPT ![i] = Len(history[i])]
                    /\ committed' = committed \cup Range(history[i])
                    /\ msgs' = SendAll(Recv(msgs, j, i), i, recv, allIn)
               ELSE /\ msgs' = Recv(msgs, j, i)
                    /\ UNCHANGED <<zabState, lastCommitted, committed>>
          ELSE \* a follower joining an established leader
               /\ msgs' = SendSeq(Recv(msgs, j, i), i, j, <<uptodate>>)
               /\ UNCHANGED <<zabState, lastCommitted, committed>>
    /\ UNCHANGED <<state, online, leaderOf, acceptedEpoch, currentEpoch, history, disk, nlPhase,
                   cepochRecv, ackeRecv, forwarding, acks, partition,
                   proposed, epochLeader, nCrashes, nPartitions>>
    /\ Act("LeaderProcessACKLD", <<i, j>>)

\* Impl: zkref/core/zab/follower.py Follower.process_uptodate
FollowerProcessUPTODATE(i, j) ==
    /\ online[i] /\ state[i] = "FOLLOWING" /\ leaderOf[i] = j
    /\ HasMsg(j, i, "UPTODATE")
    /\ LET k == IndexOf(history[i], Head1(j, i).zxid)
       IN lastCommitted' = [lastCommitted EXCEPT ![i] = IF k > @ THEN k ELSE @]
    /\ zabState' = [zabState EXCEPT ![i] = "BROADCAST"]
    /\ msgs' = Recv(msgs, j, i)
    /\ UNCHANGED <<state, online, leaderOf, acceptedEpoch, currentEpoch, history, disk,
                   nlPhase, leaderVars, partition, ghostVars>>
    /\ Act("FollowerProcessUPTODATE", <<i, j>>)

-----------------------------------------------------------------------------
(* Broadcast *)

\* Commit, in zxid order, every outstanding proposal that a quorum has ACKed.
\* Returns the new lastCommitted of leader i given its ack set a.
AckedBy(i, a, k) == {p[1] : p \in {q \in a : q[2] = history[i][k].zxid}}
CanCommit(i, a, k) == IF BUG_COMMIT_NO_QUORUM THEN AckedBy(i, a, k) /= {}
                      ELSE IsQuorum(AckedBy(i, a, k))
CommitPoint(i, a) ==
    LET ok == {n \in lastCommitted[i]..Len(history[i]) :
                 \A k \in (lastCommitted[i] + 1)..n : CanCommit(i, a, k)}
    IN Max(ok)
CommitMsgs(i, from, to) ==
    [k \in 1..(to - from) |-> [mtype |-> "COMMIT", zxid |-> history[i][from + k].zxid]]

\* Impl: zkref/core/zab/leader.py Leader.process_request
LeaderProcessRequest(i) ==
    /\ online[i] /\ state[i] = "LEADING" /\ zabState[i] = "BROADCAST"
    /\ Cardinality(proposed) < MaxTxns
    /\ LET c == Cardinality({k \in DOMAIN history[i] : history[i][k].zxid[1] = currentEpoch[i]})
           t == [zxid |-> <<currentEpoch[i], c + 1>>, v |-> i]
       IN /\ history' = [history EXCEPT ![i] = Append(@, t)]
          /\ proposed' = proposed \cup {t}
          /\ msgs' = SendAll(msgs, i, forwarding[i], [mtype |-> "PROPOSAL", txn |-> t])
    /\ UNCHANGED <<state, zabState, online, leaderOf, acceptedEpoch, currentEpoch, disk,
                   lastCommitted, nlPhase, leaderVars, partition,
                   committed, epochLeader, nCrashes, nPartitions>>
    /\ Act("LeaderProcessRequest", <<i>>)

\* Impl: zkref/core/zab/follower.py Follower.process_proposal
FollowerProcessPROPOSAL(i, j) ==
    /\ online[i] /\ state[i] = "FOLLOWING" /\ leaderOf[i] = j
    /\ HasMsg(j, i, "PROPOSAL")
    /\ LET t == Head1(j, i).txn
       IN /\ history' = [history EXCEPT ![i] = Append(@, t)]
          /\ msgs' = IF BUG_ACK_BEFORE_FSYNC
                     THEN SendSeq(Recv(msgs, j, i), i, j, <<[mtype |-> "ACK", zxid |-> t.zxid]>>)
                     ELSE Recv(msgs, j, i)
    /\ UNCHANGED <<state, zabState, online, leaderOf, acceptedEpoch, currentEpoch, disk,
                   lastCommitted, nlPhase, leaderVars, partition, ghostVars>>
    /\ Act("FollowerProcessPROPOSAL", <<i, j>>)

\* Durability point: the txn log is fsynced. A follower ACKs what just became
\* durable (SendAckRequestProcessor); a leader counts its own ACK.
\* Impl: zkref/core/zab/storage.py SyncRequestProcessor.flush
NodeFsyncLog(i) ==
    /\ online[i] /\ disk[i] /= history[i]
    /\ disk' = [disk EXCEPT ![i] = history[i]]
    /\ LET new == {k \in DOMAIN history[i] :
                     /\ history[i][k] \notin Range(disk[i])
                     /\ history[i][k].zxid[1] = acceptedEpoch[i]}
           newSeq == [n \in 1..Cardinality(new) |->
                        history[i][CHOOSE k \in new :
                                     Cardinality({q \in new : q <= k}) = n]]
       IN
       IF state[i] = "LEADING" /\ zabState[i] = "BROADCAST"
       THEN LET a == acks[i] \cup {<<i, history[i][k].zxid>> : k \in new}
                c == CommitPoint(i, a)
            IN /\ acks' = [acks EXCEPT ![i] = a]
               /\ lastCommitted' = [lastCommitted EXCEPT ![i] = c]
               /\ committed' = committed \cup {history[i][k] : k \in (lastCommitted[i] + 1)..c}
               /\ msgs' = [x \in Server |-> [y \in Server |->
                            IF x = i /\ y \in forwarding[i]
                            THEN msgs[x][y] \o CommitMsgs(i, lastCommitted[i], c)
                            ELSE msgs[x][y]]]
       ELSE \* a follower ACKs proposals only after it has ACKed NEWLEADER
            /\ msgs' = IF state[i] = "FOLLOWING" /\ nlPhase[i] = "acked" /\ ~BUG_ACK_BEFORE_FSYNC
                       THEN SendSeq(msgs, i, leaderOf[i],
                                    [n \in 1..Len(newSeq) |->
                                       [mtype |-> "ACK", zxid |-> newSeq[n].zxid]])
                       ELSE msgs
            /\ UNCHANGED <<acks, lastCommitted, committed>>
    /\ UNCHANGED <<state, zabState, online, leaderOf, acceptedEpoch, currentEpoch, history,
                   nlPhase, cepochRecv, ackeRecv, ackldRecv, forwarding, partition,
                   proposed, epochLeader, nCrashes, nPartitions>>
    /\ Act("NodeFsyncLog", <<i>>)

\* Impl: zkref/core/zab/leader.py Leader.process_ack
LeaderProcessACK(i, j) ==
    /\ online[i] /\ state[i] = "LEADING" /\ HasMsg(j, i, "ACK")
    /\ LET z == Head1(j, i).zxid
           a == IF zabState[i] = "BROADCAST" THEN acks[i] \cup {<<j, z>>} ELSE acks[i]
           c == IF zabState[i] = "BROADCAST" THEN CommitPoint(i, a) ELSE lastCommitted[i]
       IN /\ acks' = [acks EXCEPT ![i] = a]
          /\ lastCommitted' = [lastCommitted EXCEPT ![i] = c]
          /\ committed' = committed \cup {history[i][k] : k \in (lastCommitted[i] + 1)..c}
          /\ msgs' = LET m == Recv(msgs, j, i)
                     IN [x \in Server |-> [y \in Server |->
                          IF x = i /\ y \in forwarding[i]
                          THEN m[x][y] \o CommitMsgs(i, lastCommitted[i], c)
                          ELSE m[x][y]]]
    /\ UNCHANGED <<state, zabState, online, leaderOf, acceptedEpoch, currentEpoch, history,
                   disk, nlPhase, cepochRecv, ackeRecv, ackldRecv, forwarding, partition,
                   proposed, epochLeader, nCrashes, nPartitions>>
    /\ Act("LeaderProcessACK", <<i, j>>)

\* Impl: zkref/core/zab/follower.py Follower.process_commit
FollowerProcessCOMMIT(i, j) ==
    /\ online[i] /\ state[i] = "FOLLOWING" /\ leaderOf[i] = j
    /\ HasMsg(j, i, "COMMIT")
    /\ LET k == IndexOf(history[i], Head1(j, i).zxid)
       IN lastCommitted' = [lastCommitted EXCEPT ![i] = IF k > @ THEN k ELSE @]
    /\ msgs' = Recv(msgs, j, i)
    /\ UNCHANGED <<state, zabState, online, leaderOf, acceptedEpoch, currentEpoch, history,
                   disk, nlPhase, leaderVars, partition, ghostVars>>
    /\ Act("FollowerProcessCOMMIT", <<i, j>>)

\* Planted bug only: a follower applies a client write itself.
\* Impl: (none: the implementation forwards every write to the leader)
FollowerProcessRequest(i) ==
    /\ BUG_LOCAL_WRITE
    /\ online[i] /\ state[i] = "FOLLOWING" /\ zabState[i] = "BROADCAST"
    /\ Len(history[i]) < MaxTxns
    \* it stamps the txn from its own counter (epoch 0): no leader ever broadcast it
    /\ LET t == [zxid |-> <<0, Len(history[i]) + 1>>, v |-> i]
       IN history' = [history EXCEPT ![i] = Append(@, t)]
    /\ lastCommitted' = [lastCommitted EXCEPT ![i] = Len(history[i]) + 1]
    /\ UNCHANGED <<state, zabState, online, leaderOf, acceptedEpoch, currentEpoch, disk,
                   nlPhase, leaderVars, netVars, ghostVars>>
    /\ Act("FollowerProcessRequest", <<i>>)

-----------------------------------------------------------------------------
(* Faults *)

\* Volatile state is lost; acceptedEpoch, currentEpoch and disk survive.
\* Impl: zkref/core/zab/peer.py QuorumPeer.crash
NodeCrash(i) ==
    /\ online[i] /\ nCrashes < MaxCrashes
    /\ LET D == {i} \cup (IF state[i] = "LEADING" THEN FollowersOf(i) ELSE {})
       IN /\ GoLooking(D)
          /\ msgs' = CutChannels(msgs, D)
    /\ online' = [online EXCEPT ![i] = FALSE]
    /\ history' = [history EXCEPT ![i] = disk[i]]
    /\ lastCommitted' = [lastCommitted EXCEPT ![i] = 0]
    /\ nCrashes' = nCrashes + 1
    /\ UNCHANGED <<acceptedEpoch, currentEpoch, disk, partition,
                   proposed, committed, epochLeader, nPartitions>>
    /\ Act("NodeCrash", <<i>>)

\* Impl: zkref/core/zab/peer.py QuorumPeer.restart
NodeStart(i) ==
    /\ ~online[i]
    /\ online' = [online EXCEPT ![i] = TRUE]
    /\ UNCHANGED <<state, zabState, leaderOf, acceptedEpoch, currentEpoch, history, disk,
                   lastCommitted, nlPhase, leaderVars, netVars, ghostVars>>
    /\ Act("NodeStart", <<i>>)

\* The link i-j fails: both channels are emptied; a follower of the other side
\* loses its leader at once.
\* Impl: zkref/sim/network.py Network.partition
PartitionStart(i, j) ==
    /\ i /= j /\ Connected(i, j) /\ nPartitions < MaxPartitions
    /\ LET D == {x \in {i, j} : state[x] = "FOLLOWING" /\ leaderOf[x] \in {i, j}}
       IN /\ GoLooking(D)
          /\ msgs' = [CutChannels(msgs, D) EXCEPT ![i][j] = <<>>, ![j][i] = <<>>]
    /\ partition' = partition \cup {{i, j}}
    /\ nPartitions' = nPartitions + 1
    /\ UNCHANGED <<online, acceptedEpoch, currentEpoch, history, disk, lastCommitted,
                   proposed, committed, epochLeader, nCrashes>>
    /\ Act("PartitionStart", <<i, j>>)

\* Impl: zkref/sim/network.py Network.heal
PartitionRecover(i, j) ==
    /\ {i, j} \in partition
    /\ partition' = partition \ {{i, j}}
    /\ UNCHANGED <<serverVars, leaderVars, msgs, ghostVars>>
    /\ Act("PartitionRecover", <<i, j>>)

\* A leader that no longer hears a quorum gives up; its followers elect again.
\* It counts the followers it has heard from: a follower whose FOLLOWERINFO is
\* still in flight does not keep it leading (message delays are not bounded by
\* syncLimit here; ZooKeeper counts only learners it has a handler for).
\* Impl: zkref/core/zab/leader.py Leader.check_quorum
LeaderTimeout(i) ==
    /\ online[i] /\ state[i] = "LEADING"
    /\ ~IsQuorum(HeardFollowersOf(i) \cup {i})
    /\ LET D == {i} \cup FollowersOf(i)
       IN /\ GoLooking(D)
          /\ msgs' = CutChannels(msgs, D)
    /\ UNCHANGED <<online, acceptedEpoch, currentEpoch, history, disk, lastCommitted,
                   partition, ghostVars>>
    /\ Act("LeaderTimeout", <<i>>)

\* A leader that did not reach BROADCAST within initLimit gives up: ZooKeeper's
\* Leader.lead waits for a quorum of FOLLOWERINFO (getEpochToPropose), ACKEPOCH
\* (waitForEpochAck) and ACK of NEWLEADER (waitForNewLeaderAck), each for at
\* most initLimit ticks, and shuts down when one wait runs out, whoever it has
\* heard from.  Time is abstract here, so it may happen at any point before
\* BROADCAST; its followers elect again, as for LeaderTimeout.
\* Impl: zkref/core/zab/leader.py Leader.init_limit_timeout
LeaderInitLimitTimeout(i) ==
    /\ InitLimitTimeouts
    /\ online[i] /\ state[i] = "LEADING" /\ zabState[i] /= "BROADCAST"
    /\ LET D == {i} \cup FollowersOf(i)
       IN /\ GoLooking(D)
          /\ msgs' = CutChannels(msgs, D)
    /\ UNCHANGED <<online, acceptedEpoch, currentEpoch, history, disk, lastCommitted,
                   partition, ghostVars>>
    /\ Act("LeaderInitLimitTimeout", <<i>>)

\* Planted bug only: the link silently drops one message.
\* Impl: (none)
LoseMessage(i, j) ==
    /\ BUG_LOSSY_LINK /\ HasMsg(i, j, "PROPOSAL")
    /\ msgs' = Recv(msgs, i, j)
    /\ UNCHANGED <<serverVars, leaderVars, partition, ghostVars>>
    /\ Act("LoseMessage", <<i, j>>)

-----------------------------------------------------------------------------
Next ==
    \/ \E i \in Server, Q \in SUBSET Server : ElectLeader(i, Q)
    \/ \E i, j \in Server : FollowLeader(i, j)
    \/ \E i, j \in Server : LeaderProcessFOLLOWERINFO(i, j)
    \/ \E i, j \in Server : FollowerProcessLEADERINFO(i, j)
    \/ \E i, j \in Server : LeaderProcessACKEPOCH(i, j)
    \/ \E i, j \in Server : LeaderSyncFollower(i, j)
    \/ \E i, j \in Server : FollowerProcessSyncMessage(i, j)
    \/ \E i, j \in Server : FollowerProcessNEWLEADER(i, j)
    \/ \E i \in Server : FollowerUpdateCurrentEpoch(i)
    \/ \E i \in Server : FollowerReplyACKLD(i)
    \/ \E i, j \in Server : LeaderProcessACKLD(i, j)
    \/ \E i, j \in Server : FollowerProcessUPTODATE(i, j)
    \/ \E i \in Server : LeaderProcessRequest(i)
    \/ \E i, j \in Server : FollowerProcessPROPOSAL(i, j)
    \/ \E i \in Server : NodeFsyncLog(i)
    \/ \E i, j \in Server : LeaderProcessACK(i, j)
    \/ \E i, j \in Server : FollowerProcessCOMMIT(i, j)
    \/ \E i \in Server : FollowerProcessRequest(i)
    \/ \E i \in Server : NodeCrash(i)
    \/ \E i \in Server : NodeStart(i)
    \/ \E i, j \in Server : PartitionStart(i, j)
    \/ \E i, j \in Server : PartitionRecover(i, j)
    \/ \E i \in Server : LeaderTimeout(i)
    \/ \E i \in Server : LeaderInitLimitTimeout(i)
    \/ \E i, j \in Server : LoseMessage(i, j)

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
(* Invariants *)

TypeOK ==
    /\ state \in [Server -> {"LOOKING", "FOLLOWING", "LEADING"}]
    /\ zabState \in [Server -> {"ELECTION", "DISCOVERY", "SYNCHRONIZATION", "BROADCAST"}]
    /\ \A i \in Server : lastCommitted[i] <= Len(history[i])

\* One established leader per epoch.
Leadership == \A p, q \in epochLeader : p[1] = q[1] => p[2] = q[2]

\* Delivered sequences never diverge.
PrefixConsistency == \A i, j \in Server :
    IsPrefix(Delivered(i), Delivered(j)) \/ IsPrefix(Delivered(j), Delivered(i))

\* Only txns that a leader broadcast are delivered.
Integrity == \A i \in Server : Range(Delivered(i)) \subseteq proposed

\* If i delivers a and j delivers b, then i delivers b or j delivers a.
Agreement == \A i, j \in Server :
    \A a \in Range(Delivered(i)), b \in Range(Delivered(j)) :
        a \in Range(Delivered(j)) \/ b \in Range(Delivered(i))

Before(s, a, b) == \E x, y \in DOMAIN s : x < y /\ s[x] = a /\ s[y] = b

\* If some server delivers a before b, any server that delivers b delivers a before b.
TotalOrder == \A i, j \in Server :
    \A a, b \in Range(Delivered(i)) :
        Before(Delivered(i), a, b) /\ b \in Range(Delivered(j)) => Before(Delivered(j), a, b)

\* A leader's proposals are delivered in the order it proposed them, with no gaps.
LocalPrimaryOrder == \A i \in Server :
    \A b \in Range(Delivered(i)) : \A a \in proposed :
        (a.zxid[1] = b.zxid[1] /\ a.zxid[2] < b.zxid[2]) => Before(Delivered(i), a, b)

\* Txns of an older epoch are delivered before txns of a newer epoch.
GlobalPrimaryOrder == \A i \in Server :
    \A x, y \in DOMAIN Delivered(i) :
        x < y => Delivered(i)[x].zxid[1] <= Delivered(i)[y].zxid[1]

\* An established leader holds every txn delivered anywhere in an earlier epoch.
PrimaryIntegrity == \A i \in Server :
    (state[i] = "LEADING" /\ zabState[i] = "BROADCAST") =>
        \A j \in Server : \A a \in Range(Delivered(j)) :
            a.zxid[1] < currentEpoch[i] => a \in Range(history[i])

\* A committed txn is on the disk of a quorum, so no crash or sync can lose it.
CommittedLogDurability == \A t \in committed :
    IsQuorum({j \in Server : t \in Range(disk[j])})

\* After NEWLEADER, a follower's log is a prefix of its leader's.
ProcessConsistency == \A i \in Server :
    LET j == leaderOf[i]
    IN (state[i] = "FOLLOWING" /\ nlPhase[i] /= "none" /\ j /= NoLeader
          /\ state[j] = "LEADING" /\ online[j]) => IsPrefix(history[i], history[j])

=============================================================================
