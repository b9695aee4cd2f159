"""Learnable policies (diffusion, transformer): see the issue on policies and train.py."""
