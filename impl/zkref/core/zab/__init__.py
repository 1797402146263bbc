"""Zab as pure cores (leader, follower, quorum peer). For now: the zxid helpers (`zxid`)."""
