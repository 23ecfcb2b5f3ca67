"""Class ranking of Appendix A: S(c) = accuracy on class c's test images - their mean prediction entropy.

``f(x)`` is the softmax of the logits, entropy in nats (natural log); the class with the highest
score ranks first, ties broken by the lower class index. The top K classes become the
in-distribution set, the rest the holdout OOD set.

Mean entropies are rounded to ``ENTROPY_DECIMALS`` places before ranking: float32 logits of the
same images differ in their last bits between thread counts, batch sizes and processes (sharded
inference), and the ranking and ``ranking.csv`` must not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import entr, softmax

ENTROPY_DECIMALS = 6  # nats; far below any difference between classes that matters


@dataclass(frozen=True)
class ClassScores:
    """Per-class statistics, indexed by class index, and the ranking they give."""

    num_test: np.ndarray  # int64 (C,)
    accuracy: np.ndarray  # float64 (C,)
    mean_entropy: np.ndarray  # float64 (C,)

    @property
    def score(self) -> np.ndarray:
        return self.accuracy - self.mean_entropy

    @property
    def order(self) -> np.ndarray:
        """Class indices from best to worst: score descending, then index ascending."""
        return np.lexsort((np.arange(self.score.size), -self.score))

    @property
    def rank(self) -> np.ndarray:
        """1-based rank of each class index."""
        rank = np.empty(self.score.size, np.int64)
        rank[self.order] = np.arange(1, self.score.size + 1)
        return rank

    def top(self, k: int) -> list[int]:
        """The ``k`` best classes, in class-index order."""
        return sorted(self.order[:k].tolist())


def prediction_entropy(logits: np.ndarray) -> np.ndarray:
    """Entropy (nats) of the softmax of each row, computed in float64."""
    return entr(softmax(np.asarray(logits, np.float64), axis=1)).sum(axis=1)


def class_scores(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> ClassScores:
    """Accuracy and mean prediction entropy of every class over its own test images."""
    labels = np.asarray(labels, np.int64)
    num_test = np.bincount(labels, minlength=num_classes)
    correct = (np.argmax(logits, axis=1) == labels).astype(np.float64)
    entropy = prediction_entropy(logits)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(labels, weights=correct, minlength=num_classes) / num_test
        mean_entropy = np.bincount(labels, weights=entropy, minlength=num_classes) / num_test
    return ClassScores(num_test=num_test, accuracy=accuracy, mean_entropy=np.round(mean_entropy, ENTROPY_DECIMALS))


def border_gap(ranked_classes: list[dict], num_id: int) -> float | None:
    """S(c) of the K-th ranked class minus that of the (K+1)-th: how far the last ID class is from
    the first holdout one. ``ranked_classes``: the manifest's ``ranking.classes`` (rank order);
    None when there is no holdout class to compare with."""
    if not 0 < num_id < len(ranked_classes):
        return None
    return float(ranked_classes[num_id - 1]["score"]) - float(ranked_classes[num_id]["score"])
