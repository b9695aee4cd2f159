"""Multitask optimisation methods: each does what its paper says on a toy problem with conflicting tasks,
task-stratified batches, exact resume with a stateful method, and the DDP refusal."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from common.schema import ACTION_IS_PAD, TASK_INDEX
from policies.registry import make_policy
from tests.policies.conftest import tiny_batch, tiny_config, tiny_spec
from tests.test_trainer import RandomWindows, assert_same_run, tiny_policy, trainer_config
from training.multitask import MultitaskConfig, conflict_share, make_method, task_losses
from training.sampler import TaskStratifiedBatchSampler
from training.trainer import Trainer

# Two tasks on one parameter vector w (3,): task 0 pulls w towards a, task 1 towards b; at w = 0 their
# gradients -2a and -2b point 111 degrees apart (a conflict), and task 1's is 4x longer.
A, B = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([-1.5, 4.0, 0.0])


def toy_outputs(w: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Four samples, two of each task: per-sample squared distances to the task's target."""
    targets = torch.stack([A, A, B, B])
    per_sample = ((w - targets) ** 2).sum(-1)
    return {"loss": per_sample.mean(), "loss_per_sample": per_sample}, torch.tensor([0, 0, 1, 1])


def update_direction(method_name: str, **config) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """The gradient a method writes at w = 0, and the two task gradients (2, 3)."""
    w = nn.Parameter(torch.zeros(3))
    method = make_method(MultitaskConfig(method=method_name, **config), num_tasks=2)
    outputs, tasks = toy_outputs(w)
    reported = method.backward(outputs, tasks, [w])
    task_gradients = torch.stack([-2 * A, -2 * B])
    return w.grad.clone(), task_gradients, reported


def test_the_toy_tasks_conflict():
    _, gradients, reported = update_direction("upgrad")
    assert gradients[0] @ gradients[1] < 0 and reported["gradient_conflict"] == 1.0


def test_sum_follows_the_mean_gradient_into_the_conflict():
    update, gradients, _ = update_direction("sum")
    torch.testing.assert_close(update, gradients.mean(0))
    assert update @ gradients[0] < 0  # plain descent makes task 0 worse here


@pytest.mark.parametrize("method", ["upgrad", "pcgrad", "mgda", "dualproj"])
def test_conflict_averse_methods_never_increase_any_task_loss(method):
    """UPGrad, PCGrad, MGDA and DualProj all give an update on which every task's loss falls (non-negative
    inner product with each task gradient, up to the tolerance of the quadratic solvers they use)."""
    update, gradients, _ = update_direction(method)
    cosines = gradients @ update / (gradients.norm(dim=1) * update.norm())
    assert (cosines >= -1e-3).all(), cosines
    assert update.norm() > 0


def test_pcgrad_projects_out_the_conflicting_components():
    update, g, _ = update_direction("pcgrad")
    g0 = g[0] - (g[0] @ g[1]) / (g[1] @ g[1]) * g[1]  # each gradient projected onto the other's normal plane
    g1 = g[1] - (g[1] @ g[0]) / (g[0] @ g[0]) * g[0]
    torch.testing.assert_close(update, g0 + g1)
    assert g0 @ g[1] == pytest.approx(0, abs=1e-5) and g1 @ g[0] == pytest.approx(0, abs=1e-5)


def test_mgda_takes_the_smallest_vector_of_the_convex_hull():
    update, g, _ = update_direction("mgda")
    best = min((((1 - a) * g[0] + a * g[1]).norm(), a) for a in torch.linspace(0, 1, 2001))[1]
    torch.testing.assert_close(update / update.norm(), ((1 - best) * g[0] + best * g[1]) /
                               ((1 - best) * g[0] + best * g[1]).norm(), atol=2e-3, rtol=0)


def test_imtl_g_gives_every_task_the_same_projection():
    update, g, _ = update_direction("imtl_g")
    projections = g @ update / g.norm(dim=1)
    torch.testing.assert_close(projections[0], projections[1], atol=1e-4, rtol=1e-4)


def test_uncertainty_weighting_learns_larger_weights_for_lower_noise_tasks():
    """Task 0's targets are noisy (its loss cannot fall below ~1), task 1's are exact: its weight must grow."""
    torch.manual_seed(0)
    w = nn.Parameter(torch.zeros(2))
    method = make_method(MultitaskConfig(method="uncertainty"), num_tasks=2)
    optimizer = torch.optim.Adam([w, *method.extra_parameters()], lr=0.05)
    tasks = torch.tensor([0] * 16 + [1] * 16)
    for _ in range(400):
        targets = torch.cat([torch.randn(16, 2), torch.zeros(16, 2)])  # task 0: noise of variance 1 per axis
        per_sample = ((w - targets) ** 2).sum(-1)
        optimizer.zero_grad()
        reported = method.backward({"loss": per_sample.mean(), "loss_per_sample": per_sample}, tasks, [w])
        optimizer.step()
    assert reported["task_weight/1"] > 5 * reported["task_weight/0"]


def test_famo_shifts_weight_to_the_task_whose_loss_falls_slowest():
    """Task 0's loss falls with every step, task 1's (a floor the model cannot move) does not."""
    w = nn.Parameter(torch.tensor([4.0, 4.0]))
    method = make_method(MultitaskConfig(method="famo", famo_lr=0.1), num_tasks=2)
    optimizer = torch.optim.SGD([w], lr=0.05)
    tasks = torch.tensor([0, 1])

    def outputs() -> dict[str, torch.Tensor]:
        per_sample = torch.stack([w[0] ** 2 + 0.01, 1.0 + 0 * w[1]])
        return {"loss": per_sample.mean(), "loss_per_sample": per_sample}

    for _ in range(30):
        optimizer.zero_grad()
        method.backward(outputs(), tasks, [w])
        optimizer.step()
        method.after_step(outputs(), tasks)
    weights = torch.softmax(method.inner._w.detach(), 0)
    assert weights[1] > 0.7 > 0.3 > weights[0]


@pytest.mark.parametrize("method", ["upgrad", "pcgrad", "cagrad"])
def test_per_task_passes_give_the_whole_batch_jacobians_update(method):
    """Each task's gradient from a forward pass over its rows alone: the same update as torchjd's Jacobian
    over the whole batch's graph, with `forward` seeing only one task's rows at a time."""
    targets, tasks = torch.stack([A, B, A, B, B]), torch.tensor([0, 1, 0, 1, 1])
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])  # a per-row input: each row's loss is its own
    seen = []

    def forward(batch):
        seen.append(batch[TASK_INDEX].unique().tolist())
        per_sample = ((w - batch["target"]) ** 2).sum(-1) * batch["weight"]
        return {"loss": per_sample.mean(), "loss_per_sample": per_sample}

    updates = []
    for per_task_forward in (True, False):
        w = nn.Parameter(torch.tensor([0.1, -0.2, 0.3]))
        chosen = make_method(MultitaskConfig(method=method, per_task_forward=per_task_forward), num_tasks=2)
        batch = {"target": targets, "weight": weights, TASK_INDEX: tasks}
        outputs, reported = chosen.gradients(forward, batch, [w], separable=True)
        updates.append((w.grad.clone(), reported, outputs["loss_per_sample"].detach()))
    assert seen == [[0], [1], [0, 1]]
    torch.testing.assert_close(updates[0][0], updates[1][0])
    assert updates[0][1] == pytest.approx(updates[1][1])
    torch.testing.assert_close(updates[0][2], updates[1][2])  # per-sample losses back in the batch's order


def test_a_trainer_step_with_per_task_passes_matches_the_whole_batch(tmp_path):
    """The transformer policy (deterministic without dropout, padded steps in some rows): the same gradients
    and task losses either way."""
    grads, losses = [], []
    for per_task in (True, False):
        policy = tiny_policy("transformer").eval()  # eval: no dropout, so both passes see the same function
        trainer = Trainer(trainer_config(multitask=MultitaskConfig(method="upgrad", per_task_forward=per_task)),
                          policy, RandomWindows(), tmp_path / str(per_task), progress=False)
        batch = tiny_batch(policy.spec, batch_size=7)
        batch[ACTION_IS_PAD][:3, 5:] = True
        reported = trainer.train_step(policy, batch)
        grads.append(torch.cat([p.grad.flatten() for p in policy.parameters() if p.grad is not None]))
        losses.append({k: v for k, v in reported.items() if k.startswith("loss/")})
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)
    assert losses[0] == pytest.approx(losses[1], rel=1e-5) and len(losses[0]) == 3


def test_a_mixture_of_experts_runs_gradient_methods_on_the_whole_batch(monkeypatch, tmp_path):
    """Its balance loss is a statistic of the whole batch's routing: one pass, with the balance as an objective."""
    policy = make_policy(tiny_config("diffusion", "unet+moe"), tiny_spec())
    assert not policy.losses_are_per_sample
    calls = []
    compute_loss = policy.compute_loss
    monkeypatch.setattr(policy, "compute_loss", lambda batch: calls.append(len(batch[TASK_INDEX])) or
                        compute_loss(batch))
    trainer = Trainer(trainer_config(multitask=MultitaskConfig(method="upgrad")), policy, RandomWindows(),
                      tmp_path, progress=False)
    reported = trainer.train_step(policy, tiny_batch(policy.spec, batch_size=6))
    assert calls == [6] and "gradient_conflict" in reported


def test_task_losses_average_each_task_present():
    losses, present = task_losses(torch.tensor([1.0, 3.0, 10.0, 2.0]), torch.tensor([2, 2, 0, 2]), num_tasks=4)
    assert present.tolist() == [0, 2] and losses.tolist() == [10.0, 2.0]


def test_conflict_share_counts_pairs_with_negative_cosine():
    g = torch.tensor([[1.0, 0.0], [-1.0, 0.1], [0.0, 1.0]])
    assert conflict_share(g @ g.T) == pytest.approx(1 / 3)


def test_stratified_batches_give_each_chosen_task_an_equal_share_and_depend_only_on_seed_and_step():
    task_of_sample = torch.tensor([0] * 100 + [1] * 10 + [2] * 40 + [3] * 7)
    sampler = TaskStratifiedBatchSampler(task_of_sample, tasks_per_batch=2, batch_size=8, num_steps=10, seed=3)
    seen = set()
    for batch in sampler:
        counts = torch.bincount(task_of_sample[batch], minlength=4)
        assert sorted(counts.tolist()) == [0, 0, 4, 4]
        seen |= set(torch.nonzero(counts).flatten().tolist())
    assert seen == {0, 1, 2, 3}  # every task comes round
    resumed = TaskStratifiedBatchSampler(task_of_sample, 2, 8, num_steps=10, seed=3, start_step=6)
    assert list(resumed) == list(sampler)[6:]


@pytest.mark.parametrize("method", ["famo", "uncertainty", "gradvac"])
def test_a_resumed_run_with_a_stateful_method_reaches_the_same_weights(tmp_path, method):
    multitask = MultitaskConfig(method=method, tasks_per_batch=3)
    straight = Trainer(trainer_config(multitask=multitask), tiny_policy(), RandomWindows(), tmp_path / "straight",
                       progress=False)
    straight.fit()
    first = Trainer(trainer_config(multitask=multitask), tiny_policy(), RandomWindows(), tmp_path / "resumed",
                    progress=False)
    first.add_callback(5, lambda step, trainer: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    second = Trainer(trainer_config(multitask=multitask), tiny_policy(seed=9), RandomWindows(), tmp_path / "resumed",
                     progress=False)
    second.fit()
    assert_same_run(straight, second)
    for name, value in straight.method.state_dict().items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(second.method.state_dict()[name], value, rtol=0, atol=0)


def test_a_method_other_than_sum_is_refused_under_ddp(monkeypatch, tmp_path):
    import training.trainer

    monkeypatch.setattr(training.trainer, "init_distributed", lambda *args: (0, 0, 2))
    with pytest.raises(ValueError, match="does not run under DDP"):
        Trainer(trainer_config(multitask=MultitaskConfig(method="pcgrad")), tiny_policy(), RandomWindows(), tmp_path,
                progress=False)
