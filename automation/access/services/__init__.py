"""The only writers of the access domain: `tokens` (create, revoke, authenticate), `audit` (insert only)."""
