"""OOD detection metrics under four stated conventions: the paper's and three peers'.

Scores are *ID scores*: higher means more in-distribution (MSP, energy as -E, ...). Every
convention returns ``fpr95``, ``auroc``, ``aupr_out`` and ``aupr_in`` as fractions; they differ in
the positive class, in how ties are counted and in how a precision-recall curve becomes an area:

``paper`` (default; Appendix C "following [3, 11]", computed as Hendrycks et al.'s OE code does,
    ``utils/display_results.py::get_measures`` in hendrycks/outlier-exposure)
    **OOD is the positive class**, detected by a low score. ``fpr95`` (the OE code's
    ``fpr_and_fdr_at_recall``): one curve point per distinct score v, flagging score <= v; of the
    points up to full recall, the one whose recall is *closest* to 95% (it may lie below 95%),
    and of several such the lowest threshold, i.e. the most ID samples flagged before the next OOD
    sample; fpr95 is the fraction of ID samples it flags. ``auroc``:
    ``roc_auc_score(is_ood, -score)`` (ties count one half). ``aupr_out``:
    ``average_precision_score(is_ood, -score)``; ``aupr_in``: the same with ID positive and ``score``.
``openood`` (OpenOOD v1.5, ``openood/evaluators/metrics.py::auc_and_fpr_recall``)
    OOD positive. ``fpr95`` is read on ``roc_curve(is_ood, -score)`` *with* sklearn's default
    ``drop_intermediate=True``: where runs of tied scores make the curve a straight line, the
    first point with TPR >= 0.95 may be dropped and the next kept one (a higher FPR) is read.
    ``auroc`` as ``paper``. ``aupr_in`` / ``aupr_out``: ``auc(recall, precision)`` of
    ``precision_recall_curve`` (trapezoids, the curve closed at recall 0 with precision 1).
``pytorch-ood`` (pytorch-ood >= 0.4, ``pytorch_ood.metrics.OODMetrics`` on outlier score ``-score``)
    ``fpr95``: the fraction of ID samples flagged (score <= t) at the lowest threshold t that flags
    at least 95% of the OOD samples (t = the ceil(0.95 n_ood)-th lowest OOD score), i.e. sklearn's
    ``roc_curve(is_ood, -score)`` read at its first point with TPR >= 0.95 (its FPR95TPR reads the
    full curve); ``auroc`` as ``paper``; ``aupr_in`` / ``aupr_out`` as ``openood`` (trapezoids).
``mixoe-reference`` (the authors' ``utils/calculate_log.py`` in zjysteven/MixOE, after Lee et al.)
    **ID is the positive class.** Samples leave one at a time in ascending score order (an ID
    sample before an OOD sample of equal score), giving one curve point per sample.
    ``fpr95``: the fraction of OOD samples accepted at the point whose TPR (ID kept) is closest
    to 95% (the first such point), i.e. 1 - the reference's TNR. ``auroc``: trapezoids of that
    curve, so a tie counts 0, not one half. ``aupr_in`` / ``aupr_out``: its AUIN / AUOUT,
    trapezoids closed at precision 0.5 and 0 (AUIN) and 0 and 0.5 (AUOUT). The authors'
    ``eval/eval.py`` reports AUIN as "AUPR", at an ID:OOD ratio of 1:1.

All four are vectorised: two sorts and binary searches instead of curves, about 10x faster
than sklearn on 10^7 scores (``scripts/bench_metrics.py``), equal to the references to 1e-9 (ties
included; ``tests/test_metrics.py``). The paper's 5:1 ID:OOD base rate is
:func:`ood_metrics_at_base_rate`: seeded repeated subsampling, reported as mean and std, never
applied silently.
"""

from __future__ import annotations

import numpy as np

from fgood_bench.paper import PAPER_BASE_RATE, PAPER_REPEATS
from fgood_bench.errors import FgoodError

CONVENTIONS = {
    "paper": (
        "OOD is the positive class, detected by a low score (higher score = more ID); fpr95 = fraction of ID "
        "samples flagged at the threshold whose OOD detection rate is closest to 95% (the OE code's "
        "fpr_and_fdr_at_recall); auroc and aupr_out as sklearn with OOD positive and the negated score; aupr_in "
        "with ID positive"
    ),
    "openood": (
        "OpenOOD v1.5 (openood/evaluators/metrics.py): OOD positive; fpr95 read on sklearn's roc_curve with "
        "drop_intermediate=True; auroc ties count one half; aupr_in and aupr_out = trapezoid area under "
        "sklearn's precision_recall_curve"
    ),
    "pytorch-ood": (
        "pytorch-ood >= 0.4 OODMetrics: OOD positive; fpr95 at the first threshold detecting 95% of OOD samples; "
        "auroc ties count one half; aupr_in and aupr_out = trapezoid area under the precision-recall curve"
    ),
    "mixoe-reference": (
        "MixOE reference utils/calculate_log.py: ID positive, one curve point per sample (ID before OOD on ties); "
        "fpr95 = fraction of OOD accepted at the TPR closest to 95% (1 - TNR); auroc ties count 0; "
        "aupr_in = AUIN, aupr_out = AUOUT (trapezoids)"
    ),
}
CONVENTION = CONVENTIONS["paper"]
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


def _distinct(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct values of sorted ``a``, with how many elements lie below each and at or below each."""
    starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]])
    return a[starts], starts, np.r_[starts[1:], a.size]


def _negated(a: np.ndarray) -> np.ndarray:
    """``-a`` of sorted ``a``, sorted: turns 'high score is positive' into 'low score is positive'."""
    return -a[::-1]


def _fpr95(id_sorted: np.ndarray, ood_sorted: np.ndarray) -> float:
    k = (95 * ood_sorted.size + 99) // 100  # ceil(0.95 n), exact in integers
    return float(np.searchsorted(id_sorted, ood_sorted[k - 1], "right") / id_sorted.size)


def _fpr_at_closest_recall(id_sorted: np.ndarray, ood_sorted: np.ndarray, ends: np.ndarray, level: float = 0.95) -> float:
    """The OE code's ``fpr_and_fdr_at_recall``: curve points at the distinct scores v up to the
    highest OOD score (full recall), flagging score <= v; the point whose recall is closest to
    ``level`` (the same float arithmetic, so ties resolve alike), the last such in ascending v.

    The recall only changes at OOD scores: it is T / n_ood for T an OOD tie group's end count. The
    last point with the closest such T (the larger T on a tie) lies just below the next OOD score,
    so it flags every ID sample below that score (at full recall: up to the highest OOD score).
    ``ends``: :func:`_tie_group_end` of ``ood_sorted`` (non-decreasing: a value ends where it changes).
    """
    n_ood = ood_sorted.size
    reachable = ends[np.r_[ends[1:] != ends[:-1], True]]
    distance = np.abs(reachable / n_ood - level)
    closest = int(reachable[np.flatnonzero(distance == distance.min())[-1]])
    flagged = (np.searchsorted(id_sorted, ood_sorted[closest], "left") if closest < n_ood
               else np.searchsorted(id_sorted, ood_sorted[-1], "right"))
    return float(flagged / id_sorted.size)


def _auroc(id_sorted: np.ndarray, ood_sorted: np.ndarray) -> float:
    """P(ID score > OOD score) + P(equal) / 2."""
    ood_below = _count_at_most(ood_sorted, id_sorted, strict=True)
    ood_equal = _count_at_most(ood_sorted, id_sorted) - ood_below
    pairs = id_sorted.size * ood_sorted.size
    return float((ood_below.sum(dtype=np.float64) + 0.5 * ood_equal.sum(dtype=np.float64)) / pairs)


def _trapezoid_aupr(pos: np.ndarray, neg: np.ndarray) -> float:
    """``sklearn.metrics.auc(recall, precision)`` of ``precision_recall_curve`` where a low score flags
    a positive (both sorted), as OpenOOD and pytorch-ood compute AUPR.

    Recall only rises at a distinct positive score v; the segment to it starts at the curve's point
    for the largest score below v (the positives and negatives strictly below v), or at the
    curve's end point (recall 0, precision 1) when nothing lies below v.
    """
    values, below, upto = _distinct(pos)
    neg_below = _count_at_most(neg, values, strict=True)
    neg_upto = _count_at_most(neg, values)
    precision = upto / (upto + neg_upto)
    flagged_below = below + neg_below
    precision_before = np.divide(below, flagged_below, out=np.ones(values.size), where=flagged_below > 0)
    return float(np.sum((upto - below) * (precision + precision_before)) / (2 * pos.size))


def _kept_roc_value(id_sorted: np.ndarray, ood_sorted: np.ndarray, value: float) -> float:
    """The first score >= ``value`` that sklearn's ``roc_curve(drop_intermediate=True)`` keeps.

    The curve has one point per distinct score (ascending ID score = descending outlier score);
    sklearn drops a point, other than the first and the last, whose step in (ID count, OOD count)
    equals the next one's (a straight run). Looks at growing windows of the distinct scores from
    ``value`` on, so a short run costs a few binary searches, not a sort of all scores.
    """
    lo_id, lo_ood = np.searchsorted(id_sorted, value, "left"), np.searchsorted(ood_sorted, value, "left")
    if lo_id == 0 and lo_ood == 0:
        return value  # the first point is always kept
    highest = max(id_sorted[-1], ood_sorted[-1])
    width = 64
    while True:
        ids, oods = id_sorted[lo_id:lo_id + width], ood_sorted[lo_ood:lo_ood + width]
        # every distinct score up to ``limit`` lies in one of the two windows
        limit = min(ids[-1] if lo_id + width < id_sorted.size else np.inf,
                    oods[-1] if lo_ood + width < ood_sorted.size else np.inf)
        values = np.unique(np.concatenate([ids, oods]))
        values = values[values <= limit]
        id_count = np.searchsorted(id_sorted, values, "right") - np.searchsorted(id_sorted, values, "left")
        ood_count = np.searchsorted(ood_sorted, values, "right") - np.searchsorted(ood_sorted, values, "left")
        bends = (id_count[:-1] != id_count[1:]) | (ood_count[:-1] != ood_count[1:])
        kept = np.r_[bends, values[-1] == highest]
        if kept.any():
            return float(values[np.argmax(kept)])
        width *= 4


def _paper(id_sorted: np.ndarray, ood_sorted: np.ndarray) -> dict[str, float]:
    """Today's default, bit for bit; AUPR-in and AUROC share one count of the OOD scores below each ID score."""
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
    return {"fpr95": _fpr_at_closest_recall(id_sorted, ood_sorted, ood_at_or_below), "auroc": auroc, "aupr_out": aupr_out,
            "aupr_in": aupr_in}


def _pytorch_ood(id_sorted: np.ndarray, ood_sorted: np.ndarray) -> dict[str, float]:
    return {"fpr95": _fpr95(id_sorted, ood_sorted), "auroc": _auroc(id_sorted, ood_sorted),
            "aupr_out": _trapezoid_aupr(ood_sorted, id_sorted),
            "aupr_in": _trapezoid_aupr(_negated(id_sorted), _negated(ood_sorted))}


def _openood(id_sorted: np.ndarray, ood_sorted: np.ndarray) -> dict[str, float]:
    k = (95 * ood_sorted.size + 99) // 100
    threshold = _kept_roc_value(id_sorted, ood_sorted, ood_sorted[k - 1])
    return {**_pytorch_ood(id_sorted, ood_sorted),
            "fpr95": float(np.searchsorted(id_sorted, threshold, "right") / id_sorted.size)}


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where both are 0 (calculate_log's end points)."""
    return np.divide(numerator, denominator, out=np.zeros(numerator.size), where=denominator > 0)


def _mixoe_reference(id_sorted: np.ndarray, ood_sorted: np.ndarray) -> dict[str, float]:
    """calculate_log's curve: samples leave in ascending score order, an ID sample before an OOD one
    of equal score; tp / fp count the ID / OOD samples still accepted."""
    n_id, n_ood = id_sorted.size, ood_sorted.size
    # when the j-th lowest ID sample leaves: tp = n_id - j, and the OOD samples below it have left
    ood_gone = _count_at_most(ood_sorted, id_sorted, strict=True)
    tp, fp = n_id - np.arange(n_id), n_ood - ood_gone
    # AUROC: each ID step of 1/n_id at height 1 - fpr = ood_gone / n_ood
    auroc = float(ood_gone.sum(dtype=np.float64) / (n_id * n_ood))
    # AUIN: trapezoid over each ID step of precision tp / (tp + fp), 0 at the end (tp = fp = 0)
    aupr_in = float(np.sum(_ratio(tp, tp + fp) + _ratio(tp - 1, tp - 1 + fp)) / (2 * n_id))
    # AUOUT: when the i-th lowest OOD sample leaves, the ID samples <= it have left (ID first on ties)
    id_gone, ood_left_before = _count_at_most(id_sorted, ood_sorted), np.arange(n_ood)
    aupr_out = float(np.sum(_ratio(ood_left_before, id_gone + ood_left_before)
                            + _ratio(ood_left_before + 1, id_gone + ood_left_before + 1)) / (2 * n_ood))
    # TNR at the TPR closest to 95%: tp runs n_id .. 0; the first closest point (larger tp on a tie,
    # and the most OOD still accepted) is right after the ID sample that brought tp there left
    tp_values = np.arange(n_id, -1, -1)
    best = tp_values[np.argmin(np.abs(tp_values / n_id - 0.95))]
    ood_accepted = n_ood if best == n_id else fp[n_id - best - 1]
    return {"fpr95": float(ood_accepted / n_ood), "auroc": auroc, "aupr_out": aupr_out, "aupr_in": aupr_in}


_COMPUTE = {"paper": _paper, "openood": _openood, "pytorch-ood": _pytorch_ood, "mixoe-reference": _mixoe_reference}


def check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise FgoodError(f"unknown metric convention {convention!r}; choose from {', '.join(CONVENTIONS)}")
    return convention


def ood_metrics(id_scores, ood_scores, convention: str = "paper") -> dict[str, float]:
    """FPR95, AUROC, AUPR-out and AUPR-in (as fractions) for ID and OOD score arrays, computed as
    ``convention`` (one of :data:`CONVENTIONS`) defines them."""
    compute = _COMPUTE[check_convention(convention)]
    return compute(np.sort(_scores(id_scores, "ID")), np.sort(_scores(ood_scores, "OOD")))


def ood_metrics_at_base_rate(id_scores, ood_scores, base_rate: float = PAPER_BASE_RATE, repeats: int = PAPER_REPEATS, seed: int = 0,
                             convention: str = "paper") -> dict:
    """Metrics at an ID:OOD ratio of ``base_rate``:1, by subsampling the larger side ``repeats`` times.

    Returns ``{metric: {"mean": ..., "std": ...}}`` plus the sizes used. The draws come from
    ``numpy.random.default_rng(seed)``, so results are reproducible.
    """
    check_convention(convention)
    if not (base_rate > 0 and np.isfinite(base_rate)) or int(repeats) != repeats or repeats < 1:
        raise FgoodError(f"base rate {base_rate} with {repeats} repeats: need a finite rate > 0 and at least one draw")
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
        runs.append(ood_metrics(ids, oods, convention))
    result = {m: {"mean": float(np.mean([r[m] for r in runs])), "std": float(np.std([r[m] for r in runs]))} for m in METRICS}
    result.update({"base_rate": base_rate, "n_id": n_id, "n_ood": n_ood, "repeats": repeats, "seed": seed})
    return result
