"""The `zkref` command: one entry point, a sub-command per job.

zkref server --config zoo.cfg      run a server (an ensemble member with server.N lines + myid)
zkref ensemble --size N            N members on 127.0.0.1 (prints the connect string)
zkref spec check [MODEL ...]       model-check the TLA+ specs with TLC
zkref trace validate FILE          check an implementation trace against the TLA+ spec
zkref chaos run|check ...          fault-injecting workloads and the linearizability checker
zkref bench [--target ...]         getData/setData throughput against zkref and ZooKeeper
zkref 4lw WORD [--server H:P]      send a four-letter word and print the answer
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module

USAGE = __doc__ or ""

# sub-command -> module whose `main(argv) -> int` handles it (imported lazily: `zkref server`
# should not pay for TLC or kazoo imports).
SUBCOMMANDS: dict[str, str] = {
    "server": "zkref.server.main",
    "spec": "zkref.conform.speccli",
    "chaos": "zkref.chaos.cli",
    "trace": "zkref.conform.tracecli",
    "bench": "zkref.bench",
    "4lw": "zkref.server.fourletter",
    "ensemble": "zkref.server.ensemble",  # issue 4: N members on 127.0.0.1
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE.strip())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from zkref import __version__

        print(f"zkref {__version__}")
        return 0
    name = args[0]
    if name not in SUBCOMMANDS:
        print(f"zkref: unknown command {name!r}\n\n{USAGE.strip()}", file=sys.stderr)
        return 2
    module = import_module(SUBCOMMANDS[name])
    entry: Callable[[list[str]], int] = module.main
    try:
        return entry(args[1:])
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
