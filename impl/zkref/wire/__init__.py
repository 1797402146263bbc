"""ZooKeeper's client wire protocol: jute records and a sans-I/O frame codec (pure core)."""
