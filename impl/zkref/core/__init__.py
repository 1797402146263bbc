"""Pure, deterministic protocol cores: data tree, txn prep, sessions, watches (and later Zab)."""
