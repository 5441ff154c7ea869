"""One process of data-parallel runs (launch with torchrun): Naive + AlphaReplayPlugin
(MODE "experience" or "iteration": its update_every), Naive + DERPlugin (MODE "der", DER++) or
Naive + GDumbPlugin (MODE "gdumb") on
SplitDigits over torch.distributed (gloo, CPU), as Avalanche's distributed example does it.

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/_dist_run.py OUT_DIR MODE...

The MODEs run one after the other in the same processes, each from the same random state (as
``init_distributed(random_seed=...)`` leaves it), with a model, plugin and strategy of its own.
A MODE that is a path to a ``.py`` file is a user's script (the README's ``train.py``): such
scripts run first, as ``__main__``, and initialise torch.distributed themselves.
A MODE may end in "-rank-seeds", "-rank-mem-size" or "-rank-prefill": the processes then differ in
the plugin's seed, its mem_size or what their buffer holds before training (mistakes the plugins
must stop with an error in every process); the RuntimeError is printed and the next MODE runs, and
the processes exit with status 1 at the end.

For each MODE each rank writes OUT_DIR/MODE/rank<r>.json: after every experience, the buffer
contents in order and a digest of the model parameters; then the final accuracy and the number of
iterations trained.
"""

from __future__ import annotations

import json
import runpy
import sys
import traceback
import warnings
from pathlib import Path

import torch
from avalanche.distributed import DistributedHelper
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.models import SimpleMLP
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from helpers import digest, listing  # this folder is on sys.path: the script runs from it

from avalanche_replay_ext import AlphaReplayPlugin, DERPlugin, GDumbPlugin, ReservoirSamplingBuffer, SplitDigits
from avalanche_replay_ext.metrics import stream_accuracy_key

SEED = 1234


def run(out: Path, mode: str) -> None:
    DistributedHelper.set_random_seeds(SEED)  # every mode starts where init_distributed left the RNGs
    rank = DistributedHelper.rank
    model = DistributedHelper.wrap_model(SimpleMLP(num_classes=10, input_size=64, hidden_size=64, drop_rate=0.0))
    # seed None: drawn from the global RNG, which set_random_seeds seeded alike in every process;
    # MODE "<mode>-rank-<fault>" makes the processes differ, which the plugins must refuse:
    # "seeds" passes seed=rank, "mem-size" mem_size=100+rank, "prefill" a buffer prefilled per rank
    mode, _, fault = mode.partition("-rank-")
    seed, size = (rank if fault == "seeds" else None), 100 + (rank if fault == "mem-size" else 0)
    if mode == "gdumb":
        plugin = GDumbPlugin(size, seed=seed)
    elif mode == "der":
        plugin = DERPlugin(size, seed=seed)
    else:
        storage = ReservoirSamplingBuffer(size, seed=0)
        if fault == "prefill":  # each process offered another experience beforehand
            storage.update_from_dataset(SplitDigits(5, seed=0).train_stream[rank].dataset)
        plugin = AlphaReplayPlugin(size, 1.0, storage_policy=storage, update_every=mode, seed=seed)
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=16,  # per process: 32 per step over the 2 processes
        train_epochs=2,
        eval_mb_size=256,
        plugins=[plugin],
        evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]),
    )
    bm = SplitDigits(5, seed=0)
    result = {"rank": rank, "world_size": DistributedHelper.world_size, "experiences": []}
    for exp in bm.train_stream:
        strategy.train(exp)
        data = plugin.memory if mode == "gdumb" else plugin.storage_policy.buffer
        n_seen = (
            sum(b.n_seen for b in plugin.storage_policies.values()) if mode == "gdumb" else plugin.storage_policy.n_seen
        )
        params = torch.cat([p.flatten() for p in strategy.model.parameters()])
        result["experiences"].append(
            {
                "buffer": listing(data),
                "n_seen": n_seen,
                "model": digest(params),
                "iterations": strategy.clock.train_iterations,
                "logits": digest(plugin.storage_policy.stored_extras("logits")) if mode == "der" else None,
            }
        )
    result["accuracy"] = strategy.eval(bm.test_stream)[stream_accuracy_key()]
    (out / f"rank{rank}.json").write_text(json.dumps(result))


def main(out: Path, modes: list[str]) -> int:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    for script in [m for m in modes if m.endswith(".py")]:  # user scripts first: they init themselves
        runpy.run_path(script, run_name="__main__")
    if not DistributedHelper.is_distributed:
        DistributedHelper.init_distributed(random_seed=SEED, use_cuda=False)
    failed = False
    for mode in [m for m in modes if not m.endswith(".py")]:
        (out / mode).mkdir(exist_ok=True)
        try:
            run(out / mode, mode)
        except RuntimeError as error:
            if "-rank-" not in mode:  # any other failure ends the run (torchrun stops all)
                raise
            traceback.print_exc()  # raised in every process after one collective: all go on alike
            print(f"{mode} refused: {error}", file=sys.stderr)
            failed = True
    torch.distributed.destroy_process_group()
    return int(failed)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:]))
