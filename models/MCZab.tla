------------------------------- MODULE MCZab -------------------------------
(* Model-checking wrapper for Zab.tla: symmetry set for the server ids.     *)
(* Each MCZab_*.cfg file is one model; models/manifest.json lists them.    *)
EXTENDS Zab, TLC

CONSTANTS s1, s2, s3

ServerSymmetry == Permutations(Server)
=============================================================================
