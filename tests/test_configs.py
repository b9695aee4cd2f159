"""Configuration as a user types it: a bad choice fails at composition, naming the valid ones."""

from __future__ import annotations

import pytest
from hydra import compose, initialize
from omegaconf import OmegaConf

import workflows.collect  # noqa: F401  (registers collect_schema)
import workflows.evaluate  # noqa: F401  (registers eval_schema)
import workflows.train  # noqa: F401  (registers train_schema)


def compose_object(config_name: str, overrides: list[str]):
    with initialize(config_path="../configs", version_base="1.3"):
        return OmegaConf.to_object(compose(config_name, overrides=overrides))


def said(error: BaseException) -> str:
    """The message of an error and of its causes: what hydra prints."""
    parts = []
    while error is not None:
        parts.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(parts)


@pytest.mark.parametrize("config_name, override, valid", [
    ("eval", "env.goal_set=fixed", "official, random"),
    ("collect", "keep=most", "success, all"),
    ("eval", "env.fault.kind=crash", "exception, segfault, hang"),
    ("eval", "rollout.backend=slurm", "local, ray"),
    ("collect", "rollout.ray.auth=none", "auto, token, disabled"),
    ("train", "trainer.mixed_precision=fp8", "auto, bf16, no"),
    ("train", "policy.prediction_type=v_prediction", "epsilon, sample"),
    ("train", "policy.action_normalization=minmax", "min_max, mean_std"),
])
def test_a_bad_choice_fails_at_composition_with_the_valid_list(config_name, override, valid):
    with pytest.raises(Exception) as failure:
        compose_object(config_name, [override])
    assert f"expected one of [{valid}]" in said(failure.value)


@pytest.mark.parametrize("config_name, override, known", [
    ("eval", "env.suite=metaworld_mt11", "metaworld_mt1, metaworld_mt10, metaworld_mt50"),
    ("train", "policy.denoiser=unet2", "transformer, unet"),
    ("train", "policy.conditioning.text_encoder=bert", "clip, minilm"),
])
def test_an_unknown_registered_name_fails_naming_the_known_ones(config_name, override, known):
    from envs.registry import make_suite

    with pytest.raises(Exception) as failure:
        cfg = compose_object(config_name, [override])
        make_suite(cfg.env)  # suites are looked up when built; policy fields are checked at composition
    message = said(failure.value)
    assert "known: " in message and known in message.split("known: ", 1)[1]
