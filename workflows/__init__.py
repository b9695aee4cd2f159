"""What the entry points run: collection, training and evaluation, wiring `envs/`, `datasets/`, `policies/`
and `training/` together. The scripts at the top level (collect.py, train.py, eval.py) only parse the
configuration and call one function here through `workflows.script.run_script`."""
