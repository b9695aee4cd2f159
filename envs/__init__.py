"""Simulation: suites and tasks, env wrappers, scripted experts, parallel rollouts."""

from envs.rendering import select_gl_backend

# mujoco reads MUJOCO_GL when first imported: choose the backend before anything imports it.
select_gl_backend()
