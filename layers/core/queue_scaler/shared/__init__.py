"""What every area uses and that depends on no area: errors, metric names, logging, the job
envelope, the event models at the boundaries, AWS clients and error mapping."""
