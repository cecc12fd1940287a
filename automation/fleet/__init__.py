"""The worker fleet: each node's identity and heartbeat, from which the engine knows who is alive."""
