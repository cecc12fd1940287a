"""The engine's side of the broker: a Redis transport that survives restarts and malformed messages,
the consumer hooks that set undeliverable messages aside, and where they are set aside."""
