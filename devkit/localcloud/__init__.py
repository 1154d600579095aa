"""The local cloud: the whole stack on 127.0.0.1 (CONTRACTS.md section 3)."""
