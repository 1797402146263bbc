------------------------------- MODULE Sessions -------------------------------
(***************************************************************************)
(* Client sessions on a replicated ZooKeeper ensemble.                     *)
(*                                                                         *)
(* Zab is abstracted to its guarantee: one totally ordered committed log   *)
(* (`log`), which each server applies in order at its own pace             *)
(* (`applied[s]` = lastProcessedZxid; the zxid of a txn is its index).     *)
(* createSession and closeSession are txns in that log like any write.     *)
(* The leader's SessionTracker decides expiry and which connection owns a  *)
(* session.  A client reconnects to any server with its session id, its    *)
(* password (abstracted: only the owner knows it) and lastZxidSeen; a      *)
(* server that is behind lastZxidSeen refuses it.  A request still in      *)
(* flight on an old connection must not execute once the session moved.   *)
(* Watches live on the server of the connection and are re-registered on   *)
(* reconnect with lastZxidSeen as relativeZxid (setWatches).               *)
(***************************************************************************)
EXTENDS Integers, Sequences, FiniteSets, TLC

CONSTANTS
    Server, Client,
    MaxLog,            \* bound on the committed log
    MaxConns,          \* bound on connections opened in a run
    BUG_NO_ZXID_CHECK,          \* accept a reconnect from a client ahead of the server
    BUG_REVIVE_EXPIRED,         \* revalidate a session the tracker has already closed
    BUG_CLOSE_KEEPS_EPHEMERALS, \* applying closeSession forgets to delete ephemerals
    BUG_NO_OWNER_CHECK,         \* execute a request from a connection the session moved away from
    BUG_SETWATCHES_IGNORES_ZXID \* setWatches re-arms watches without comparing zxids

Path == "/e"
NoServer == "none"     \* the one znode the model talks about (ephemeral, watched)

VARIABLES
    log,          \* committed txns, in zxid order
    applied,      \* applied[s]: index of the last txn applied by server s
    tracker,      \* leader: set of live session ids
    owner,        \* leader: owner[sid] = connection id that owns the session (0 = none)
    cstate,       \* client: IDLE | CONNECTING | CONNECTED | DISCONNECTED | EXPIRED | CLOSED
    csid,         \* client: its session id (0 = none)
    cserver,      \* client: server of its current connection
    cconn,        \* client: id of its current connection
    lastZxidSeen, \* client: highest zxid it has seen
    cwatch,       \* client: zxid at which its watch on Path was set (-1 = no watch)
    watches,      \* watches[s]: clients with a watch registered at server s
    pending,      \* requests in flight from a connection to the leader
    nConns,       \* connections opened so far (also the next connection id)
    conns,        \* ghost: set of [id, sid, at]: a connection and the log length when it took the session
    lastAction

vars == <<log, applied, tracker, owner, cstate, csid, cserver, cconn, lastZxidSeen, cwatch,
          watches, pending, nConns, conns, lastAction>>
view == <<log, applied, tracker, owner, cstate, csid, cserver, cconn, lastZxidSeen, cwatch,
          watches, pending, nConns, conns>>

Act(name, params) == lastAction' = [name |-> name, params |-> params]
Prefix(s) == SubSeq(log, 1, applied[s])

\* Replaying a log prefix: live sessions and ephemeral nodes (<<path, owner>>).
RECURSIVE Replay(_, _)
Replay(l, st) ==
    IF l = <<>> THEN st
    ELSE LET t == Head(l)
             st2 == CASE t.type = "createSession" ->
                           [st EXCEPT !.live = @ \cup {t.sid}]
                      [] t.type = "closeSession" ->
                           [st EXCEPT !.live = @ \ {t.sid},
                                      !.eph = IF BUG_CLOSE_KEEPS_EPHEMERALS THEN @
                                              ELSE {e \in @ : e[2] /= t.sid}]
                      [] t.type = "create" ->
                           [st EXCEPT !.eph = @ \cup {<<t.path, t.sid>>}]
         IN Replay(Tail(l), st2)
StateOf(l) == Replay(l, [live |-> {}, eph |-> {}])
Live(s) == StateOf(Prefix(s)).live
Ephemerals(s) == StateOf(Prefix(s)).eph
\* Path exists after the first n txns of the log
ExistsAfter(n) == StateOf(SubSeq(log, 1, n)).eph /= {}
\* the k-th txn created or deleted Path (a create, or the close of the session that owned it;
\* a closeSession of another session leaves Path alone and fires no watch, as in ZooKeeper)
Touches(k) == ExistsAfter(k) /= ExistsAfter(k - 1)
\* mzxid of Path at server s: the last applied txn that created or deleted it
MZxid(s) == LET ks == {k \in 1..applied[s] : Touches(k)}
            IN IF ks = {} THEN 0 ELSE CHOOSE k \in ks : \A q \in ks : q <= k
\* client c's watch was set while Path did not exist: an exist watch (else a data watch)
ExistWatch(c) == ~ExistsAfter(cwatch[c])

-----------------------------------------------------------------------------
Init ==
    /\ log = <<>>
    /\ applied = [s \in Server |-> 0]
    /\ tracker = {}
    /\ owner = <<>>
    /\ cstate = [c \in Client |-> "IDLE"]
    /\ csid = [c \in Client |-> 0]
    /\ cserver = [c \in Client |-> NoServer]
    /\ cconn = [c \in Client |-> 0]
    /\ lastZxidSeen = [c \in Client |-> 0]
    /\ cwatch = [c \in Client |-> -1]
    /\ watches = [s \in Server |-> {}]
    /\ pending = {}
    /\ nConns = 0
    /\ conns = {}
    /\ lastAction = [name |-> "Init", params |-> <<>>]

\* owner is a function on the session ids created so far (sid = index of createSession)
SetOwner(o, sid, n) == [x \in DOMAIN o \cup {sid} |-> IF x = sid THEN n ELSE o[x]]

-----------------------------------------------------------------------------
\* A new session: the server forwards createSession; it is a quorum txn.
\* Impl: zkref/core/session/tracker.py SessionTracker.create_session
ClientCreateSession(c, s) ==
    /\ cstate[c] = "IDLE" /\ Len(log) < MaxLog /\ nConns < MaxConns
    /\ LET sid == Len(log) + 1
           n == nConns + 1
       IN /\ log' = Append(log, [type |-> "createSession", sid |-> sid, conn |-> n])
          /\ tracker' = tracker \cup {sid}
          /\ owner' = SetOwner(owner, sid, n)
          /\ csid' = [csid EXCEPT ![c] = sid]
          /\ cconn' = [cconn EXCEPT ![c] = n]
          /\ conns' = conns \cup {[id |-> n, sid |-> sid, at |-> Len(log) + 1]}
    /\ cstate' = [cstate EXCEPT ![c] = "CONNECTING"]
    /\ cserver' = [cserver EXCEPT ![c] = s]
    /\ nConns' = nConns + 1
    /\ UNCHANGED <<applied, lastZxidSeen, cwatch, watches, pending>>
    /\ Act("ClientCreateSession", <<c, s>>)

\* Server s applies the next committed txn: replies to its own clients,
\* fires watches, closes the connections of a closed session.
\* Impl: zkref/core/server/final.py FinalRequestProcessor.process_request
ServerApply(s) ==
    /\ applied[s] < Len(log)
    /\ LET k == applied[s] + 1
           t == log[k]
           mine(c) == cserver[c] = s /\ csid[c] = t.sid
           fired == IF Touches(k) THEN watches[s] ELSE {}
       IN
       /\ applied' = [applied EXCEPT ![s] = k]
       /\ cstate' = [c \in Client |->
                       IF mine(c) /\ t.type = "createSession" /\ cstate[c] = "CONNECTING"
                       THEN "CONNECTED"
                       ELSE IF mine(c) /\ t.type = "closeSession"
                               /\ cstate[c] \in {"CONNECTED", "CONNECTING"}
                       THEN "EXPIRED"
                       ELSE cstate[c]]
       \* a reply or a watch event carries the zxid
       /\ lastZxidSeen' = [c \in Client |->
                             IF (mine(c) /\ cstate[c] \in {"CONNECTED", "CONNECTING"})
                                \/ c \in fired
                             THEN k ELSE lastZxidSeen[c]]
       /\ cwatch' = [c \in Client |-> IF c \in fired THEN -1 ELSE cwatch[c]]
       /\ watches' = [watches EXCEPT ![s] = @ \ fired]
    /\ UNCHANGED <<log, tracker, owner, csid, cserver, cconn, pending, nConns, conns>>
    /\ Act("ServerApply", <<s>>)

\* A read with a watch (getData/exists + watch): sets the watch at the server.
\* Impl: zkref/core/server/final.py FinalRequestProcessor.get_data
ClientGetDataWatch(c) ==
    /\ cstate[c] = "CONNECTED" /\ cwatch[c] = -1
    /\ LET s == cserver[c]
       IN /\ cwatch' = [cwatch EXCEPT ![c] = applied[s]]
          /\ watches' = [watches EXCEPT ![s] = @ \cup {c}]
          /\ lastZxidSeen' = [lastZxidSeen EXCEPT ![c] =
                                IF applied[s] > @ THEN applied[s] ELSE @]
    /\ UNCHANGED <<log, applied, tracker, owner, cstate, csid, cserver, cconn, pending,
                   nConns, conns>>
    /\ Act("ClientGetDataWatch", <<c>>)

\* The client sends create(Path, EPHEMERAL) on its current connection.
\* Impl: zkref/core/client/session.py ClientSession.create
ClientCreateEphemeral(c) ==
    /\ cstate[c] = "CONNECTED"
    /\ \A r \in pending : r.conn /= cconn[c]    \* one outstanding request per connection
    /\ pending' = pending \cup {[sid |-> csid[c], conn |-> cconn[c], op |-> "create"]}
    /\ UNCHANGED <<log, applied, tracker, owner, cstate, csid, cserver, cconn, lastZxidSeen,
                   cwatch, watches, nConns, conns>>
    /\ Act("ClientCreateEphemeral", <<c>>)

\* The client closes its session.
\* Impl: zkref/core/client/session.py ClientSession.close
ClientClose(c) ==
    /\ cstate[c] = "CONNECTED"
    /\ \A r \in pending : r.conn /= cconn[c]
    /\ pending' = pending \cup {[sid |-> csid[c], conn |-> cconn[c], op |-> "close"]}
    /\ cstate' = [cstate EXCEPT ![c] = "CLOSED"]
    /\ UNCHANGED <<log, applied, tracker, owner, csid, cserver, cconn, lastZxidSeen,
                   cwatch, watches, nConns, conns>>
    /\ Act("ClientClose", <<c>>)

\* The leader's PrepRequestProcessor: checkSession (live, and owned by this
\* connection: else SessionExpired / SessionMoved and nothing executes).
\* Impl: zkref/core/server/prep.py PrepRequestProcessor.prep_request
LeaderProcessRequest(r) ==
    /\ r \in pending /\ Len(log) < MaxLog
    /\ pending' = pending \ {r}
    /\ IF r.op = "close" /\ r.sid \notin tracker
       THEN \* ZooKeeper's prep does not check a closeSession's session (the tracker's expiry
            \* queues one without owning it): a close that arrives after the expiry is logged
            \* again. It changes nothing and revives nothing (SessionNeverRevived allows it).
            /\ log' = Append(log, [type |-> "closeSession", sid |-> r.sid, conn |-> r.conn])
            /\ UNCHANGED tracker
       ELSE IF /\ r.sid \in tracker
               /\ BUG_NO_OWNER_CHECK \/ owner[r.sid] = r.conn
       THEN IF r.op = "close"
            THEN /\ log' = Append(log, [type |-> "closeSession", sid |-> r.sid, conn |-> r.conn])
                 /\ tracker' = tracker \ {r.sid}
            ELSE \* create fails with NodeExists if Path already exists
                 /\ IF StateOf(log).eph = {}
                    THEN log' = Append(log, [type |-> "create", sid |-> r.sid, conn |-> r.conn,
                                             path |-> Path])
                    ELSE UNCHANGED log
                 /\ UNCHANGED tracker
       ELSE UNCHANGED <<log, tracker>>
    /\ UNCHANGED <<applied, owner, cstate, csid, cserver, cconn, lastZxidSeen, cwatch, watches,
                   nConns, conns>>
    /\ Act("LeaderProcessRequest", <<r.sid, r.conn, r.op>>)

\* The tracker sees no ping within the session timeout: closeSession is proposed.
\* (Timing is abstracted: any live session may expire.)
\* Impl: zkref/core/session/tracker.py SessionTracker.expire
LeaderExpireSession(sid) ==
    /\ sid \in tracker /\ Len(log) < MaxLog
    /\ log' = Append(log, [type |-> "closeSession", sid |-> sid, conn |-> 0])
    /\ tracker' = tracker \ {sid}
    /\ UNCHANGED <<applied, owner, cstate, csid, cserver, cconn, lastZxidSeen, cwatch, watches,
                   pending, nConns, conns>>
    /\ Act("LeaderExpireSession", <<sid>>)

\* The TCP connection breaks. Requests already sent stay in flight; the
\* server drops the connection's watches.
\* Impl: zkref/core/client/session.py ClientSession.connection_lost
ConnectionLoss(c) ==
    /\ cstate[c] \in {"CONNECTED", "CONNECTING"}
    \* before the connect response the client does not know its session id: start over
    /\ cstate' = [cstate EXCEPT ![c] = IF @ = "CONNECTING" THEN "IDLE" ELSE "DISCONNECTED"]
    /\ csid' = [csid EXCEPT ![c] = IF cstate[c] = "CONNECTING" THEN 0 ELSE @]
    /\ watches' = [s \in Server |-> IF s = cserver[c] THEN watches[s] \ {c} ELSE watches[s]]
    /\ UNCHANGED <<log, applied, tracker, owner, cserver, cconn, lastZxidSeen, cwatch,
                   pending, nConns, conns>>
    /\ Act("ConnectionLoss", <<c>>)

\* Reconnect to server s with (sessionId, password, lastZxidSeen).
\* Impl: zkref/core/server/connect.py ZooKeeperServer.process_connect_request
ClientReconnect(c, s) ==
    /\ cstate[c] = "DISCONNECTED" /\ nConns < MaxConns
    /\ BUG_NO_ZXID_CHECK \/ lastZxidSeen[c] <= applied[s]   \* else: refused, try another server
    /\ nConns' = nConns + 1
    /\ cserver' = [cserver EXCEPT ![c] = s]
    /\ IF csid[c] \in tracker \/ BUG_REVIVE_EXPIRED
       THEN \* revalidated by the leader: the session moves to this connection
            LET n == nConns + 1
                rearm == cwatch[c] /= -1
                \* ZooKeeper's setWatches: an exist watch fires iff Path exists now (so a
                \* create and delete while disconnected is missed: the documented hole); a
                \* data watch fires iff Path changed after lastZxidSeen
                fire == /\ rearm /\ ~BUG_SETWATCHES_IGNORES_ZXID
                        /\ IF ExistWatch(c) THEN Ephemerals(s) /= {}
                                            ELSE MZxid(s) > lastZxidSeen[c]
            IN /\ cstate' = [cstate EXCEPT ![c] = "CONNECTED"]
               /\ cconn' = [cconn EXCEPT ![c] = n]
               /\ owner' = [owner EXCEPT ![csid[c]] = n]
               /\ conns' = conns \cup {[id |-> n, sid |-> csid[c], at |-> Len(log)]}
               \* setWatches(relativeZxid = lastZxidSeen): fire at once if the node changed
               /\ watches' = [watches EXCEPT ![s] = IF rearm /\ ~fire THEN @ \cup {c} ELSE @]
               /\ cwatch' = [cwatch EXCEPT ![c] = IF fire THEN -1 ELSE @]
               /\ lastZxidSeen' = [lastZxidSeen EXCEPT ![c] = IF fire THEN MZxid(s) ELSE @]
       ELSE \* the session is gone: SESSION_EXPIRED, terminal for this handle
            /\ cstate' = [cstate EXCEPT ![c] = "EXPIRED"]
            /\ UNCHANGED <<cconn, owner, conns, watches, cwatch, lastZxidSeen>>
    /\ UNCHANGED <<log, applied, tracker, csid, pending>>
    /\ Act("ClientReconnect", <<c, s>>)

Next ==
    \/ \E c \in Client, s \in Server : ClientCreateSession(c, s)
    \/ \E s \in Server : ServerApply(s)
    \/ \E c \in Client : ClientGetDataWatch(c)
    \/ \E c \in Client : ClientCreateEphemeral(c)
    \/ \E c \in Client : ClientClose(c)
    \/ \E r \in pending : LeaderProcessRequest(r)
    \/ \E sid \in tracker : LeaderExpireSession(sid)
    \/ \E c \in Client : ConnectionLoss(c)
    \/ \E c \in Client, s \in Server : ClientReconnect(c, s)

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
(* Invariants *)

\* An expired or closed session never comes back: nothing of it is committed
\* after its closeSession, and no client is connected on it where it is closed.
SessionNeverRevived ==
    \* nothing of a session after its closeSession but another closeSession (ZooKeeper logs
    \* a client's close that arrives after the expiry's)
    /\ \A k, l \in DOMAIN log :
          (k < l /\ log[k].type = "closeSession") =>
              (log[l].sid /= log[k].sid \/ log[l].type = "closeSession")
    /\ \A c \in Client :
          cstate[c] = "CONNECTED" => csid[c] \in Live(cserver[c])

\* In every server's applied state, each ephemeral's owner is a live session.
NoOrphanEphemeral == \A s \in Server :
    \A e \in Ephemerals(s) : e[2] \in Live(s)

\* A client never talks to a server that is behind a zxid it has seen.
MonotonicClientView == \A c \in Client :
    cstate[c] = "CONNECTED" => lastZxidSeen[c] <= applied[cserver[c]]

\* A request from a connection is never executed after its session moved to a
\* newer connection (SessionMoved).
SessionMovedSafety == \A k \in DOMAIN log : \A r \in conns :
    (log[k].type = "create" /\ r.sid = log[k].sid /\ r.id > log[k].conn) => r.at >= k

\* A connected client's watch is armed only if its server has applied no change
\* to the node since the watch was set (otherwise the event was delivered).
WatchNotLost == \A c \in Client :
    (cstate[c] = "CONNECTED" /\ cwatch[c] /= -1) =>
        \/ MZxid(cserver[c]) <= cwatch[c]
        \* ZooKeeper's documented hole (Programmer's Guide, "ZooKeeper Watches"): an exist
        \* watch misses a create and delete that happen while the client is disconnected
        \/ ExistWatch(c) /\ Ephemerals(cserver[c]) = {}

\* Witness (expected to be violated, models/MCSessions_witness_*.cfg): the two behaviours
\* above are reachable.
NoRepeatedClose == \A k, l \in DOMAIN log :
    (k < l /\ log[k].type = "closeSession") => log[l].sid /= log[k].sid
NoExistWatchHole == \A c \in Client :
    (cstate[c] = "CONNECTED" /\ cwatch[c] /= -1) => MZxid(cserver[c]) <= cwatch[c]
=============================================================================
