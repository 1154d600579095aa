"""queue_worker: the SIGTERM-aware SQS consumer that runs in each worker container.

`python -m queue_worker` is the entry point (CONTRACTS.md section 4); `queue_worker.examples`
holds the demo job handlers.
"""
