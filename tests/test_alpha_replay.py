"""AlphaReplayPlugin / AlphaReplay: loss composition, schedules, batch provenance, accuracy, pickling."""

from __future__ import annotations

import copy
import math
import pickle
import warnings

import pytest
import torch
import torch.nn.functional as F
from avalanche.checkpointing import save_checkpoint
from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.models import MTSimpleMLP, SimpleMLP
from avalanche.training.plugins import (
    EvaluationPlugin,
    EWCPlugin,
    LRSchedulerPlugin,
    LwFPlugin,
    ReplayPlugin,
    SupervisedPlugin,
)
from avalanche.training.plugins import GDumbPlugin as AvalancheGDumbPlugin
from avalanche.training.storage_policy import ClassBalancedBuffer
from helpers import make_naive, stream_accuracy

from avalanche_replay_ext import (
    AlphaReplay,
    AlphaReplayPlugin,
    ConstantAlpha,
    DERPlugin,
    GDumbPlugin,
    LinearAlpha,
    ReservoirSamplingBuffer,
    SplitDigits,
    alpha_replay_metrics,
)
from avalanche_replay_ext.metrics import stream_accuracy_key


def key(x: torch.Tensor, y) -> tuple:
    """Identify a SplitDigits sample by its pixels and label."""
    return (tuple(x.flatten().tolist()), int(y))


def keys_of(dataset) -> set:
    return {key(x, y) for x, y, *_ in (dataset[i] for i in range(len(dataset)))}


class Probe(SupervisedPlugin):
    """Test probe, registered after the replay plugin: records what each iteration trained on."""

    def __init__(self, replay: AlphaReplayPlugin) -> None:
        super().__init__()
        self.replay, self.records = replay, []

    def before_training_exp(self, strategy, **kwargs):
        self.buffer_keys = keys_of(self.replay.storage_policy.buffer)

    def before_backward(self, strategy, **kwargs):
        mem = self.replay.memory_minibatch
        self.record = {
            "exp": strategy.clock.train_exp_counter,
            "alpha": self.replay.alpha,
            "loss": strategy.loss.detach().clone(),
            "current": [v.clone() for v in strategy.mbatch],
            "memory": None if mem is None else [v.clone() for v in mem],
            "model": copy.deepcopy(strategy.model.state_dict()),
            "buffer_keys": self.buffer_keys,
        }

    def after_backward(self, strategy, **kwargs):
        self.record["grads"] = [None if p.grad is None else p.grad.clone() for p in strategy.model.parameters()]
        self.records.append(self.record)


def replay_run(digits, alpha=1.0, update_every="experience", epochs=1, mb_size=32, **kwargs):
    replay = AlphaReplayPlugin(200, alpha, update_every=update_every, seed=0, **kwargs)
    probe = Probe(replay)
    strategy = make_naive([replay, probe], epochs=epochs, mb_size=mb_size)
    for exp in digits.train_stream:
        strategy.train(exp)
    return strategy, replay, probe


def test_loss_is_current_plus_alpha_times_memory_and_gradients_match(digits):
    _, _, probe = replay_run(digits, alpha=0.7)
    with_memory = [r for r in probe.records if r["memory"] is not None]
    assert len(with_memory) > 20
    for rec in with_memory[::7]:
        model = SimpleMLP(num_classes=10, input_size=64, hidden_size=128, drop_rate=0.0)
        model.load_state_dict(rec["model"])
        (x, y, _), (mx, my, _) = rec["current"], rec["memory"]
        expected = F.cross_entropy(model(x), y) + 0.7 * F.cross_entropy(model(mx), my)
        expected.backward()
        assert torch.allclose(rec["loss"], expected.detach(), atol=1e-6)
        for grad, param in zip(rec["grads"], model.parameters(), strict=True):
            assert torch.allclose(grad, param.grad, atol=1e-6)


def test_first_experience_has_no_memory_term(digits):
    _, _, probe = replay_run(digits)
    first = [r for r in probe.records if r["exp"] == 0]
    assert first and all(r["memory"] is None for r in first)
    assert all(r["memory"] is not None for r in probe.records if r["exp"] > 0)
    rec = first[3]
    model = SimpleMLP(num_classes=10, input_size=64, hidden_size=128, drop_rate=0.0)
    model.load_state_dict(rec["model"])
    assert torch.allclose(rec["loss"], F.cross_entropy(model(rec["current"][0]), rec["current"][1]), atol=1e-6)


def test_linear_alpha_is_alpha_base_times_t_at_every_experience(digits):
    replay = AlphaReplayPlugin(200, LinearAlpha(0.5), seed=0)
    evaluator = EvaluationPlugin(*alpha_replay_metrics(), loggers=[])
    probe = Probe(replay)
    strategy = make_naive([replay, probe], epochs=1, evaluator=evaluator)
    for exp in digits.train_stream:
        strategy.train(exp)
    assert {r["exp"]: r["alpha"] for r in probe.records} == {t: 0.5 * t for t in range(5)}
    logged = evaluator.get_all_metrics()["AlphaReplay/alpha/train_phase/train_stream"][1]
    assert sorted(set(logged)) == [0.0, 0.5, 1.0, 1.5, 2.0] and len(logged) == len(probe.records)
    mem_losses = evaluator.get_all_metrics()["AlphaReplay/loss_memory/train_phase/train_stream"][1]
    assert len(mem_losses) == sum(r["memory"] is not None for r in probe.records)
    assert all(math.isfinite(v) and v >= 0 for v in mem_losses)


def test_memory_batches_hold_only_buffer_samples_and_current_only_current(digits):
    _, _, probe = replay_run(digits)
    current_keys = {e: keys_of(digits.train_stream[e].dataset) for e in range(5)}
    for rec in probe.records:
        x, y, _ = rec["current"]
        assert {key(xi, yi) for xi, yi in zip(x, y, strict=True)} <= current_keys[rec["exp"]]
        if rec["memory"] is not None:
            mx, my, _ = rec["memory"]
            assert {key(xi, yi) for xi, yi in zip(mx, my, strict=True)} <= rec["buffer_keys"]


def test_iteration_updates_fill_the_buffer_online_from_past_minibatches_only(digits):
    strategy, replay, probe = replay_run(digits, update_every="iteration", epochs=2)
    buf = replay.storage_policy
    assert buf.n_seen == sum(len(e.dataset) for e in digits.train_stream)  # first epoch only
    assert len(buf.buffer) == 200
    seen = set()
    first_epoch_steps = -(-len(digits.train_stream[0].dataset) // 32)
    for i, rec in enumerate(probe.records):
        x, y, _ = rec["current"]
        if rec["memory"] is not None:
            mx, my, _ = rec["memory"]
            assert {key(xi, yi) for xi, yi in zip(mx, my, strict=True)} <= seen
        elif i > 0:
            pytest.fail(f"iteration {i} had no memory term although the buffer was filled")
        seen |= {key(xi, yi) for xi, yi in zip(x, y, strict=True)}
    assert probe.records[0]["memory"] is None and probe.records[1]["memory"] is not None
    assert first_epoch_steps > 1


def test_alpha_replay_far_above_naive_on_split_digits(digits):
    """SplitDigits, mem 200, 3 epochs, batch 32, seed 0: alpha 1, LinearAlpha(1) and alpha 1 with
    per-iteration updates each beat Naive by a wide margin (the README quotes the accuracies)."""
    naive = make_naive([])
    replays = {
        "alpha 1": make_naive([AlphaReplayPlugin(200, 1.0, seed=0)]),
        "linear": make_naive([AlphaReplayPlugin(200, LinearAlpha(1.0), seed=0)]),
        "online": make_naive([AlphaReplayPlugin(200, 1.0, update_every="iteration", seed=0)]),
    }
    for exp in digits.train_stream:
        for strategy in (naive, *replays.values()):
            strategy.train(exp)
    acc_naive = stream_accuracy(naive, digits.test_stream)
    accs = {name: stream_accuracy(strategy, digits.test_stream) for name, strategy in replays.items()}
    print(f"\nstream accuracy: naive {acc_naive:.3f}, " + ", ".join(f"{k} {v:.3f}" for k, v in accs.items()))
    assert acc_naive < 0.25
    for name, acc in accs.items():
        assert acc > acc_naive + 0.4, name


def test_strategy_with_the_plugin_pickles_and_resumes_identically(digits):
    """Stdlib pickle of a whole AlphaReplay strategy after 2 experiences; both copies then train
    experience 3 to identical weights. (Avalanche's dill checkpoints: test_checkpoint_determinism.)"""
    strategy = AlphaReplay(
        model=SimpleMLP(num_classes=10, input_size=64, hidden_size=64, drop_rate=0.0),
        optimizer=None,
        criterion=torch.nn.CrossEntropyLoss(),
        mem_size=100,
        alpha=LinearAlpha(1.0),
        seed=3,
        train_mb_size=32,
        evaluator=EvaluationPlugin(loggers=[]),
    )
    strategy.optimizer = torch.optim.SGD(strategy.model.parameters(), lr=0.05)
    strategy.make_optimizer()
    for exp in list(digits.train_stream)[:2]:
        strategy.train(exp)
    restored = pickle.loads(pickle.dumps(strategy))
    assert isinstance(restored.replay_plugin.schedule, LinearAlpha)
    assert list(restored.replay_plugin.storage_policy.buffer.targets) == list(
        strategy.replay_plugin.storage_policy.buffer.targets
    )
    assert restored.replay_plugin.storage_policy.n_seen == sum(len(e.dataset) for e in list(digits.train_stream)[:2])
    for s in (strategy, restored):
        torch.manual_seed(0)
        s.train(digits.train_stream[2])
    for a, b in zip(strategy.model.parameters(), restored.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert restored.replay_plugin.alpha == 2.0


class LossProbe(SupervisedPlugin):
    """Test probe, registered last: the final loss next to the replay plugin's two terms."""

    def __init__(self, replay: AlphaReplayPlugin) -> None:
        super().__init__()
        self.replay, self.rows, self.lrs = replay, [], []

    def before_backward(self, strategy, **kwargs):
        with torch.no_grad():
            criterion = F.cross_entropy(strategy.mb_output, strategy.mb_y).item()
        r = self.replay
        memory_term = r.alpha * (r.loss_memory or 0.0)
        self.rows.append(
            (strategy.clock.train_exp_counter, strategy.loss.item(), criterion, r.loss_current, memory_term)
        )
        self.lrs.append(strategy.optimizer.param_groups[0]["lr"])


def test_works_with_other_plugins_metrics_and_small_experiences(digits):
    replay = AlphaReplayPlugin(100, ConstantAlpha(0.5), seed=0)
    evaluator = EvaluationPlugin(
        accuracy_metrics(epoch=True, stream=True), loss_metrics(minibatch=True), *alpha_replay_metrics(), loggers=[]
    )
    model = SimpleMLP(num_classes=10, input_size=64, hidden_size=64, drop_rate=0.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    probe = LossProbe(replay)
    plugins = [
        replay,
        EWCPlugin(ewc_lambda=10.0),
        LwFPlugin(),
        LRSchedulerPlugin(torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.9)),
        probe,
    ]
    # train_mb_size larger than any experience: one minibatch per epoch
    strategy = make_naive(plugins, epochs=2, mb_size=512, evaluator=evaluator, model=model)
    strategy.optimizer = optimizer
    for exp in digits.train_stream:
        strategy.train(exp)
    metrics = evaluator.get_all_metrics()
    assert len(metrics["AlphaReplay/alpha/train_phase/train_stream"][1]) == 10  # 5 experiences x 2 epochs x 1
    assert len(metrics["AlphaReplay/loss_memory/train_phase/train_stream"][1]) == 8
    for i, (exp_id, loss, criterion, loss_current, memory_term) in enumerate(probe.rows):
        assert loss_current == pytest.approx(criterion, abs=1e-6)  # the current loss alone
        penalties = loss - criterion - memory_term  # EWC's and LwF's terms, added after ours
        if exp_id == 0:
            assert penalties == pytest.approx(0.0, abs=1e-5)  # nothing to regularise towards yet
        else:  # on the second iteration the model has left the one EWC and LwF anchor to
            assert penalties > (1e-4 if i % 2 else -1e-5), (exp_id, penalties)
    assert probe.lrs[:2] == pytest.approx([0.05, 0.045])  # the LR scheduler steps after each epoch
    # the evaluator's stream accuracy is the model's own (no memory outputs in the metrics)
    accuracy = strategy.eval(digits.test_stream)[stream_accuracy_key()]
    assert accuracy == pytest.approx(stream_accuracy(strategy, digits.test_stream), abs=1e-9)


def test_online_stream_counts_origin_experiences_and_workers(digits):
    from avalanche.benchmarks.scenarios.online import split_online_stream

    replay = AlphaReplayPlugin(100, LinearAlpha(1.0), update_every="iteration", seed=0)
    probe = Probe(replay)
    strategy = make_naive([replay, probe], epochs=1)
    torch.manual_seed(0)
    for exp in split_online_stream(list(digits.train_stream)[:3], experience_size=100, seed=0):
        strategy.train(exp, num_workers=2)
    assert sorted({(r["exp"], r["alpha"]) for r in probe.records})[:1] == [(0, 0.0)]
    assert {r["alpha"] for r in probe.records} == {0.0, 1.0, 2.0}  # one value per origin experience
    assert replay.storage_policy.n_seen == sum(len(e.dataset) for e in list(digits.train_stream)[:3])


def test_the_loader_takes_the_dataloader_arguments_of_the_train_call(digits):
    """``num_workers`` and ``pin_memory`` reach the replay loader as they reach Avalanche's own;
    ``pin_memory`` not given: pinned only when training on CUDA, as Avalanche decides."""
    seen = []

    class Look(SupervisedPlugin):
        def before_training_epoch(self, strategy, **kwargs):
            seen.append(dict(replay._loader.kwargs))

    replay = AlphaReplayPlugin(100, seed=0)
    strategy = make_naive([replay, Look()], epochs=1)
    strategy.train(digits.train_stream[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: nothing to pin for on a CPU-only machine
        strategy.train(digits.train_stream[1], num_workers=1, pin_memory=True)
    assert (seen[0]["num_workers"], seen[0]["pin_memory"]) == (0, torch.cuda.is_available())
    assert (seen[1]["num_workers"], seen[1]["pin_memory"]) == (1, True)


def test_task_labels_and_multi_head_model():
    bm = SplitDigits(5, return_task_id=True, seed=0)
    replay = AlphaReplayPlugin(100, 1.0, seed=0)
    probe = Probe(replay)
    strategy = make_naive([replay, probe], epochs=1, model=MTSimpleMLP(input_size=64, hidden_size=64))
    for exp in bm.train_stream:
        strategy.train(exp)
    for rec in probe.records:
        assert set(rec["current"][2].tolist()) == {rec["exp"]}
        if rec["memory"] is not None:
            assert set(rec["memory"][2].tolist()) <= set(range(rec["exp"]))
    assert stream_accuracy(strategy, bm.test_stream) > 0.5  # task-incremental: per-task heads


def test_any_avalanche_buffer_as_storage_policy(digits):
    policy = ClassBalancedBuffer(100)
    replay = AlphaReplayPlugin(100, storage_policy=policy, seed=0)
    strategy = make_naive([replay], epochs=1)
    for exp in digits.train_stream:
        strategy.train(exp)
    assert len(policy.buffer) == 100 and len(policy.buffer_groups) == 10


def test_model_runs_once_per_iteration_on_current_and_memory_together(digits):
    replay = AlphaReplayPlugin(200, 1.0, seed=0)
    strategy = make_naive([replay], epochs=1, mb_size=32)
    sizes: list[int] = []
    handle = strategy.model.register_forward_hook(lambda m, args, out: sizes.append(len(args[0])))
    strategy.train(digits.train_stream[0])
    first = list(sizes)
    sizes.clear()
    strategy.train(digits.train_stream[1])
    handle.remove()
    n0, n1 = len(digits.train_stream[0].dataset), len(digits.train_stream[1].dataset)
    assert sum(first) == n0 and max(first) == 32  # no memory yet: current minibatches alone
    assert n1 == 9 * 32 and len(sizes) == 9 and all(32 < s <= 64 for s in sizes)  # 32 current + memory
    assert sum(sizes) == n1 + 9 * 32  # every memory minibatch full


class HalveMinibatch(SupervisedPlugin):
    """Registered before the replay plugin: keeps the first half of each current minibatch, as a
    view (same storage) or as a rescaled copy."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    def before_training_iteration(self, strategy, **kwargs):
        half = [v[: max(1, len(v) // 2)] for v in strategy.mbatch]
        if self.how == "copy":
            half[0] = half[0] * 0.5
        strategy.mbatch = half


@pytest.mark.parametrize("how", ["view", "copy"])
def test_a_current_minibatch_changed_by_an_earlier_plugin_is_what_gets_trained(digits, how):
    replay = AlphaReplayPlugin(200, 0.7, seed=0)
    probe = Probe(replay)
    strategy = make_naive([HalveMinibatch(how), replay, probe], epochs=1)
    for exp in list(digits.train_stream)[:2]:
        strategy.train(exp)
    with_memory = [r for r in probe.records if r["memory"] is not None]
    assert len(with_memory) > 5
    for rec in with_memory:
        model = SimpleMLP(num_classes=10, input_size=64, hidden_size=128, drop_rate=0.0)
        model.load_state_dict(rec["model"])
        (x, y, _), (mx, my, _) = rec["current"], rec["memory"]
        assert len(x) == 16  # half of 32
        expected = F.cross_entropy(model(x), y) + 0.7 * F.cross_entropy(model(mx), my)
        assert torch.allclose(rec["loss"], expected.detach(), atol=1e-6)


class SetsItsOwnDataloader(SupervisedPlugin):
    """A plugin that, like Avalanche's replay plugins, replaces ``strategy.dataloader``."""

    def before_training_exp(self, strategy, **kwargs):
        strategy.dataloader = torch.utils.data.DataLoader(strategy.adapted_dataset, batch_size=16)


@pytest.mark.parametrize(
    ("order", "error", "match"),
    [
        ("alpha first", ValueError, "AlphaReplayPlugin and ReplayPlugin both set strategy.dataloader"),
        ("replay first", ValueError, "AlphaReplayPlugin and ReplayPlugin both set strategy.dataloader"),
        (
            "custom after",
            RuntimeError,
            r"training on minibatches of a DataLoader \(set by a plugin listed after it: SetsItsOwnDataloader\)",
        ),
    ],
)
def test_a_plugin_replacing_the_dataloader_is_an_error_before_any_change(digits, order, error, match):
    """Replay would silently stop (and every iteration offer the whole experience): refuse."""
    replay = AlphaReplayPlugin(100, update_every="iteration", seed=0)
    other = SetsItsOwnDataloader() if order == "custom after" else ReplayPlugin(50)
    strategy = make_naive([other, replay] if order == "replay first" else [replay, other], epochs=1)
    params = [p.clone() for p in strategy.model.parameters()]
    with pytest.raises(error, match=match):
        strategy.train(digits.train_stream[0])
    assert replay.storage_policy.n_seen == 0
    assert all(torch.equal(a, b) for a, b in zip(params, strategy.model.parameters(), strict=True))


class SwapsTheDataloaderEachEpoch(SupervisedPlugin):
    """Listed after the replay plugin: from experience ``first`` on, replaces ``strategy.dataloader``
    when each epoch starts, after the replay plugin's own epoch hook has run."""

    def __init__(self, first: int) -> None:
        super().__init__()
        self.first = first

    def before_training_epoch(self, strategy, **kwargs):
        if strategy.clock.train_exp_counter >= self.first:
            strategy.dataloader = torch.utils.data.DataLoader(strategy.adapted_dataset, batch_size=16)


@pytest.mark.parametrize("first", [0, 1])
def test_a_dataloader_replaced_in_a_later_epoch_hook_stops_training_before_any_change(digits, first):
    """The check runs when the minibatch arrives, so no later hook slips past it."""
    replay = AlphaReplayPlugin(100, update_every="iteration", seed=0)
    strategy = make_naive([replay, SwapsTheDataloaderEachEpoch(first)], epochs=1)
    stream = list(digits.train_stream)
    for exp in stream[:first]:
        strategy.train(exp)
    params, state = [p.clone() for p in strategy.model.parameters()], replay.storage_policy.state_dict()
    with pytest.raises(RuntimeError, match=r"set by a plugin listed after it: SwapsTheDataloaderEachEpoch"):
        strategy.train(stream[first])
    assert all(torch.equal(a, b) for a, b in zip(params, strategy.model.parameters(), strict=True))
    assert replay.storage_policy.n_seen == state["n_seen"]


class IteratesTheReplayLoader(SupervisedPlugin):
    """Listed after the replay plugin: wraps ``strategy.dataloader`` in a generator that still
    iterates the replay plugin's loader (so replay keeps working)."""

    def before_training_epoch(self, strategy, **kwargs):
        inner = strategy.dataloader
        strategy.dataloader = (mb for mb in inner)


def test_a_later_plugin_wrapping_the_replay_loader_keeps_replaying(digits):
    replay = AlphaReplayPlugin(100, update_every="iteration", seed=0)
    probe = Probe(replay)
    strategy = make_naive([replay, IteratesTheReplayLoader(), probe], epochs=1)
    for exp in list(digits.train_stream)[:2]:
        strategy.train(exp)
    assert sum(r["memory"] is not None for r in probe.records) > 10


@pytest.mark.parametrize(
    ("others", "names"),
    [
        (lambda: [DERPlugin(100, seed=0)], "AlphaReplayPlugin and DERPlugin"),
        (lambda: [GDumbPlugin(100, seed=0)], "AlphaReplayPlugin and GDumbPlugin"),
        (lambda: [AvalancheGDumbPlugin(100)], "AlphaReplayPlugin and GDumbPlugin"),
    ],
)
def test_two_replay_plugins_in_one_strategy_are_refused_naming_both(digits, others, names):
    replay = AlphaReplayPlugin(100, seed=0)
    strategy = make_naive([replay, *others()], epochs=1)
    params = [p.clone() for p in strategy.model.parameters()]
    with pytest.raises(ValueError, match=f"{names} both set strategy.dataloader or the training data") as caught:
        strategy.train(digits.train_stream[0])
    assert "_CurrentMinibatches" not in str(caught.value)
    assert all(torch.equal(a, b) for a, b in zip(params, strategy.model.parameters(), strict=True))
    assert replay.storage_policy.n_seen == 0


def test_a_buffer_resized_by_a_loaded_state_is_refused_before_training(digits):
    """The plugin's mem_size == max_size rule holds after load_state_dict too."""
    other = ReservoirSamplingBuffer(50, seed=0)
    other.update_from_dataset(digits.train_stream[0].dataset)
    replay = AlphaReplayPlugin(100, seed=0)
    replay.storage_policy.load_state_dict(other.state_dict())
    strategy = make_naive([replay], epochs=1)
    with pytest.raises(ValueError, match=r"buffer has max_size 50 but the plugin's mem_size is 100"):
        strategy.train(digits.train_stream[1])
    assert replay.storage_policy.n_seen == other.n_seen


def test_plugins_and_buffers_have_a_readable_repr():
    text = repr(AlphaReplayPlugin(100, LinearAlpha(0.5), update_every="iteration", seed=0))
    assert text.startswith("AlphaReplayPlugin(mem_size=100, alpha=LinearAlpha(")
    assert "update_every='iteration'" in text and "storage_policy=ReservoirSamplingBuffer(max_size=100" in text
    assert repr(GDumbPlugin(50, seed=0)).startswith("GDumbPlugin(mem_size=50")
    buffer = ReservoirSamplingBuffer(10, seed=0)
    assert len(buffer) == 0 and bool(buffer)  # len: the samples stored; an empty buffer is still truthy


class SavesACheckpoint(SupervisedPlugin):
    """Saves an Avalanche checkpoint of the strategy after iteration ``at`` of the second experience."""

    def __init__(self, path, at: int) -> None:
        super().__init__()
        self.path, self.at = path, at

    def after_training_iteration(self, strategy, **kwargs):
        if strategy.clock.train_exp_counter == 1 and strategy.clock.train_exp_iterations == self.at:
            save_checkpoint(strategy, str(self.path))


@pytest.mark.parametrize(
    "make", [lambda: AlphaReplayPlugin(100, update_every="iteration", seed=0), lambda: GDumbPlugin(100, seed=0)]
)
def test_a_checkpoint_in_the_middle_of_an_experience_is_refused(tmp_path, digits, make):
    """Resuming it would train the experience again from its start, offering its samples twice."""
    plugin = make()
    strategy = make_naive([plugin, SavesACheckpoint(tmp_path / "ckpt", 3)], epochs=1)
    strategy.train(digits.train_stream[0])
    save_checkpoint(strategy, str(tmp_path / "between"))  # between experiences: fine
    with pytest.raises(RuntimeError, match=f"{type(plugin).__name__} cannot be saved in the middle of an experience"):
        strategy.train(digits.train_stream[1])
