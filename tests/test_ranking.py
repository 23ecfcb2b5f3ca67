import numpy as np
import pytest

from fgood_bench.paper import BENCHMARKS
from fgood_bench.ranking.scores import class_scores, prediction_entropy


def test_presets_match_the_paper_table_3():
    table = {name: (b.dataset, b.num_classes, b.num_id, b.num_classes - b.num_id, b.epochs) for name, b in BENCHMARKS.items()}
    assert table == {
        "bird": ("cub", 200, 100, 100, 60), "dog": ("thudogs", 130, 100, 30, 30), "flower": ("flowers102", 102, 90, 12, 30),
        "car": ("stanford_cars", 196, 100, 96, 60), "aircraft": ("fgvc_aircraft", 100, 90, 10, 60),
    }


def test_entropy_in_nats_of_the_softmax():
    logits = np.array([[0.0, 0.0, 0.0, 0.0], [1000.0, 0.0, 0.0, 0.0], [np.log(3.0), 0.0, -np.inf, -np.inf]])
    assert prediction_entropy(logits) == pytest.approx([np.log(4), 0.0, -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))], abs=1e-12)


def _logits_for(pred: int, confidence: float, num_classes: int) -> np.ndarray:
    """A logit row whose softmax puts ``confidence`` on ``pred`` and spreads the rest evenly."""
    p = np.full(num_classes, (1 - confidence) / (num_classes - 1))
    p[pred] = confidence
    return np.log(p)


def test_known_accuracy_and_entropy_give_the_exact_ranking():
    num_classes = 4
    # class: (predictions on its 4 test images, confidence) -> known accuracy
    plan = {0: ([0, 0, 1, 1], 0.9), 1: ([1, 1, 1, 1], 0.6), 2: ([2, 2, 2, 2], 0.99), 3: ([0, 3, 3, 3], 0.99)}
    logits, labels = [], []
    for label, (preds, confidence) in plan.items():
        for pred in preds:
            logits.append(_logits_for(pred, confidence, num_classes))
            labels.append(label)
    scores = class_scores(np.array(logits), np.array(labels), num_classes)
    entropy = {c: prediction_entropy(_logits_for(0, conf, num_classes)[None])[0] for c, (_, conf) in plan.items()}
    assert scores.accuracy.tolist() == [0.5, 1.0, 1.0, 0.75]
    assert scores.mean_entropy == pytest.approx([entropy[c] for c in range(4)], abs=1e-6)
    assert scores.score == pytest.approx([0.5 - entropy[0], 1 - entropy[1], 1 - entropy[2], 0.75 - entropy[3]], abs=1e-6)
    # class 0: 0.5 - H(0.9 conf) = 0.065 beats class 1: 1.0 - H(0.6 conf) = -0.112
    assert scores.order.tolist() == [2, 3, 0, 1]
    assert scores.rank.tolist() == [3, 4, 1, 2]
    assert scores.top(2) == [2, 3]
    assert scores.num_test.tolist() == [4, 4, 4, 4]


def test_ties_are_broken_by_class_index():
    logits = np.tile([0.0, 0.0, 0.0, 5.0], (8, 1))  # every image predicted as class 3
    labels = np.array([2, 3, 1, 0, 2, 1, 0, 3])  # classes 0, 1, 2: accuracy 0, same entropy: tied
    scores = class_scores(logits, labels, 4)
    assert scores.score[0] == scores.score[1] == scores.score[2]
    assert scores.order.tolist() == [3, 0, 1, 2]


def test_scores_do_not_depend_on_row_order():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(300, 7)), rng.integers(0, 7, 300)
    perm = rng.permutation(300)
    a, b = class_scores(logits, labels, 7), class_scores(logits[perm], labels[perm], 7)
    assert np.allclose(a.score, b.score, rtol=0, atol=1e-12) and a.order.tolist() == b.order.tolist()


def test_last_bit_differences_in_logits_do_not_change_the_scores():
    # sharded inference, other thread counts or batch sizes change float32 logits in their last bits
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(400, 8)).astype(np.float32)
    labels = rng.integers(0, 8, 400)
    noisy = logits * (1 + rng.choice([-1, 1], logits.shape) * np.float32(1e-7))
    assert not np.array_equal(noisy, logits)
    a, b = class_scores(logits, labels, 8), class_scores(noisy, labels, 8)
    assert a.mean_entropy.tolist() == b.mean_entropy.tolist() and a.order.tolist() == b.order.tolist()


def test_more_torchrun_processes_than_gpus_is_one_line(monkeypatch):
    # seen on a one-GPU H200: torchrun --nproc-per-node 2 ended in 'CUDA error: invalid device ordinal'
    import torch

    from fgood_bench.errors import FgoodError
    from fgood_bench.tools.runtime import setup_runtime

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(FgoodError, match="use --nproc-per-node 1"):
        setup_runtime("auto")


def test_the_entropy_base_can_change_the_ranking_at_the_border():
    """Appendix A gives no base for the entropy in S(c) = accuracy - mean entropy. fgood-bench uses nats;
    in bits the entropy weighs 1/ln 2 = 1.44 times more against accuracy, so two classes can swap
    (docs/build-splits.md): a class that is always right but less sure (0.2 nats) ranks above one that
    is right 4 times in 5 and sure (0.03 nats) in nats, below it in bits."""
    from scipy.optimize import brentq

    def logits_with_entropy(target: float) -> np.ndarray:  # two-class logits [0, z] whose softmax has this entropy
        z = brentq(lambda z: prediction_entropy(np.array([[0.0, z]]))[0] - target, 1e-3, 50.0)
        return np.array([0.0, z])

    sure, unsure = logits_with_entropy(0.03), logits_with_entropy(0.2)
    # class 0: 5 images, all predicted 0 (unsure); class 1: 5 images, 4 predicted 1 (sure), one predicted 0
    logits = np.stack([unsure[::-1]] * 5 + [sure] * 4 + [sure[::-1]])
    scores = class_scores(logits, np.array([0] * 5 + [1] * 5), 2)
    np.testing.assert_allclose(scores.mean_entropy, [0.2, 0.03], atol=1e-9)
    assert list(scores.order) == [0, 1]  # nats: 1 - 0.2 = 0.80 > 0.8 - 0.03 = 0.77
    in_bits = scores.accuracy - scores.mean_entropy / np.log(2)
    assert in_bits[1] > in_bits[0]  # bits: 1 - 0.289 = 0.711 < 0.8 - 0.043 = 0.757
