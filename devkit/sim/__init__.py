"""The simulator behind `queue-scaler simulate` and `queue-scaler bench` (CONTRACTS.md section 5)."""
