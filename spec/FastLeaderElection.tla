------------------------- MODULE FastLeaderElection -------------------------
(***************************************************************************)
(* ZooKeeper's Fast Leader Election (FastLeaderElection.lookForLeader).    *)
(*                                                                         *)
(* A notification carries (leader, zxid, peerEpoch) = the vote, plus the   *)
(* sender's electionEpoch (round), state and sid.  Votes are ordered by    *)
(* peerEpoch, then zxid, then sid: a strict total order.  A LOOKING server *)
(* keeps the votes of its round in recvVotes, the votes of decided peers   *)
(* in outOfElection, and, once a quorum agrees with its vote, waits        *)
(* (finalizeWait) for a better notification before deciding.               *)
(*                                                                         *)
(* The finalize wait is modelled as "decide only when no notification is   *)
(* in flight to me": it assumes finalizeWait exceeds the message delay.    *)
(* Zxids and epochs of the servers are fixed inputs (InitZxid, InitEpoch): *)
(* the Zab spec abstracts election by an oracle over the same vote order.  *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets, Sequences, TLC

CONSTANTS
    Server,          \* server ids: a finite set of naturals (the sid is the tie-break)
    InitZxid,        \* [Server -> Nat]: last logged zxid (abstracted to a number)
    InitEpoch,       \* [Server -> Nat]: currentEpoch (the vote's peerEpoch)
    MaxRestarts,     \* bound on FLERestart (a decided server that starts over)
    BUG_VOTE_ORDER_1419,   \* ZOOKEEPER-1419: the third clause forgets to compare epochs
    BUG_NO_FINALIZE_WAIT   \* decide as soon as a quorum agrees, ignoring notifications in flight

\* Planted: a server going back to LOOKING keeps its round (lookForLeader without its
\* logicalclock.incrementAndGet()), so a new election reuses the round of the old one.  A
\* definition, not a CONSTANT, so that the models and trace checks that predate it need not
\* assign it; a cfg turns it on with `BUG_RESTART_SAME_ROUND = TRUE` (TLC overrides it).
BUG_RESTART_SAME_ROUND == FALSE

\* Bound on FLENotmsgTimeout (resends of a vote, all servers together).  A definition, as
\* BUG_RESTART_SAME_ROUND, so that the models and trace checks that predate the resend need not
\* assign it: 0 (no resends) unless a cfg says otherwise (`MaxResends = 2`).
MaxResends == 0

VARIABLES
    state,          \* LOOKING | FOLLOWING | LEADING
    logicalClock,   \* electionEpoch (round) of each server
    currentVote,    \* [leader, zxid, epoch]
    recvVotes,      \* recvVotes[i][j]: last vote+round i got from j in i's round (or Nil)
    outOfElection,  \* outOfElection[i][j]: last notification i got from decided peer j (or Nil)
    waiting,        \* TRUE while i is in the finalize wait
    msgs,           \* msgs[i][j]: FIFO channel of notifications from i to j
    nRestarts,
    nResends,       \* FLENotmsgTimeout steps taken (bounded by MaxResends)
    prevVote,       \* ghost: the vote i held before its last change, and in which round
    lastAction

vars == <<state, logicalClock, currentVote, recvVotes, outOfElection, waiting, msgs,
          nRestarts, nResends, prevVote, lastAction>>
view == <<state, logicalClock, currentVote, recvVotes, outOfElection, waiting, msgs,
          nRestarts, nResends, prevVote>>

Nil == [leader |-> 0, zxid |-> 0, epoch |-> 0, round |-> 0, state |-> "NONE"]
IsQuorum(S) == 2 * Cardinality(S) > Cardinality(Server)

SelfVote(i) == [leader |-> i, zxid |-> InitZxid[i], epoch |-> InitEpoch[i]]

\* Is vote a strictly better than vote b?  (totalOrderPredicate)
Better(a, b) ==
    IF BUG_VOTE_ORDER_1419
    THEN \/ a.epoch > b.epoch
         \/ a.epoch = b.epoch /\ a.zxid > b.zxid
         \/ a.zxid = b.zxid /\ a.leader > b.leader
    ELSE \/ a.epoch > b.epoch
         \/ a.epoch = b.epoch /\ a.zxid > b.zxid
         \/ a.epoch = b.epoch /\ a.zxid = b.zxid /\ a.leader > b.leader
\* The correct order, used by the invariants whatever the bug flags say.
TrulyBetter(a, b) ==
    \/ a.epoch > b.epoch
    \/ a.epoch = b.epoch /\ a.zxid > b.zxid
    \/ a.epoch = b.epoch /\ a.zxid = b.zxid /\ a.leader > b.leader

VoteOf(n) == [leader |-> n.leader, zxid |-> n.zxid, epoch |-> n.epoch]
Notif(i, v, r, st) == [leader |-> v.leader, zxid |-> v.zxid, epoch |-> v.epoch,
                       round |-> r, state |-> st]

Broadcast(m, i, n) ==
    [x \in Server |-> [y \in Server |->
        IF x = i /\ y /= i THEN Append(m[x][y], n) ELSE m[x][y]]]
Reply(m, i, j, n) == [m EXCEPT ![i][j] = Append(@, n)]
Pop(m, from, to) == [m EXCEPT ![from][to] = Tail(@)]

\* ZooKeeper's Vote.equals, the equality quorums are counted with: if either side is LOOKING,
\* the same vote in the same round; if both have decided, the same leader and peerEpoch only
\* (their rounds and zxids may differ: servers that decided in different rounds, or whose
\* zxid moved on, still agree on an established leader -- ZOOKEEPER-1805).
SameVote(m, n) ==
    IF m.state = "LOOKING" \/ n.state = "LOOKING"
    THEN VoteOf(m) = VoteOf(n) /\ m.round = n.round
    ELSE m.leader = n.leader /\ m.epoch = n.epoch
\* The senders in votes whose notification is the same vote as n (getVoteTracker).
Agreeing(votes, n) == {j \in Server : votes[j] /= Nil /\ SameVote(votes[j], n)}
\* checkLeader: the proposed leader is myself in this round, or it told me it leads.
CheckLeader(i, votes, l, r) ==
    IF l = i THEN logicalClock[i] = r
    ELSE votes[l] /= Nil /\ votes[l].state = "LEADING"

Decided(v, i) == IF v.leader = i THEN "LEADING" ELSE "FOLLOWING"

Act(name, params) == lastAction' = [name |-> name, params |-> params]

-----------------------------------------------------------------------------
Init ==
    /\ state = [i \in Server |-> "LOOKING"]
    /\ logicalClock = [i \in Server |-> 1]
    /\ currentVote = [i \in Server |-> SelfVote(i)]
    /\ recvVotes = [i \in Server |-> [j \in Server |->
                      IF i = j THEN Notif(i, SelfVote(i), 1, "LOOKING") ELSE Nil]]
    /\ outOfElection = [i \in Server |-> [j \in Server |-> Nil]]
    /\ waiting = [i \in Server |-> FALSE]
    \* every server starts by sending its own vote to all the others
    /\ msgs = [i \in Server |-> [j \in Server |->
                 IF i = j THEN <<>> ELSE <<Notif(i, SelfVote(i), 1, "LOOKING")>>]]
    /\ nRestarts = 0
    /\ nResends = 0
    /\ prevVote = [i \in Server |-> [vote |-> SelfVote(i), round |-> 1]]
    /\ lastAction = [name |-> "Init", params |-> <<>>]

-----------------------------------------------------------------------------
\* A LOOKING server i, not in its finalize wait, takes the next notification from j (an
\* iteration of lookForLeader's outer loop).
\* Impl: zkref/core/election/fle.py FastLeaderElection.process_notification
FLEHandleNotmsg(i, j) ==
    /\ state[i] = "LOOKING" /\ ~waiting[i] /\ msgs[j][i] /= <<>>
    /\ LET n == Head(msgs[j][i])
           m0 == Pop(msgs, j, i)
           nv == VoteOf(n)
       IN
       IF n.state = "LOOKING"
       THEN
         IF n.round > logicalClock[i]
         THEN \* a newer round: join it, forget the old votes, vote the better of n and me
              LET v == IF Better(nv, SelfVote(i)) THEN nv ELSE SelfVote(i)
                  rv == [x \in Server |-> IF x = i THEN Notif(i, v, n.round, "LOOKING")
                                           ELSE IF x = j THEN n ELSE Nil]
              IN /\ logicalClock' = [logicalClock EXCEPT ![i] = n.round]
                 /\ currentVote' = [currentVote EXCEPT ![i] = v]
                 \* the ghost starts over: VoteMonotonic compares votes within one round
                 /\ prevVote' = [prevVote EXCEPT ![i] = [vote |-> v, round |-> n.round]]
                 /\ recvVotes' = [recvVotes EXCEPT ![i] = rv]
                 /\ msgs' = Broadcast(m0, i, Notif(i, v, n.round, "LOOKING"))
                 /\ waiting' = [waiting EXCEPT ![i] =
                                   IsQuorum(Agreeing(rv, Notif(i, v, n.round, "LOOKING")))]
                 /\ UNCHANGED <<state, outOfElection>>
         ELSE IF n.round < logicalClock[i]
         THEN \* a stale round: tell j where we are
              /\ msgs' = Reply(m0, i, j, Notif(i, currentVote[i], logicalClock[i], "LOOKING"))
              /\ UNCHANGED <<state, logicalClock, currentVote, recvVotes, outOfElection,
                             waiting, prevVote>>
         ELSE \* same round
              LET better == Better(nv, currentVote[i])
                  v == IF better THEN nv ELSE currentVote[i]
                  r == logicalClock[i]
                  rv == [recvVotes[i] EXCEPT ![j] = n, ![i] = Notif(i, v, r, "LOOKING")]
              IN /\ currentVote' = [currentVote EXCEPT ![i] = v]
                 /\ prevVote' = IF better
                                THEN [prevVote EXCEPT ![i] = [vote |-> currentVote[i], round |-> r]]
                                ELSE prevVote
                 /\ recvVotes' = [recvVotes EXCEPT ![i] = rv]
                 /\ msgs' = IF better THEN Broadcast(m0, i, Notif(i, v, r, "LOOKING")) ELSE m0
                 /\ IF IsQuorum(Agreeing(rv, Notif(i, v, r, "LOOKING")))
                    THEN IF BUG_NO_FINALIZE_WAIT
                         THEN /\ state' = [state EXCEPT ![i] = Decided(v, i)]
                              /\ UNCHANGED waiting
                         ELSE /\ waiting' = [waiting EXCEPT ![i] = TRUE]
                              /\ UNCHANGED state
                    ELSE UNCHANGED <<state, waiting>>
                 /\ UNCHANGED <<logicalClock, outOfElection>>
       ELSE \* j has decided (FOLLOWING or LEADING)
         LET rv == IF n.round = logicalClock[i] THEN [recvVotes[i] EXCEPT ![j] = n]
                   ELSE recvVotes[i]
             ov == [outOfElection[i] EXCEPT ![j] = n]
             inRound == n.round = logicalClock[i] /\ IsQuorum(Agreeing(rv, n))
                        /\ CheckLeader(i, rv, n.leader, n.round)
             outside == IsQuorum(Agreeing(ov, n)) /\ CheckLeader(i, ov, n.leader, n.round)
         IN /\ recvVotes' = [recvVotes EXCEPT ![i] = rv]
            /\ outOfElection' = [outOfElection EXCEPT ![i] = ov]
            /\ msgs' = m0
            /\ IF inRound \/ outside
               THEN /\ state' = [state EXCEPT ![i] = Decided(nv, i)]
                    /\ currentVote' = [currentVote EXCEPT ![i] = nv]
                    /\ prevVote' = IF nv /= currentVote[i]
                                   THEN [prevVote EXCEPT ![i] = [vote |-> currentVote[i],
                                                                 round |-> n.round]]
                                   ELSE prevVote
                    /\ logicalClock' = [logicalClock EXCEPT ![i] = n.round]
               ELSE UNCHANGED <<state, currentVote, prevVote, logicalClock>>
            /\ UNCHANGED waiting
    /\ UNCHANGED <<nRestarts, nResends>>
    /\ Act("FLEHandleNotmsg", <<i, j>>)

\* A decided server answers a LOOKING peer with its own (final) vote.
\* Impl: zkref/core/election/fle.py FastLeaderElection.reply_decided
FLEReplyDecided(i, j) ==
    /\ state[i] /= "LOOKING" /\ msgs[j][i] /= <<>>
    /\ LET n == Head(msgs[j][i])
       IN msgs' = IF n.state = "LOOKING"
                  THEN Reply(Pop(msgs, j, i), i, j,
                             Notif(i, currentVote[i], logicalClock[i], state[i]))
                  ELSE Pop(msgs, j, i)
    /\ UNCHANGED <<state, logicalClock, currentVote, recvVotes, outOfElection, waiting,
                   nRestarts, nResends, prevVote>>
    /\ Act("FLEReplyDecided", <<i, j>>)

\* A notification from j during i's finalize wait (lookForLeader's inner loop
\* `recvqueue.poll(finalizeWait)`, entered once a quorum agrees with i's vote): one that is not
\* better than i's vote is dropped and the wait goes on; a better one ends the wait and stays
\* queued (ZooKeeper puts it back, `recvqueue.put(n)`, and breaks out to the outer loop), to be
\* taken by a later FLEHandleNotmsg(i, j).  Its own step, as in ZooKeeper: the wait ending and
\* the handling of the better vote are two iterations of two loops, and i may handle other
\* notifications in between (ZooKeeper re-queues at the tail of its one receive queue; here
\* it stays at the head of its channel, which keeps each channel FIFO).
\* Impl: zkref/core/election/fle.py FastLeaderElection.finalize_wait_notification
FLEFinalizeWaitNotmsg(i, j) ==
    /\ state[i] = "LOOKING" /\ waiting[i] /\ msgs[j][i] /= <<>>
    /\ IF Better(VoteOf(Head(msgs[j][i])), currentVote[i])
       THEN /\ waiting' = [waiting EXCEPT ![i] = FALSE]
            /\ UNCHANGED msgs
       ELSE /\ msgs' = Pop(msgs, j, i)
            /\ UNCHANGED waiting
    /\ UNCHANGED <<state, logicalClock, currentVote, recvVotes, outOfElection, nRestarts,
                   nResends, prevVote>>
    /\ Act("FLEFinalizeWaitNotmsg", <<i, j>>)

\* The finalize wait expires with nothing better in flight: decide.
\* Impl: zkref/core/election/fle.py FastLeaderElection.finalize_timeout
FLEWaitNewNotmsg(i) ==
    /\ state[i] = "LOOKING" /\ waiting[i]
    /\ \A j \in Server : msgs[j][i] = <<>>
    /\ state' = [state EXCEPT ![i] = Decided(currentVote[i], i)]
    /\ waiting' = [waiting EXCEPT ![i] = FALSE]
    /\ UNCHANGED <<logicalClock, currentVote, recvVotes, outOfElection, msgs, nRestarts,
                   nResends, prevVote>>
    /\ Act("FLEWaitNewNotmsg", <<i>>)

\* A decided server loses its leader (Zab timeout) and starts a new round.
\* Impl: zkref/core/election/fle.py FastLeaderElection.start_round
FLERestart(i) ==
    /\ state[i] /= "LOOKING" /\ nRestarts < MaxRestarts
    /\ LET r == IF BUG_RESTART_SAME_ROUND THEN logicalClock[i] ELSE logicalClock[i] + 1
           n == Notif(i, SelfVote(i), r, "LOOKING")
       IN /\ logicalClock' = [logicalClock EXCEPT ![i] = r]
          /\ currentVote' = [currentVote EXCEPT ![i] = SelfVote(i)]
          /\ recvVotes' = [recvVotes EXCEPT ![i] = [x \in Server |-> IF x = i THEN n ELSE Nil]]
          /\ outOfElection' = [outOfElection EXCEPT ![i] = [x \in Server |-> Nil]]
          /\ msgs' = Broadcast(msgs, i, n)
          /\ prevVote' = [prevVote EXCEPT ![i] = [vote |-> SelfVote(i), round |-> r]]
    /\ state' = [state EXCEPT ![i] = "LOOKING"]
    /\ nRestarts' = nRestarts + 1
    /\ UNCHANGED <<waiting, nResends>>
    /\ Act("FLERestart", <<i>>)

\* No notification reaches a LOOKING server i for a while, outside its finalize wait (the outer
\* loop's `recvqueue.poll(notTimeout)` returns null): i sends its vote and round again to every
\* other server, as at the start of a round, and backs off (notTimeout doubles, up to
\* maxNotificationInterval: time, not modelled).  The poll sees only what has arrived: a
\* notification still in flight to i does not stop the timeout, so the only guard is the state
\* (two servers whose timers run out together each resend before hearing the other: found by
\* trace validation of simulator runs with two restarts, docs/trace-validation.md finding 7;
\* an earlier guard "nothing queued for i" rejected them).  ZooKeeper
\* resends only if its connection manager has delivered (haveDelivered) and otherwise
\* reconnects (connectAll); the spec's channels never break, so that branch is a no-op here.
\* The spec's channels never lose a notification either, so a resend only adds duplicates: it
\* is here so that traces of implementations that resend (they must, when links reset) are
\* behaviours of the spec.  Bounded by MaxResends to keep models finite and small.
\* Impl: zkref/core/election/fle.py FastLeaderElection.notification_timeout
FLENotmsgTimeout(i) ==
    /\ state[i] = "LOOKING" /\ ~waiting[i]
    /\ nResends < MaxResends
    /\ msgs' = Broadcast(msgs, i, Notif(i, currentVote[i], logicalClock[i], "LOOKING"))
    /\ nResends' = nResends + 1
    /\ UNCHANGED <<state, logicalClock, currentVote, recvVotes, outOfElection, waiting,
                   nRestarts, prevVote>>
    /\ Act("FLENotmsgTimeout", <<i>>)

Next ==
    \/ \E i, j \in Server : FLEHandleNotmsg(i, j)
    \/ \E i, j \in Server : FLEFinalizeWaitNotmsg(i, j)
    \/ \E i, j \in Server : FLEReplyDecided(i, j)
    \/ \E i \in Server : FLEWaitNewNotmsg(i)
    \/ \E i \in Server : FLERestart(i)
    \/ \E i \in Server : FLENotmsgTimeout(i)

Fairness == \A i \in Server : /\ WF_vars(FLEWaitNewNotmsg(i))
                              /\ \A j \in Server : /\ WF_vars(FLEHandleNotmsg(i, j))
                                                   /\ WF_vars(FLEFinalizeWaitNotmsg(i, j))
                                                   /\ WF_vars(FLEReplyDecided(i, j))
Spec == Init /\ [][Next]_vars
FairSpec == Spec /\ Fairness

-----------------------------------------------------------------------------
\* What FLE alone guarantees.  It never deposes a leader (Zab does: a leader without a quorum
\* of followers gives up), its rounds are per-server counters, and a server that comes back
\* LOOKING joins a leader that a quorum already follows rather than challenging it.  So the
\* invariants speak of one round, and of the servers that voted for their leader.

\* Election agreement: never two leaders in one round.  Leaders of different rounds may
\* coexist: followers that start a new round (FLERestart) may elect one of themselves while
\* the old leader, which FLE never deposes, still leads (MaxRestarts >= 2).
ElectionAgreement == \A i, j \in Server :
    state[i] = "LEADING" /\ state[j] = "LEADING" /\ logicalClock[i] = logicalClock[j] => i = j

\* While LOOKING, within a round a server's vote only moves up the (true) vote order: this is
\* what makes the election settle.  Deciding for a leader that a quorum already follows
\* (FLEHandleNotmsg on a FOLLOWING/LEADING notification) may adopt a worse vote: a late
\* server joins, it does not challenge; the ghost then starts over at the next FLERestart.
VoteMonotonic == \A i \in Server :
    state[i] = "LOOKING" /\ prevVote[i].round = logicalClock[i] =>
        (prevVote[i].vote = currentVote[i] \/ TrulyBetter(currentVote[i], prevVote[i].vote))

\* j's own notification of its round (recvVotes[j][j]) is the vote it decided on: j voted for
\* its leader, rather than joining a leader that others had elected.
VotedFor(j) == /\ recvVotes[j][j] /= Nil
               /\ recvVotes[j][j].round = logicalClock[j]
               /\ VoteOf(recvVotes[j][j]) = currentVote[j]

\* A leader is the best vote among the servers that elected it: no follower that voted for it
\* has a (truly) better initial vote.
LeaderHasBestVote == \A i \in Server :
    state[i] = "LEADING" => \A j \in Server :
        state[j] = "FOLLOWING" /\ currentVote[j].leader = i /\ VotedFor(j) =>
            ~TrulyBetter(SelfVote(j), SelfVote(i))

\* State constraint: a bounded network (only bites under ZOOKEEPER-1419, where
\* votes flip forever and every flip is broadcast).
ChannelBound == \A i, j \in Server : Len(msgs[i][j]) <= 3

\* Liveness (no restarts): every server decides, and exactly one leads.
ElectionTerminates == <>[](/\ \A i \in Server : state[i] /= "LOOKING"
                           /\ \E l \in Server : state[l] = "LEADING")
=============================================================================
