"""Learnable policies. Here so far: frozen text encoders for instructions and the normaliser; the
diffusion and transformer policies arrive with train.py (see the issue on policies)."""
