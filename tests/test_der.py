"""DERPlugin and DER: logits stored as samples enter, the loss terms, gradients, growing classifiers."""

from __future__ import annotations

import copy
import math
import pickle

import pytest
import torch
import torch.nn.functional as F
from avalanche.models import IncrementalClassifier, MTSimpleMLP
from avalanche.training.plugins import EvaluationPlugin, SupervisedPlugin
from avalanche.training.storage_policy import ReservoirSamplingBuffer as AvalancheReservoir
from helpers import make_naive

from avalanche_replay_ext import (
    DER,
    BalancedRetrieval,
    DERPlugin,
    LinearAlpha,
    MIRRetrieval,
    ReservoirSamplingBuffer,
    SplitDigits,
    der_metrics,
)


def key(x: torch.Tensor) -> bytes:
    return x.flatten().numpy().tobytes()


class ForwardRecord(SupervisedPlugin):
    """After the DER plugin: each current sample's logits from its training forward pass, by pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.logits: dict[bytes, list[torch.Tensor]] = {}

    def before_backward(self, strategy, **kwargs):
        for x, out in zip(strategy.mb_x, strategy.mb_output.detach(), strict=True):
            self.logits.setdefault(key(x), []).append(out.clone())


def test_stored_logits_are_the_training_forward_outputs(digits):
    """Memory larger than the stream: every sample is stored, with the output the model gave it
    in the step that trained on it (before that step's update)."""
    der = DERPlugin(2000, seed=0)
    record = ForwardRecord()
    strategy = make_naive([der, record], epochs=2, mb_size=10)
    for exp in list(digits.train_stream)[:2]:
        strategy.train(exp)
    buffer = der.storage_policy
    stored = buffer.stored_extras("logits")
    samples = [buffer.buffer[i][0] for i in range(len(buffer.buffer))]
    assert len(samples) == sum(len(e.dataset) for e in list(digits.train_stream)[:2])
    for x, z in zip(samples, stored, strict=True):
        first_epoch = record.logits[key(x)][0]  # offered in the first epoch only
        assert torch.equal(z, first_epoch)


def test_the_mse_term_is_zero_for_an_unchanged_model(digits):
    """lr 0: the model never changes, so the stored logits are its outputs now (MSE exactly 0),
    and der_metrics logs every term at every iteration with a memory."""
    evaluator = EvaluationPlugin(*der_metrics(), loggers=[])
    der = DERPlugin(100, alpha=0.3, beta=0.5, seed=0)
    strategy = make_naive([der], epochs=1, mb_size=10, evaluator=evaluator)
    strategy.optimizer.param_groups[0]["lr"] = 0.0
    for exp in list(digits.train_stream)[:2]:
        strategy.train(exp)
    metrics = strategy.evaluator.get_all_metrics()
    mse = metrics["DER/loss_mse/train_phase/train_stream"][1]
    ce = metrics["DER/loss_ce/train_phase/train_stream"][1]
    assert len(mse) == len(ce) > 50 and set(mse) == {0.0} and min(ce) > 0
    assert set(metrics["DER/beta/train_phase/train_stream"][1]) == {0.5}


class GradientCheck(SupervisedPlugin):
    """After the DER plugin: the gradient of every parameter equals that of the formula computed
    by hand on a copy of the model, current minibatch and the two memory minibatches apart."""

    def __init__(self, der: DERPlugin) -> None:
        super().__init__()
        self.der, self.checked = der, 0

    def after_backward(self, strategy, **kwargs):
        memory, logits = self.der.memory_minibatch, self.der.memory_logits
        if memory is None:
            return
        model = copy.deepcopy(strategy.model)
        k = (len(memory[1]) + 1) // 2
        loss = F.cross_entropy(model(strategy.mb_x), strategy.mb_y)
        loss = loss + self.der.alpha * F.mse_loss(model(memory[0][:k]), logits[:k])
        loss = loss + self.der.beta * F.cross_entropy(model(memory[0][k:]), memory[1][k:])
        grads = torch.autograd.grad(loss, list(model.parameters()))
        for g, p in zip(grads, strategy.model.parameters(), strict=True):
            torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)
        self.checked += 1


def test_gradients_equal_the_formula_by_hand(digits):
    der = DERPlugin(100, alpha=LinearAlpha(0.2), beta=0.7, seed=0)
    check = GradientCheck(der)
    strategy = make_naive([der, check], epochs=1, mb_size=10)
    for exp in list(digits.train_stream)[:3]:
        strategy.train(exp)
    assert check.checked > 80 and der.alpha == pytest.approx(0.4)  # t = 2 on the third experience


class MemorySizes(SupervisedPlugin):
    def __init__(self, der: DERPlugin) -> None:
        super().__init__()
        self.der, self.sizes = der, set()

    def before_backward(self, strategy, **kwargs):
        if self.der.memory_minibatch is not None:
            self.sizes.add((len(self.der.memory_minibatch[1]), self.der.loss_ce is not None))


@pytest.mark.parametrize(
    ("beta", "share", "expected"), [(0.5, False, {(20, True)}), (0.0, False, {(10, False)}), (0.5, True, {(10, True)})]
)
def test_der_draws_one_minibatch_derpp_two_unless_shared(digits, beta, share, expected):
    der = DERPlugin(100, beta=beta, batch_size_mem=10, seed=0, share_minibatch=share)
    sizes = MemorySizes(der)
    strategy = make_naive([der, sizes], epochs=1, mb_size=10)
    strategy.train(digits.train_stream[0])
    sizes.sizes.clear()  # the second experience replays from a memory of 100
    strategy.train(digits.train_stream[1])
    assert sizes.sizes == expected


def test_a_growing_classifier_is_compared_on_the_units_stored():
    """IncrementalClassifier grows with the classes seen: logits stored in the first experience
    are shorter, NaN beyond their units, and training goes on with the MSE on the stored units."""
    bm = SplitDigits(5, seed=0, fixed_class_order=list(range(10)))
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), IncrementalClassifier(32, 2)
    )
    der = DERPlugin(300, seed=0)
    strategy = make_naive([der], epochs=1, mb_size=10, model=model)
    for exp in list(bm.train_stream)[:3]:
        strategy.train(exp)
    buffer = der.storage_policy
    stored, classes = buffer.stored_extras("logits"), buffer.stored_groups("class")
    assert stored.shape[1] == 6
    widths = (~torch.isnan(stored)).sum(1)
    assert widths[classes < 2].eq(2).all() and widths[(classes >= 2) & (classes < 4)].eq(4).all()
    assert widths[classes >= 4].eq(6).all() and der.loss_mse is not None and der.loss_mse == der.loss_mse


def test_the_strategy_and_its_bad_arguments():
    with pytest.raises(ValueError, match="beta must be a finite number >= 0, got -1"):
        DERPlugin(10, beta=-1)
    with pytest.raises(TypeError, match="beta must be a float >= 0, ConstantAlpha, LinearAlpha or a callable"):
        DERPlugin(10, beta="0.5")
    with pytest.raises(ValueError, match=r"DERPlugin takes RandomRetrieval or BalancedRetrieval, not MIRRetrieval"):
        DERPlugin(10, retrieval=MIRRetrieval())
    with pytest.raises(ValueError, match='update_every="iteration" needs a storage_policy with per-minibatch'):
        DERPlugin(10, storage_policy=AvalancheReservoir(10))
    with pytest.raises(TypeError, match="share_minibatch must be True or False"):
        DERPlugin(10, share_minibatch=1)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    strategy = DER(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
        criterion=torch.nn.CrossEntropyLoss(),
        mem_size=50,
        alpha=0.2,
        beta=0.0,
        train_mb_size=10,
        evaluator=EvaluationPlugin(loggers=[]),
        der_kwargs={"storage_policy": ReservoirSamplingBuffer(50, seed=1), "retrieval": BalancedRetrieval("class")},
    )
    bm = SplitDigits(5, seed=0)
    strategy.train(bm.train_stream[0])
    assert strategy.der_plugin in strategy.plugins and len(strategy.der_plugin.storage_policy.buffer) == 50
    restored = pickle.loads(pickle.dumps(strategy))
    assert restored.der_plugin.storage_policy.extra_names == ("logits",)


def test_task_labels_reach_a_multi_head_model():
    """MTSimpleMLP needs each sample's task label (current and memory samples alike): DER++ trains
    three tasks, stores samples of each, and its terms stay finite."""
    bm = SplitDigits(5, seed=0, return_task_id=True)
    torch.manual_seed(0)
    der = DERPlugin(100, seed=0)
    strategy = make_naive([der], epochs=1, mb_size=10, model=MTSimpleMLP(input_size=64, hidden_size=64))
    for exp in list(bm.train_stream)[:3]:
        strategy.train(exp)
    assert set(der.storage_policy.stored_groups("task").tolist()) == {0, 1, 2}
    assert math.isfinite(der.loss_mse) and math.isfinite(der.loss_ce)


def test_a_buffer_holding_samples_without_logits_is_refused(digits):
    buffer = ReservoirSamplingBuffer(50, seed=0)
    buffer.post_adapt(None, digits.train_stream[0])
    strategy = make_naive([DERPlugin(50, storage_policy=buffer)], epochs=1)
    with pytest.raises(ValueError, match=r"DERPlugin needs a storage_policy whose samples carry their logits"):
        strategy.train(digits.train_stream[1])
    assert len(buffer.buffer) == 50 and buffer.n_seen == len(digits.train_stream[0].dataset)
