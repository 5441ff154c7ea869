"""Offline benchmarks: SplitDigits and MNIST from local IDX files."""

from __future__ import annotations

import gc
import math
import pickle
import shutil
import weakref
import zlib
from collections import Counter
from pathlib import Path

import dill
import pytest
import torch

from avalanche_replay_ext.benchmarks import SplitDigits, SplitMNISTIdx, load_mnist_idx
from avalanche_replay_ext.benchmarks import digits as digits_module


def check_class_incremental(bm, n_train: int, n_test: int, n_exp: int = 5) -> None:
    train, test = list(bm.train_stream), list(bm.test_stream)
    assert len(train) == len(test) == n_exp
    assert sum(len(e.dataset) for e in train) == n_train
    assert sum(len(e.dataset) for e in test) == n_test
    classes = [set(e.classes_in_this_experience) for e in train]
    assert all(len(c) == 10 // n_exp for c in classes)
    assert set().union(*classes) == set(range(10))
    for exp_tr, exp_te, cls in zip(train, test, classes, strict=True):
        assert set(exp_tr.dataset.targets) == cls == set(exp_te.dataset.targets)


def test_split_digits_is_a_class_incremental_benchmark():
    bm = SplitDigits(5, seed=0)
    check_class_incremental(bm, 1437, 360)
    x, y, t = bm.train_stream[0].dataset[0]
    assert x.shape == (1, 8, 8) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and t == 0
    assert [e.task_label for e in bm.train_stream] == [0] * 5


def test_split_digits_task_ids_order_and_seed():
    bm = SplitDigits(5, return_task_id=True, seed=0)
    assert [e.task_label for e in bm.train_stream] == [0, 1, 2, 3, 4]
    assert set(bm.train_stream[3].dataset.targets_task_labels) == {3}
    order = [e.classes_in_this_experience for e in bm.train_stream]
    assert order == [e.classes_in_this_experience for e in SplitDigits(5, seed=0).train_stream]
    assert order != [e.classes_in_this_experience for e in SplitDigits(5, seed=1).train_stream]
    fixed = SplitDigits(2, fixed_class_order=list(range(10)))
    assert [sorted(e.classes_in_this_experience) for e in fixed.train_stream] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_mnist_idx_split_is_8000_2000_stratified(mnist_dir):
    images, labels = load_mnist_idx(mnist_dir)
    assert images.shape == (10_000, 1, 28, 28) and labels.shape == (10_000,)
    assert abs(float(images.mean())) < 0.1 and abs(float(images.std()) - 1) < 0.1  # normalised
    bm = SplitMNISTIdx(5, root=mnist_dir, seed=0)
    check_class_incremental(bm, 8000, 2000)
    full = Counter(labels.tolist())
    test = Counter(int(y) for e in bm.test_stream for y in e.dataset.targets)
    for c in range(10):  # stratified: each class's test share is 20% of its images, +-1
        assert abs(test[c] - full[c] * 0.2) <= 1, (c, test[c], full[c])
    again = SplitMNISTIdx(5, root=mnist_dir, seed=0)
    assert torch.equal(bm.test_stream[0].dataset[5][0], again.test_stream[0].dataset[5][0])


def test_mnist_idx_reads_the_environment_variable(mnist_dir, monkeypatch):
    monkeypatch.setenv("AVALANCHE_REPLAY_MNIST_DIR", mnist_dir)
    assert len(load_mnist_idx()[1]) == 10_000


def leaves(node) -> list:
    """The datasets at the bottom of an Avalanche dataset's flat-data tree."""
    children = getattr(getattr(node, "_flat_data", node), "_datasets", None)
    return [node] if children is None else [leaf for child in children for leaf in leaves(child)]


def test_split_digits_datasets_pickle_as_their_recipe_and_share_the_live_leaf():
    """A pickled experience holds no images; unpickled (plain pickle or dill) it reads the live
    benchmark's leaf, the one leaf of its recipe in this process, so a resumed buffer and a
    re-created benchmark hold the images once and checkpoints do not grow at each resume."""
    bm = SplitDigits(5, seed=0)
    data = bm.train_stream[2].dataset
    (leaf,) = set(map(id, leaves(data)))
    again = SplitDigits(5, seed=3)  # re-created (another class order): the same leaves
    assert {id(x) for e in again.train_stream for x in leaves(e.dataset)} == {leaf}
    (test_leaf,) = {id(x) for e in bm.test_stream for x in leaves(e.dataset)}
    assert test_leaf != leaf
    image_bytes = 1437 * 64 * 4
    for module in (pickle, dill):
        blob = module.dumps(data)
        assert len(blob) < image_bytes / 20, len(blob)  # index lists and labels, no image tensors
        restored = module.loads(blob)
        assert [id(x) for x in leaves(restored)] == [leaf]
        assert all(torch.equal(restored[i][0], data[i][0]) and restored[i][1:] == data[i][1:] for i in range(len(data)))
    assert {id(x) for x in leaves(SplitDigits(5, split_seed=1).train_stream[0].dataset)} != {leaf}


def test_a_split_without_a_reproducible_seed_pickles_its_images():
    data = SplitDigits(5, split_seed=None).train_stream[0].dataset
    assert len(pickle.dumps(data)) > 1437 * 64 * 4  # a recipe would not rebuild the same split
    assert leaves(data)[0] is not leaves(SplitDigits(5, split_seed=None).train_stream[0].dataset)[0]


def test_unpickling_a_part_whose_recipe_now_builds_other_data_is_an_error():
    part = leaves(SplitDigits(5, seed=0).train_stream[0].dataset)[0]
    factory, (recipe, name, digest) = part.__reduce__()
    assert factory(recipe, name, digest) is part
    with pytest.raises(ValueError, match="other data than when it was pickled"):
        factory(recipe, name, digest.replace(digest[-8:], "00000000"))


def test_mnist_idx_parts_name_their_folder_absolutely_and_pickle_small(mnist_dir, monkeypatch):
    monkeypatch.setenv("AVALANCHE_REPLAY_MNIST_DIR", mnist_dir)
    data = SplitMNISTIdx(5, seed=0).train_stream[0].dataset
    (part,) = leaves(data)
    assert part.recipe.args == (str(Path(mnist_dir).resolve()),)  # the same folder from any working directory
    assert len(pickle.dumps(data)) < 100_000 < 8000 * 784 * 4
    assert leaves(SplitMNISTIdx(5, root=Path(mnist_dir).resolve(), seed=1).train_stream[0].dataset) == [part]


def test_unpickling_a_part_whose_files_are_gone_is_a_clear_error(mnist_dir, tmp_path):
    root = tmp_path / "mnist"
    root.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(Path(mnist_dir) / name, root / name)
    blob = pickle.dumps(SplitMNISTIdx(5, root=root).train_stream[0].dataset)
    gc.collect()  # no benchmark holds the part any more: unpickling rebuilds it from the files
    shutil.rmtree(root)
    with pytest.raises(FileNotFoundError, match="names the files it was loaded from"):
        pickle.loads(blob)


# Long-tailed training streams (imbalance_ratio)


def train_counts(bm) -> Counter:
    return Counter(int(y) for e in bm.train_stream for y in e.dataset.targets)


def long_tail_counts(full: Counter, order: list[int], ratio: float) -> list[int]:
    """What the c-th class of ``order`` keeps of its ``full[k]`` training images: the formula."""
    return [max(1, round(full[k] * ratio ** (c / (len(order) - 1)))) for c, k in enumerate(order)]


def samples(datasets) -> list[tuple[bytes, int]]:
    """Every sample of the datasets, image bytes and label, in order."""
    return [(x.numpy().tobytes(), int(y)) for data in datasets for x, y, *_ in data]


def check_long_tail(balanced, bm, ratio: float) -> None:
    """``bm`` is ``balanced`` with a long-tailed training stream: the same class order and
    experiences, per-class counts from the formula in that order, the same test stream."""
    order = balanced.classes_order_original_ids
    assert bm.classes_order_original_ids == order and len(set(order)) == len(order)
    per_exp = len(order) // len(bm.train_stream)
    for i, (exp, exp_balanced) in enumerate(zip(bm.train_stream, balanced.train_stream, strict=True)):
        assert exp.classes_in_this_experience == exp_balanced.classes_in_this_experience
        assert set(exp.classes_in_this_experience) == set(order[i * per_exp : (i + 1) * per_exp])
    counts = train_counts(bm)
    assert [counts[k] for k in order] == long_tail_counts(train_counts(balanced), order, ratio)
    assert counts[order[0]] == train_counts(balanced)[order[0]]  # the first class is complete
    for exp, exp_balanced in zip(bm.test_stream, balanced.test_stream, strict=True):
        assert leaves(exp.dataset) == leaves(exp_balanced.dataset)  # the very same test part
        assert list(exp.dataset.targets) == list(exp_balanced.dataset.targets)


@pytest.mark.parametrize("ratio", [0.1, 0.01])
@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": 0},
        {"seed": 3, "return_task_id": True},
        {"n_experiences": 2, "fixed_class_order": [9, 0, 8, 1, 7, 2, 6, 3, 5, 4]},
    ],
)
def test_split_digits_long_tail_counts_follow_the_formula_in_the_stream_class_order(kwargs, ratio):
    balanced = SplitDigits(**kwargs)
    check_long_tail(balanced, SplitDigits(**kwargs, imbalance_ratio=ratio), ratio)


def test_split_digits_long_tail_with_the_class_order_from_the_global_rng():
    """``seed=None`` draws the class order from torch's global RNG, as Avalanche does: the long
    tail follows that order, and leaves the global RNG where the balanced benchmark leaves it."""
    torch.manual_seed(7)
    balanced, after_balanced = SplitDigits(5, seed=None), torch.rand(3)
    torch.manual_seed(7)
    bm, after = SplitDigits(5, seed=None, imbalance_ratio=0.1), torch.rand(3)
    check_long_tail(balanced, bm, 0.1)
    assert torch.equal(after, after_balanced)


@pytest.mark.parametrize("ratio", [0.1, 0.01])
def test_mnist_idx_long_tail_counts_follow_the_formula_in_the_stream_class_order(mnist_dir, ratio):
    balanced = SplitMNISTIdx(5, root=mnist_dir, seed=1)
    bm = SplitMNISTIdx(5, root=mnist_dir, seed=1, imbalance_ratio=ratio)
    check_long_tail(balanced, bm, ratio)
    assert sum(train_counts(bm).values()) < 8000 * (0.5 if ratio == 0.1 else 0.3)
    data = bm.train_stream[4].dataset  # checkpoint-sized: names the folder, holds no images
    assert len(pickle.dumps(data)) < 100_000 and samples([pickle.loads(pickle.dumps(data))]) == samples([data])


def fingerprint(bm) -> str:
    """CRC of each experience's indices into its leaves, targets, leaf sizes and classes."""
    crc = 0
    for exp in [*bm.train_stream, *bm.test_stream]:
        flat = exp.dataset._flat_data
        seen = (list(flat._get_lazy_indices()), list(exp.dataset.targets), [len(d) for d in flat._datasets])
        crc = zlib.crc32(repr((*seen, sorted(exp.classes_in_this_experience))).encode(), crc)
    return f"{crc:08x}"


def test_no_imbalance_ratio_is_the_balanced_stream_bit_for_bit():
    """None (and 1, which keeps every image) give the benchmark as it was before the option:
    the same leaves and indices (the fingerprint was taken before imbalance_ratio existed)."""
    bm = SplitDigits(5, seed=0)
    assert fingerprint(bm) == "8f64a7d7"
    for ratio in (None, 1, 1.0):
        again = SplitDigits(5, seed=0, imbalance_ratio=ratio)
        assert fingerprint(again) == "8f64a7d7"
        for stream in ("train_stream", "test_stream"):
            exps = zip(getattr(bm, stream), getattr(again, stream), strict=True)
            assert all(leaves(a.dataset) == leaves(b.dataset) for a, b in exps)


def test_long_tail_is_seeded_not_drawn_from_the_global_rng():
    """The same arguments keep the same images, whatever the global RNG state, also when the live
    leaf is gone and the long-tailed part is chosen again."""
    kwargs = {"seed": None, "fixed_class_order": list(range(10)), "imbalance_ratio": 0.1}
    torch.manual_seed(1)
    bm = SplitDigits(5, **kwargs)
    first, leaf = samples(e.dataset for e in bm.train_stream), weakref.ref(leaves(bm.train_stream[0].dataset)[0])
    del bm
    gc.collect()
    assert leaf() is None  # rebuilt below, not reused
    torch.manual_seed(2)
    assert samples(e.dataset for e in SplitDigits(5, **kwargs).train_stream) == first


def kept(bm) -> dict[int, set[bytes]]:
    """Per class, the images its training stream keeps."""
    out: dict[int, set[bytes]] = {}
    for image, label in samples(e.dataset for e in bm.train_stream):
        out.setdefault(label, set()).add(image)
    return out


def test_different_seeds_keep_different_images_and_a_smaller_ratio_keeps_fewer_of_them():
    order = [2, 7, 0, 9, 4, 1, 8, 3, 6, 5]
    seeds = [kept(SplitDigits(5, seed=s, fixed_class_order=order, imbalance_ratio=0.1)) for s in (0, 1)]
    split_seeds = [
        kept(SplitDigits(5, seed=None, split_seed=s, fixed_class_order=order, imbalance_ratio=0.1)) for s in (0, 1)
    ]
    for a, b in (seeds, split_seeds):
        assert all(len(a[k]) == len(b[k]) for k in order)
        assert all(a[k] != b[k] for k in order[1:])  # same order (same counts), other images
    assert seeds[0][order[0]] == seeds[1][order[0]]  # the first class is complete in both
    smaller = kept(SplitDigits(5, seed=0, fixed_class_order=order, imbalance_ratio=0.01))
    assert all(smaller[k] <= seeds[0][k] for k in order)  # each class's images are drawn in one order
    assert all(len(smaller[k]) < len(seeds[0][k]) for k in order[2:])


BAD_RATIOS = [0, 0.0, -0.5, 1.0000001, 2, math.nan, math.inf, -math.inf, True, False, "0.5", [0.5], 0.5j]


@pytest.mark.parametrize("ratio", BAD_RATIOS, ids=repr)
def test_a_bad_imbalance_ratio_is_an_error_before_any_work(ratio, monkeypatch, tmp_path):
    def no_loading():
        raise AssertionError("loaded the images before checking imbalance_ratio")

    monkeypatch.setattr(digits_module, "load_digit_images", no_loading)
    message = r"imbalance_ratio must be a finite number > 0 and <= 1, got "
    with pytest.raises(ValueError, match=message):
        SplitDigits(5, imbalance_ratio=ratio)
    with pytest.raises(ValueError, match=message):  # before looking for the folder
        SplitMNISTIdx(5, root=tmp_path / "absent", imbalance_ratio=ratio)


def test_long_tailed_parts_pickle_as_their_recipe_and_round_trip():
    """A long-tailed training part pickles as its recipe (ratio, class order, seed) plus digest:
    a checkpoint stays small, and unpickled, even where the live leaf is gone, it is the same
    images. The test part is the balanced one."""
    bm = SplitDigits(5, seed=0, imbalance_ratio=0.1)
    datasets = [e.dataset for e in bm.train_stream]
    (part,) = {id(x): x for data in datasets for x in leaves(data)}.values()
    assert part.recipe.long_tail.class_order == tuple(bm.classes_order_original_ids)
    assert part.recipe.long_tail.ratio == 0.1 and part.recipe.long_tail.seed == 0
    assert leaves(bm.test_stream[0].dataset) == leaves(SplitDigits(5, seed=0).test_stream[0].dataset)
    before = samples(datasets)
    for module in (pickle, dill):
        blob = module.dumps(datasets)
        assert len(blob) < len(part) * 64 * 4 / 10, len(blob)  # no image tensors
        restored = module.loads(blob)
        assert [leaves(data) for data in restored] == [[part]] * 5 and samples(restored) == before
    alive, blob = weakref.ref(part), pickle.dumps(datasets)
    del bm, datasets, part, restored
    gc.collect()
    assert alive() is None
    torch.manual_seed(5)
    assert samples(pickle.loads(blob)) == before


def test_a_long_tail_over_an_unreproducible_split_pickles_its_images():
    data = SplitDigits(5, split_seed=None, imbalance_ratio=0.1).train_stream[4].dataset
    assert leaves(data)[0].recipe is None
    assert len(pickle.dumps(data)) > len(data) * 64 * 4
    assert samples([pickle.loads(pickle.dumps(data))]) == samples([data])
