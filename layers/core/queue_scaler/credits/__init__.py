"""Credits: the ledger, the producer that reserves credit and routes a job, refunds of dead letters."""
