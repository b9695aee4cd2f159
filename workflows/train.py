"""Training: demonstrations (collected first where missing), one multitask policy, the shared training
loop, evaluations during training and a final evaluation under the suite's protocol. `python train.py`
runs it.

Writes into `out_dir` (default outputs/train/<name>): config.yaml, checkpoints/last (weights, config,
training state; re-running the same command resumes from it), checkpoints/step_<N>, tensorboard/,
eval/step_<N>/ (evaluations during training) and final_eval/ (results.json, results.md, videos/).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from common.atomic import ensure_folder, write_text
from datasets.config import DatasetConfig
from datasets.sampling import sample_weights
from datasets.sequence_dataset import MultitaskSequenceDataset
from datasets.source import SOURCES
from datasets.statistics import load_or_compute_statistics
from envs.config import EnvConfig, GoalSet
from envs.registry import Suite, make_suite
from envs.rollout import RolloutConfig
from policies.base import MultitaskPolicy
from policies.checkpoint import load_policy, weights_sha256
from policies.registry import POLICIES, make_policy
from policies.spec import PolicySpec
from policies.text_encoder import embed_instructions, make_text_encoder
from training.config import TrainerConfig
from training.distributed import init_distributed, wait_for_main_process
from training.trainer import Trainer
from workflows.collect import CollectConfig, collect, task_file
from workflows.evaluate import EvalConfig, check_policy_fits, evaluate, learned_policy

log = logging.getLogger("train")


@dataclass
class TrainConfig:
    name: str = "mt10_state"  # run name: out_dir defaults to outputs/train/<name>
    env: EnvConfig = field(default_factory=EnvConfig)  # suite: task table, collection and evaluation
    dataset: DatasetConfig = MISSING
    policy: Any = MISSING  # a registered policy's config (configs/policy/)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)  # workers for collection and evaluation
    collect_missing: bool = True  # run the scripted experts for tasks without a demonstration file
    collect_episodes_per_task: int = 50
    eval_every: int = 0  # steps between evaluations during training (0: none; results in out_dir/eval/)
    eval_episodes_per_task: int = 5  # episodes per task of evaluations during training
    final_eval: bool = True  # evaluate the final policy under the official protocol
    final_eval_episodes_per_task: int | None = None  # None: the official protocol
    init_checkpoint: str | None = None  # start from this checkpoint's weights (its normaliser too): a fine-tune
    train_tasks: list[str] | None = None  # train on these tasks' demonstrations only; the task table stays whole
    out_dir: str | None = None  # None: outputs/train/<name> (in a hydra multirun: its sweep folder per job)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0 (0: no evaluation during training), got {self.eval_every}")
        for name in ("eval_episodes_per_task", "collect_episodes_per_task"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.final_eval_episodes_per_task is not None and self.final_eval_episodes_per_task < 1:
            raise ValueError(f"final_eval_episodes_per_task must be >= 1 or null (the official protocol), got "
                             f"{self.final_eval_episodes_per_task}")


ConfigStore.instance().store(name="train_schema", node=TrainConfig)
POLICIES.discover()  # the policies' config schemas, policy/<name>_schema, are what configs/policy/*.yaml extend


def ensure_demonstrations(cfg: TrainConfig, suite: Suite) -> None:
    """Collect expert demonstrations for the suite's tasks that have no file in dataset.path yet (formats the
    collection writes only: a LeRobot folder is read as it is)."""
    if not isinstance(cfg.dataset.path, str) or not cfg.collect_missing or not SOURCES.get(cfg.dataset.format).collected:
        return
    missing = [t.name for t in suite.tasks if not task_file(Path(cfg.dataset.path), t).exists()]
    if not missing:
        return
    log.info("no demonstrations for %d tasks in %s: collecting %d per task with the scripted experts",
             len(missing), cfg.dataset.path, cfg.collect_episodes_per_task)
    collect(CollectConfig(env=dataclasses.replace(cfg.env, goal_set=GoalSet.random),
                          rollout=dataclasses.replace(cfg.rollout, videos_per_task=0),
                          episodes_per_task=cfg.collect_episodes_per_task, out_dir=cfg.dataset.path,
                          progress=cfg.progress))


def build_policy(cfg: TrainConfig, suite: Suite, dataset: MultitaskSequenceDataset) -> MultitaskPolicy:
    """The policy for the suite's task table, with normaliser statistics and instruction embeddings set."""
    spec = PolicySpec(state_dim=dataset.state_dim, action_dim=dataset.action_dim, tasks=list(suite.tasks),
                      image_shapes=dict(dataset.image_shapes))
    check_policy_fits(spec, suite)
    window = (cfg.policy.n_obs_steps, cfg.policy.horizon, cfg.policy.n_action_steps)
    if window != (dataset.n_obs_steps, dataset.horizon, dataset.n_action_steps):
        raise ValueError(f"policy (n_obs_steps, horizon, n_action_steps) = {window} but the dataset cuts windows "
                         f"of {(dataset.n_obs_steps, dataset.horizon, dataset.n_action_steps)}")
    policy = make_policy(cfg.policy, spec)
    if cfg.init_checkpoint:  # a fine-tune keeps the base's normaliser, so that its weights stay comparable
        base, record = load_policy(cfg.init_checkpoint)
        if (record["config"], record["spec"]) != (dataclasses.asdict(policy.config), spec.to_dict()):
            raise ValueError(f"init_checkpoint={cfg.init_checkpoint} holds another policy config or task table "
                             "than this run's; fine-tune with the base run's policy settings and suite")
        policy.load_state_dict(base.state_dict())
        return policy
    policy.normalizer.fit(load_or_compute_statistics(dataset))
    if cfg.policy.conditioning.text:
        encoder = make_text_encoder(cfg.policy.conditioning.text_encoder)
        policy.conditioning.set_text_table(embed_instructions(encoder, [t.instruction for t in suite.tasks]))
    n_params = sum(p.numel() for p in policy.parameters())
    log.info("policy %s: %.2fM parameters, conditioning on %s", cfg.policy.name, n_params / 1e6,
             "+".join(k for k in ("task_index", "text") if getattr(cfg.policy.conditioning, k)))
    return policy


def evaluation(cfg: TrainConfig, trainer: Trainer, out_dir: Path, episodes: int | None, videos: int) -> dict:
    """Evaluate the trainer's acting weights (EMA) as they are in memory; returns results.json's content.
    The results record the sha256 of exactly these weights (that of checkpoints/step_<N> when one is saved)."""
    state = trainer.acting_state_dict()
    eval_cfg = EvalConfig(env=cfg.env, device=cfg.trainer.device,
                          rollout=dataclasses.replace(cfg.rollout, videos_per_task=videos),
                          episodes_per_task=episodes, out_dir=str(out_dir), progress=cfg.progress)
    source = {"training_run": str(trainer.out_dir.resolve()), "step": trainer.step, "sha256": weights_sha256(state)}
    under_test = learned_policy(trainer.acting_policy(state), make_suite(cfg.env), source,
                                f"{cfg.name}_step_{trainer.step:07d}", cfg.trainer.device, cfg.rollout)
    return evaluate(eval_cfg, under_test)


def default_out_dir(name: str) -> Path:
    """outputs/train/<name>; in a hydra multirun (`python train.py -m ...`) each job's own sweep folder,
    outputs/multirun/<name>/<job number> (configs/train.yaml), so that methods x seeds never share one."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        sweep = HydraConfig.get().sweep
        return Path(sweep.dir) / sweep.subdir
    return Path("outputs") / "train" / name


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Collect (if needed), train and evaluate; returns {"step", "checkpoint", "final_eval" (or None)}."""
    torch.set_float32_matmul_precision("high")
    suite = make_suite(cfg.env)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else default_out_dir(cfg.name)
    rank, _, _ = init_distributed(cfg.trainer.device, cfg.trainer.distributed_timeout_s,
                                  cfg.trainer.main_process_timeout_s)
    if rank == 0:
        ensure_folder(out_dir, "out_dir")
        ensure_demonstrations(cfg, suite)
    wait_for_main_process()  # the other processes read the files rank 0 collected
    dataset = MultitaskSequenceDataset(dataclasses.replace(cfg.dataset, task_names=[t.name for t in suite.tasks],
                                                           task_instructions=[t.instruction for t in suite.tasks],
                                                           only_tasks=cfg.train_tasks))
    policy = build_policy(cfg, suite, dataset)
    trainer = Trainer(cfg.trainer, policy, dataset, out_dir, sample_weights(dataset, cfg.dataset.task_balanced),
                      metadata={"suite": suite.name, "run": cfg.name, "dataset": str(dataset.root)},
                      progress=cfg.progress)
    trainer.resume()  # refuses a run of another policy in out_dir before its config.yaml is touched
    if trainer.is_main:
        write_text(out_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.structured(cfg)))

    def periodic_eval(step: int, trainer: Trainer) -> dict[str, float]:
        if step == cfg.trainer.num_steps and cfg.final_eval:
            return {}  # the final evaluation below covers the last step
        result = evaluation(cfg, trainer, out_dir / "eval" / f"step_{step:07d}", cfg.eval_episodes_per_task, 0)
        return {"success_rate": result["suite"]["mean_success"]}

    trainer.add_callback(cfg.eval_every, periodic_eval)
    step = trainer.fit()
    result = None
    if cfg.final_eval and trainer.is_main:
        result = evaluation(cfg, trainer, out_dir / "final_eval", cfg.final_eval_episodes_per_task,
                            cfg.rollout.videos_per_task)
    return {"step": step, "checkpoint": trainer.checkpoint_dir / "last", "final_eval": result}
