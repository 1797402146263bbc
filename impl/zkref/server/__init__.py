"""The asyncio shell of the standalone server: client port, storage, ticker, zoo.cfg.

Shells turn bytes and timers into inputs for the pure cores (`zkref.wire`, `zkref.core`) and run
their effects in order; they may do I/O, the cores may not.
"""
