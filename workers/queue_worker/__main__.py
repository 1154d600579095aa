"""`python -m queue_worker`: the worker container's entry point (CONTRACTS.md section 4)."""

from __future__ import annotations

import sys

from queue_worker.app import main

sys.exit(main())
