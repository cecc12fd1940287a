"""Who may do what, and what was done: permissions and roles, API tokens, the append-only audit log."""
