"""OOD detection metrics with one stated convention (paper, Appendix C).

Scores are *ID scores*: higher means more in-distribution (MSP, energy as -E, ...). **OOD is the
positive class** and is detected by a low score.

* ``fpr95``: the fraction of ID samples flagged as OOD (score <= t) at the lowest threshold t
  that flags at least 95% of the OOD samples, i.e. t = the ceil(0.95 n_ood)-th lowest OOD score.
  This is sklearn's ``roc_curve(is_ood, -score)`` read at its first point with TPR >= 0.95.
* ``auroc``: ``roc_auc_score(is_ood, -score)`` (ties count one half).
* ``aupr_out``: ``average_precision_score(is_ood, -score)``; ``aupr_in``: the same with ID as the
  positive class and ``score``.

Exactly sklearn's values (ties included), computed from two sorts and binary searches instead of
sklearn's curves: more than 10x faster on 10^7 scores (``scripts/bench_metrics.py``). The
paper's 5:1 ID:OOD base rate is :func:`ood_metrics_at_base_rate`: seeded repeated subsampling,
reported as mean and std, never applied silently.
"""

from __future__ import annotations

import numpy as np

from fgood_bench.errors import FgoodError

CONVENTION = (
    "OOD is the positive class, detected by a low score (higher score = more ID); fpr95 = fraction of ID "
    "samples flagged at the threshold detecting 95% of OOD samples; auroc and aupr_out as sklearn with OOD "
    "positive and the negated score; aupr_in with ID positive"
)
METRICS = ("fpr95", "auroc", "aupr_out", "aupr_in")


def _scores(values, what: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise FgoodError(f"no {what} scores")
    if not np.isfinite(values).all():
        raise FgoodError(f"{what} scores contain NaN or inf")
    return values


def _count_at_most(a: np.ndarray, b: np.ndarray, strict: bool = False) -> np.ndarray:
    """For each b[j] (both sorted): how many a are <= b[j] (< b[j] when ``strict``).

    Binary-searches the smaller array into the larger: with 10^6 ID and 9 x 10^6 OOD scores that
    is 10^6 searches plus a linear cumulative count, not 9 x 10^6 searches.
    """
    if a.size <= b.size:
        # a[i] <= b[j]  <=>  j >= (number of b below a[i]);  a[i] < b[j]  <=>  j >= (number of b at or below a[i])
        first = np.searchsorted(b, a, "right" if strict else "left")
        return np.bincount(first, minlength=b.size + 1).cumsum()[: b.size]
    return np.searchsorted(a, b, "left" if strict else "right")


def _tied(a: np.ndarray) -> np.ndarray:
    """Indices of the elements of sorted ``a`` that equal a neighbour (usually few)."""
    equal_next = a[1:] == a[:-1]
    tied = np.zeros(a.size, bool)
    tied[:-1] |= equal_next
    tied[1:] |= equal_next
    return np.flatnonzero(tied)


def _tie_group_end(a: np.ndarray) -> np.ndarray:
    """For each a[i] (sorted): the number of elements <= a[i]; i + 1 except within ties."""
    counts = np.arange(1, a.size + 1)
    tied = _tied(a)
    counts[tied] = np.searchsorted(a, a[tied], "right")
    return counts


def _tie_group_start(a: np.ndarray) -> np.ndarray:
    """For each a[i] (sorted): the number of elements < a[i]; i except within ties."""
    counts = np.arange(a.size)
    tied = _tied(a)
    counts[tied] = np.searchsorted(a, a[tied], "left")
    return counts


def ood_metrics(id_scores, ood_scores) -> dict[str, float]:
    """FPR95, AUROC, AUPR-out and AUPR-in (as fractions) for ID and OOD score arrays."""
    id_sorted = np.sort(_scores(id_scores, "ID"))
    ood_sorted = np.sort(_scores(ood_scores, "OOD"))
    n_id, n_ood = id_sorted.size, ood_sorted.size

    # AUPR-out: at each OOD score v, precision of flagging everything <= v
    ood_at_or_below = _tie_group_end(ood_sorted)
    id_at_or_below = _count_at_most(id_sorted, ood_sorted)
    aupr_out = float(np.mean(ood_at_or_below / (ood_at_or_below + id_at_or_below)))

    # AUPR-in: at each ID score v, precision of accepting everything >= v
    ood_below = _count_at_most(ood_sorted, id_sorted, strict=True)
    id_at_or_above = n_id - _tie_group_start(id_sorted)
    aupr_in = float(np.mean(id_at_or_above / (id_at_or_above + n_ood - ood_below)))

    # AUROC: P(ID score > OOD score) + P(equal) / 2
    ood_equal = _count_at_most(ood_sorted, id_sorted) - ood_below
    auroc = float((ood_below.sum(dtype=np.float64) + 0.5 * ood_equal.sum(dtype=np.float64)) / (n_id * n_ood))

    k = (95 * n_ood + 99) // 100  # ceil(0.95 n), exact in integers
    fpr95 = float(np.searchsorted(id_sorted, ood_sorted[k - 1], "right") / n_id)
    return {"fpr95": fpr95, "auroc": auroc, "aupr_out": aupr_out, "aupr_in": aupr_in}


def ood_metrics_at_base_rate(id_scores, ood_scores, base_rate: float = 5.0, repeats: int = 10, seed: int = 0) -> dict:
    """Metrics at an ID:OOD ratio of ``base_rate``:1, by subsampling the larger side ``repeats`` times.

    Returns ``{metric: {"mean": ..., "std": ...}}`` plus the sizes used. The draws come from
    ``numpy.random.default_rng(seed)``, so results are reproducible.
    """
    id_scores, ood_scores = _scores(id_scores, "ID"), _scores(ood_scores, "OOD")
    n_id = min(id_scores.size, int(np.floor(ood_scores.size * base_rate)))
    n_ood = min(ood_scores.size, int(np.floor(n_id / base_rate)))
    if n_id < 1 or n_ood < 1:
        raise FgoodError(f"too few scores for an ID:OOD base rate of {base_rate}:1")
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(repeats):
        ids = id_scores if n_id == id_scores.size else rng.choice(id_scores, n_id, replace=False)
        oods = ood_scores if n_ood == ood_scores.size else rng.choice(ood_scores, n_ood, replace=False)
        runs.append(ood_metrics(ids, oods))
    result = {m: {"mean": float(np.mean([r[m] for r in runs])), "std": float(np.std([r[m] for r in runs]))} for m in METRICS}
    result.update({"base_rate": base_rate, "n_id": n_id, "n_ood": n_ood, "repeats": repeats, "seed": seed})
    return result
