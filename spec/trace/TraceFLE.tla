---------- MODULE TraceFLE ----------
(***************************************************************************)
(* Trace validation wrapper for FastLeaderElection.tla (zkref.conform.tracecheck).        *)
(*                                                                         *)
(* A generated module EXTENDS this one and supplies the trace: TraceLen,   *)
(* InitOK (the trace's initial records, a state predicate) and Step(k)    *)
(* (record k: the action named by lastAction' with its parameters, and the *)
(* post variables the record gives; the others stay free).  The cursor l   *)
(* counts the records matched; TLC runs BFS with VIEW TraceView.           *)
(* "Accepted" = the invariant TraceUnfinished(TraceLen) is violated: some  *)
(* behaviour of the spec reaches l = TraceLen.  If BFS ends without a      *)
(* violation, the search depth D says that records 1..D-1 were matched and *)
(* record D was not.                                                       *)
(***************************************************************************)
EXTENDS FastLeaderElection, TLC

VARIABLE l   \* the trace cursor: records matched so far

TraceVars == <<vars, l>>
\* lastAction only labels the step just taken, so states that differ in it
\* alone have the same futures: leaving it out of the view is sound.
TraceView == <<view, l>>

TraceInitOf(InitOK) == Init /\ InitOK /\ l = 0

TraceNextOf(N, Step(_)) ==
    /\ l < N
    /\ Next
    /\ Step(l + 1)
    /\ l' = l + 1

TraceUnfinished(N) == l < N

\* Diagnosis of a rejection at record K: match 1..K-1 as usual, then print
\* every successor's action and the parts of record K it fails (Fails is a
\* set of names: "action", "params", or post variables) with their values.
TraceDiagNextOf(K, Step(_), Fails, Values) ==
    \/ /\ l < K - 1
       /\ Next
       /\ Step(l + 1)
       /\ l' = l + 1
    \/ /\ l = K - 1
       /\ Next
       /\ PrintT(<<"zkref-diag", lastAction', Fails, Values>>)
       /\ l' = K

TraceDiagInitOf(Fails, Values) ==
    /\ Init
    /\ l = 0
    /\ PrintT(<<"zkref-diag", lastAction, Fails, Values>>)

TraceStop == FALSE /\ UNCHANGED TraceVars
=============================================================================
