"""The training loop every policy shares: batches, optimizer, EMA, checkpoints, exact resume, DDP, logs."""
