------------------------------- MODULE MCFLE -------------------------------
(* Model-checking wrapper for FastLeaderElection.tla.  Server ids are       *)
(* numbers (the sid breaks vote ties), so no symmetry reduction here.       *)
(* Profile picks the servers' (currentEpoch, last zxid) at the start.       *)
EXTENDS FastLeaderElection

CONSTANT Profile

\* "distinct": different zxids; "ties": all equal, the sid decides;
\* "epochs": a higher epoch with an equal zxid (the ZOOKEEPER-1419 shape).
MCInitZxid == CASE Profile = "distinct" -> [i \in Server |-> IF i = 1 THEN 2 ELSE 1]
                [] Profile = "ties"     -> [i \in Server |-> 1]
                [] Profile = "epochs"   -> [i \in Server |-> IF i = 3 THEN 0 ELSE 1]
MCInitEpoch == CASE Profile = "distinct" -> [i \in Server |-> 1]
                 [] Profile = "ties"     -> [i \in Server |-> 1]
                 [] Profile = "epochs"   -> [i \in Server |-> IF i = 1 THEN 2 ELSE 1]
=============================================================================
