----------------------------- MODULE MCSessions -----------------------------
(* Model-checking wrapper for Sessions.tla: clients are interchangeable.    *)
EXTENDS Sessions, TLC

CONSTANTS s1, s2, c1, c2

ClientSymmetry == Permutations(Client)
=============================================================================
