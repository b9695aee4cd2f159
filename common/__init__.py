"""The leaf of the project: names and helpers that `envs/`, `datasets/`, `policies/` and the entry points all
may import. Nothing in here imports from the rest of the project."""
