"""Meta-World v3 (the `metaworld` package): suites MT1, MT10 and MT50 under the official multitask
protocol, the env, goal tables, instructions and scripted experts. Importing it registers the suites."""

from envs.metaworld import suites  # noqa: F401  (registration)
