"""Training: demonstrations (collected first where missing), one multitask policy, the shared training
loop, evaluations during training and a final evaluation under the suite's protocol. `python train.py`
runs it.

Writes into `out_dir` (default outputs/train/<name>): config.yaml, checkpoints/last (weights, config,
training state; re-running the same command resumes from it), checkpoints/step_<N>, tensorboard/,
eval/step_<N>/ (evaluations during training) and final_eval/ (results.json, results.md, videos/).

With `joint_suites` one policy is trained on several suites at once (a policy across suites: one task table,
state and actions padded with masks, per-suite normalisation; `policies.spec`), and every evaluation runs
each suite, into eval/step_<N>/<suite>/ and final_eval/<suite>/.
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
from datasets.joint import JointDataset
from datasets.sampling import sample_weights, suite_shared_weights, suite_shares
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
from workflows.collect import CollectConfig, collect, collection_done
from workflows.evaluate import UNTRAINED_TASKS, EvalConfig, check_policy_fits, evaluate, learned_policy

log = logging.getLogger("train")


@dataclass
class JointSuiteConfig:
    """A suite the same policy is trained on beside `env` (one policy across suites): its envs and its data."""

    env: EnvConfig = field(default_factory=EnvConfig)
    dataset: DatasetConfig = MISSING
    collect_episodes_per_task: int | None = None  # demonstrations to collect where missing; None: the run's
    final_eval_episodes_per_task: int | None = None  # None: the suite's official protocol
    share: float | None = None  # this suite's share of the training draws; None: as its windows (or tasks) have it


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
    joint_suites: dict[str, JointSuiteConfig] = field(default_factory=dict)  # more suites for the same policy, by
    # name (configs/experiment/mt10_libero_object.yaml): one task table, evaluated on every suite
    out_dir: str | None = None  # None: outputs/train/<name> (in a hydra multirun: its sweep folder per job)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0 (0: no evaluation during training), got {self.eval_every}")
        for name in ("eval_episodes_per_task", "collect_episodes_per_task"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name, joint in self.joint_suites.items():
            for field_name in ("collect_episodes_per_task", "final_eval_episodes_per_task"):
                value = getattr(joint, field_name)
                if value is not None and value < 1:
                    raise ValueError(f"joint_suites.{name}.{field_name} must be >= 1 or null, got {value}")
            if joint.share is not None and not 0 < joint.share < 1:
                raise ValueError(f"joint_suites.{name}.share must be in (0, 1) or null, got {joint.share}")
        shares = [j.share for j in self.joint_suites.values() if j.share is not None]
        if sum(shares) >= 1:
            raise ValueError(f"the joint suites' shares of the draws sum to {sum(shares):g}: they must leave some to "
                             f"{self.env.suite}")
        if shares and self.trainer.multitask.tasks_per_batch:
            raise ValueError("trainer.multitask.tasks_per_batch gives every task of a batch an equal share; it does "
                             "not combine with joint_suites.<name>.share")
        if self.joint_suites and self.train_tasks is not None:
            raise ValueError("train_tasks picks tasks of one suite; it does not combine with joint_suites")
        if self.final_eval_episodes_per_task is not None and self.final_eval_episodes_per_task < 1:
            raise ValueError(f"final_eval_episodes_per_task must be >= 1 or null (the official protocol), got "
                             f"{self.final_eval_episodes_per_task}")


ConfigStore.instance().store(name="train_schema", node=TrainConfig)
POLICIES.discover()  # the policies' config schemas, policy/<name>_schema, are what configs/policy/*.yaml extend


def suites_trained(cfg: TrainConfig) -> list[JointSuiteConfig]:
    """Env, dataset and collection of every suite the policy is trained on: `env` first, then `joint_suites`."""
    return [JointSuiteConfig(cfg.env, cfg.dataset, cfg.collect_episodes_per_task, cfg.final_eval_episodes_per_task),
            *cfg.joint_suites.values()]


def ensure_demonstrations(cfg: TrainConfig, trained: JointSuiteConfig, suite: Suite) -> None:
    """Collect expert demonstrations for the suite's tasks that have no file in dataset.path yet, nor a record
    that their expert gave none (formats the collection writes only: a LeRobot folder is read as it is)."""
    dataset, episodes = trained.dataset, trained.collect_episodes_per_task or cfg.collect_episodes_per_task
    if not isinstance(dataset.path, str) or not cfg.collect_missing or not SOURCES.get(dataset.format).collected:
        return
    missing = [t.name for t in suite.tasks if not collection_done(Path(dataset.path), t)]
    if not missing:
        return
    log.info("no demonstrations for %d tasks in %s: collecting %d per task with the scripted experts",
             len(missing), dataset.path, episodes)
    collect(CollectConfig(env=dataclasses.replace(trained.env, goal_set=GoalSet.random),
                          rollout=dataclasses.replace(cfg.rollout, videos_per_task=0),
                          episodes_per_task=episodes, out_dir=dataset.path, progress=cfg.progress))


def build_policy(cfg: TrainConfig, suites: list[Suite], datasets: list[MultitaskSequenceDataset]) -> MultitaskPolicy:
    """The policy for the suites' task table (one suite, or several one after another: a policy across suites),
    with normaliser statistics (per suite) and instruction embeddings set."""
    specs = []
    for suite, dataset in zip(suites, datasets):
        specs.append(PolicySpec(state_dim=dataset.state_dim, action_dim=dataset.action_dim, tasks=list(suite.tasks),
                                image_shapes=dict(dataset.image_shapes)))
        check_policy_fits(specs[-1], suite)
        window = (cfg.policy.n_obs_steps, cfg.policy.horizon, cfg.policy.n_action_steps)
        cut = (dataset.n_obs_steps, dataset.horizon, dataset.n_action_steps)
        if window != cut:
            raise ValueError(f"policy (n_obs_steps, horizon, n_action_steps) = {window} but the dataset of "
                             f"{suite.name} cuts windows of {cut}")
    spec = specs[0] if len(specs) == 1 else PolicySpec.across_suites(specs)
    policy = make_policy(cfg.policy, spec)
    if cfg.init_checkpoint:  # a fine-tune keeps the base's normaliser, so that its weights stay comparable
        base, record = load_policy(cfg.init_checkpoint)
        if (record["config"], record["spec"]) != (dataclasses.asdict(policy.config), spec.to_dict()):
            raise ValueError(f"init_checkpoint={cfg.init_checkpoint} holds another policy config or task table "
                             "than this run's; fine-tune with the base run's policy settings and suite")
        policy.load_state_dict(base.state_dict())
        return policy
    for group, dataset in enumerate(datasets):  # a policy across suites: each suite's own statistics
        policy.normalizer.fit(load_or_compute_statistics(dataset), group=group)
    if cfg.policy.conditioning.text:
        encoder = make_text_encoder(cfg.policy.conditioning.text_encoder)
        policy.conditioning.set_text_table(embed_instructions(encoder, [t.instruction for t in spec.tasks]))
    n_params = sum(p.numel() for p in policy.parameters())
    log.info("policy %s: %.2fM parameters, conditioning on %s", cfg.policy.name, n_params / 1e6,
             "+".join(k for k in ("task_index", "text") if getattr(cfg.policy.conditioning, k)))
    return policy


def evaluation(cfg: TrainConfig, trainer: Trainer, out_dir: Path, videos: int, episodes: int | None = None) -> dict:
    """Evaluate the trainer's acting weights (EMA) as they are in memory, `episodes` per task (None: each suite's
    final_eval_episodes_per_task); returns results.json's content (a policy across suites: {suite: its
    results}, each written to out_dir/<suite>/). The results record the sha256 of exactly these weights (that
    of checkpoints/step_<N> when one is saved)."""
    state = trainer.acting_state_dict()
    source = {"training_run": str(trainer.out_dir.resolve()), "step": trainer.step, "sha256": weights_sha256(state)}
    if UNTRAINED_TASKS in trainer.metadata:
        source[UNTRAINED_TASKS] = trainer.metadata[UNTRAINED_TASKS]
    policy, results = trainer.acting_policy(state), {}
    for trained in suites_trained(cfg):
        env = trained.env
        folder = out_dir / env.suite if cfg.joint_suites else out_dir
        eval_cfg = EvalConfig(env=env, device=cfg.trainer.device,
                              rollout=dataclasses.replace(cfg.rollout, videos_per_task=videos),
                              episodes_per_task=episodes or trained.final_eval_episodes_per_task,
                              out_dir=str(folder), progress=cfg.progress)
        under_test = learned_policy(policy, make_suite(env), source, f"{cfg.name}_step_{trainer.step:07d}",
                                    cfg.trainer.device, cfg.rollout)
        results[env.suite] = evaluate(eval_cfg, under_test)
    return results if cfg.joint_suites else results[cfg.env.suite]


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
    """Collect (if needed), train and evaluate; returns {"step", "checkpoint", "final_eval" (or None; a policy
    across suites: {suite: results})}."""
    torch.set_float32_matmul_precision("high")
    trained_on = suites_trained(cfg)
    suites = [make_suite(trained.env) for trained in trained_on]
    out_dir = Path(cfg.out_dir) if cfg.out_dir else default_out_dir(cfg.name)
    rank, _, _ = init_distributed(cfg.trainer.device, cfg.trainer.distributed_timeout_s,
                                  cfg.trainer.main_process_timeout_s)
    if rank == 0:
        ensure_folder(out_dir, "out_dir")
        for suite, trained in zip(suites, trained_on):
            ensure_demonstrations(cfg, trained, suite)
    wait_for_main_process()  # the other processes read the files rank 0 collected
    datasets = [MultitaskSequenceDataset(dataclasses.replace(trained.dataset, task_names=[t.name for t in suite.tasks],
                                                             task_instructions=[t.instruction for t in suite.tasks],
                                                             only_tasks=cfg.train_tasks))
                for suite, trained in zip(suites, trained_on)]
    policy = build_policy(cfg, suites, datasets)
    if len(datasets) == 1:
        dataset, weights = datasets[0], sample_weights(datasets[0], cfg.dataset.task_balanced)
    else:
        dataset = JointDataset(datasets, [len(s.tasks) for s in suites])
        weights = suite_shared_weights(dataset, cfg.dataset.task_balanced, [t.share for t in trained_on])
        log.info("draws per suite: %s", ", ".join(f"{s.name} {share:.2f}" for s, share in
                                                  zip(suites, suite_shares(dataset, weights))))
    metadata = {"suite": " + ".join(s.name for s in suites), "run": cfg.name, "dataset": str(dataset.root)}
    untrained = {s.name: d.tasks_without_demonstrations for s, d in zip(suites, datasets)
                 if d.tasks_without_demonstrations}
    if untrained:  # travels with the weights into every results.json of them
        metadata[UNTRAINED_TASKS] = untrained
    trainer = Trainer(cfg.trainer, policy, dataset, out_dir, weights, metadata=metadata, progress=cfg.progress)
    trainer.resume()  # refuses a run of another policy in out_dir before its config.yaml is touched
    if trainer.is_main:
        write_text(out_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.structured(cfg)))

    def periodic_eval(step: int, trainer: Trainer) -> dict[str, float]:
        if step == cfg.trainer.num_steps and cfg.final_eval:
            return {}  # the final evaluation below covers the last step
        result = evaluation(cfg, trainer, out_dir / "eval" / f"step_{step:07d}", 0, cfg.eval_episodes_per_task)
        if cfg.joint_suites:
            return {f"success_rate/{name}": part["suite"]["mean_success"] for name, part in result.items()}
        return {"success_rate": result["suite"]["mean_success"]}

    trainer.add_callback(cfg.eval_every, periodic_eval)
    step = trainer.fit()
    result = None
    if cfg.final_eval and trainer.is_main:
        result = evaluation(cfg, trainer, out_dir / "final_eval", cfg.rollout.videos_per_task)
    return {"step": step, "checkpoint": trainer.checkpoint_dir / "last", "final_eval": result}
