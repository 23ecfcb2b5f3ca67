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

All four cost one sort of all scores (uint64 keys carrying the label in their lowest bit) and two
block-by-block passes of cumulative counts: on 10^7 scores about 1.2-1.3x one ``np.sort`` of them
and over 10x faster than sklearn (``scripts/bench_metrics.py``), equal to the references to 1e-12
(ties included; ``tests/test_metrics.py``). The paper's 5:1 ID:OOD base rate is
:func:`ood_metrics_at_base_rate`: seeded repeated subsampling, reported as mean and std, never
applied silently.
"""

from __future__ import annotations

import math

import numpy as np

from fgood_bench.paper import PAPER_BASE_RATE, PAPER_CONVENTION, PAPER_REPEATS
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
CONVENTION = CONVENTIONS[PAPER_CONVENTION]
METRICS = ("fpr95", "auroc", "aupr_out", "aupr_in")


def _scores(values, what: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise FgoodError(f"no {what} scores")
    if not np.isfinite(values).all():
        raise FgoodError(f"{what} scores contain NaN or inf")
    return values


# ----------------------------------------------------------------------------- one sort of all scores
# Every metric depends only on the order of the pooled scores, their ties and which samples are OOD.
# So each score becomes a uint64 key, ordered like the floats, with its label (1 = OOD) in the lowest
# bit; one sort of those keys gives the pooled order with an ID sample before an OOD sample of equal
# score (what the MixOE reference needs; the other conventions only look at whole tie groups).
#
# The passes before and after the sort work block by block, and nothing but the keys is as large as
# the input: whole-array temporaries would each cost 80 MB of fresh, kernel-zeroed memory at 10^7
# scores (more time than the arithmetic on them). A block's temporaries, 128 KB, stay in the CPU
# cache and are recycled by malloc (larger ones are mapped afresh and page-fault on every block);
# 2^14 was the fastest of 2^13..2^16 on 10^7 scores.

_BLOCK = 1 << 14  # elements per block
_CODE_SHIFT = np.uint64(52)  # the top 12 bits of a float64 (sign and exponent): its binade "code"
_CODES = 1 << 12
_MAX_CODES = 1 << 11  # 11 bits of code + 52 of mantissa + 1 label bit = 64
_ONE = np.uint64(1)


def _blocks(n: int):
    """(start, stop) of consecutive blocks covering range(n)."""
    return ((start, min(start + _BLOCK, n)) for start in range(0, n, _BLOCK))


def _ordered_bits(scores: np.ndarray) -> np.ndarray:
    """Turns finite float64 ``scores`` (overwritten) into uint64 keys with the same order and ties."""
    scores += 0.0  # -0.0 + 0.0 is +0.0: the two zeros must tie
    # sign-magnitude to unsigned: set the sign bit of a non-negative float, flip every bit of a negative one
    flip = scores.view(np.int64) >> 63  # arithmetic shift: -1 for a negative float, 0 otherwise
    flip |= np.int64(-(1 << 63))
    keys = scores.view(np.uint64)
    keys ^= flip.view(np.uint64)
    return keys


def _code_drops(present: np.ndarray) -> np.ndarray | None:
    """Per binade code: what to subtract from a key so that the ``present`` codes are numbered
    densely, every key fits in 63 bits and order and ties are kept; None if more than 2048 codes
    are present.

    Finite float64s span nearly 2^64 keys, so a label bit does not fit beside an arbitrary score;
    but real scores occupy a few dozen binades (2048 need magnitudes from 1e-308 to 1e308 of both
    signs), so renumbering the binades frees the bit. Subtracting ``(code - rank) << 52`` moves a
    key's code down to its rank and leaves its mantissa alone.
    """
    if np.count_nonzero(present) > _MAX_CODES:
        return None
    return (np.arange(_CODES) - (np.cumsum(present) - 1)).astype(np.uint64) << _CODE_SHIFT


def _sorted_keys(id_scores: np.ndarray, ood_scores: np.ndarray) -> np.ndarray:
    """All samples as uint64 keys in ascending order: bits 63..1 order the scores (equal bits, equal
    scores), bit 0 is 1 for an OOD sample; on equal scores the ID samples come first."""
    n_id = id_scores.size
    pooled = np.concatenate((id_scores, ood_scores))
    seen = np.zeros(_CODES, np.int64)  # keys per binade code
    for start, stop in _blocks(pooled.size):
        block = _ordered_bits(pooled[start:stop])
        seen += np.bincount((block >> _CODE_SHIFT).view(np.int64), minlength=_CODES)
    keys = pooled.view(np.uint64)
    drops = _code_drops(seen > 0)
    if drops is None:
        return _ranked_keys(keys, n_id)
    for start, stop in _blocks(keys.size):
        block = keys[start:stop]
        block -= drops.take((block >> _CODE_SHIFT).view(np.int64))
        block <<= _ONE
        block[max(n_id - start, 0):] |= _ONE  # the OOD samples follow the n_id ID samples
    keys.sort()  # the one sort
    return keys


def _ranked_keys(keys: np.ndarray, n_id: int) -> np.ndarray:
    """:func:`_sorted_keys` for scores spanning more than 2048 binades: a stable sort of the keys
    (slower) keeps the ID samples, which come first, before the OOD samples on ties; each score's
    bits are then replaced by its rank among the distinct scores."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    ranks = np.zeros(keys.size, np.uint64)
    np.cumsum(ordered[1:] != ordered[:-1], out=ranks[1:])
    return (ranks << _ONE) | (order >= n_id)


# ---------------------------------------------------------------------------- reading the sorted keys


class _Ranked:
    """The sorted keys of :func:`_sorted_keys`, cut into blocks that end at a change of score, with
    the order statistics the FPR95 rules read.

    ``bounds``: the blocks' first positions and N; ``ood_before_block``: the OOD samples before
    each. A position p stands for the first p samples in score order; a tie group is a run of
    equal scores. Blocks of about ``_BLOCK`` samples keep every query to a small slice of the keys.
    """

    def __init__(self, keys: np.ndarray, n_id: int):
        self.keys, self.n, self.n_id, self.n_ood = keys, keys.size, n_id, keys.size - n_id
        bounds, ood_before = [0], [0]
        while bounds[-1] < self.n:
            start = bounds[-1]
            stop = self.tie_end(min(start + _BLOCK, self.n) - 1)
            ood_before.append(ood_before[-1] + int(np.count_nonzero(keys[start:stop] & _ONE)))
            bounds.append(stop)
        self.bounds, self.ood_before_block = np.array(bounds), np.array(ood_before)

    def blocks(self):
        """(start, stop, OOD samples before start) of each block, in order."""
        return zip(self.bounds[:-1].tolist(), self.bounds[1:].tolist(), self.ood_before_block[:-1].tolist())

    def tie_start(self, position: int) -> int:
        """The first position of the tie group holding ``position``."""
        return int(np.searchsorted(self.keys, self.keys[position] & ~_ONE, "left"))

    def tie_end(self, position: int) -> int:
        """One past the last position of the tie group holding ``position``."""
        return int(np.searchsorted(self.keys, self.keys[position] | _ONE, "right"))

    def ood_before(self, position: int) -> int:
        """OOD samples among the first ``position``."""
        block = int(np.searchsorted(self.bounds, position, "right")) - 1
        start = self.bounds[block]
        return int(self.ood_before_block[block]) + int(np.count_nonzero(self.keys[start:position] & _ONE))

    def id_before(self, position: int) -> int:
        return position - self.ood_before(position)

    def ood_at(self, rank: int) -> int:
        """The position of the ``rank``-th lowest OOD sample, rank = 1..n_ood."""
        block = int(np.searchsorted(self.ood_before_block, rank, "left")) - 1
        start, stop = self.bounds[block], self.bounds[block + 1]
        return int(start + np.flatnonzero(self.keys[start:stop] & _ONE)[rank - 1 - self.ood_before_block[block]])

    def id_at(self, rank: int) -> int:
        """The position of the ``rank``-th lowest ID sample, rank = 1..n_id."""
        id_before_block = self.bounds - self.ood_before_block
        block = int(np.searchsorted(id_before_block, rank, "left")) - 1
        start, stop = self.bounds[block], self.bounds[block + 1]
        return int(start + np.flatnonzero((self.keys[start:stop] & _ONE) == 0)[rank - 1 - id_before_block[block]])


def _curve_sums(ranked: _Ranked) -> dict[str, float]:
    """Every sum over the distinct scores that a convention's AUROC or AUPRs needs, in one pass.

    At boundary b, the start of the b-th distinct score (b = G: the end), ``below[b]`` samples
    score below it, ``ood_below[b]`` of them OOD. With ``p_out[b]`` the precision of flagging
    them (OOD positive) and ``p_in[b]`` that of accepting the rest (ID positive), 1 where nothing is
    flagged or accepted (the precision-recall curves' end points), and ``ood`` / ``ids`` the
    samples scored exactly the g-th distinct score:

    * ``auroc``: sum of ids * (ood_below[g] + ood_below[g + 1]) (the OOD samples each ID sample
      beats, ties counted twice as one half: an exact integer);
    * ``ap_out`` / ``ap_in``: sum of ood * p_out[g + 1] / ids * p_in[g] (sklearn's average
      precision: the precision at each positive's tie group);
    * ``trapezoid_out`` / ``trapezoid_in``: sum of ood * (p_out[g] + p_out[g + 1]) / ids *
      (p_in[g] + p_in[g + 1]) (twice ``auc(recall, precision)``: recall rises only at a score
      holding positives, and the segment to it starts at the point of the next score on the
      flagged side).

    The counts are float64 (exact integers up to 2^53): numpy converts integers inside a ufunc more
    slowly than it divides floats. Each block's sum is pairwise (``np.sum``), the blocks' exact
    (``math.fsum``).
    """
    n, n_id = ranked.n, ranked.n_id
    parts = {name: [] for name in ("auroc", "ap_out", "ap_in", "trapezoid_out", "trapezoid_in")}
    with np.errstate(invalid="ignore"):  # 0 / 0 at the end points, replaced below
        for start, stop, ood_before in ranked.blocks():
            block = ranked.keys[start:stop]
            ood_upto = np.cumsum(block & _ONE)  # OOD samples from ``start`` up to each, inclusive
            # boundaries: the block's start (a block starts a tie group), each later change of the
            # key above the label bit, and the block's end
            rises = np.flatnonzero((block[1:] ^ block[:-1]) > _ONE) + 1
            below = np.empty(rises.size + 2)
            below[0], below[1:-1], below[-1] = start, rises + start, stop
            ood_below = np.empty(rises.size + 2)
            ood_below[0], ood_below[1:-1], ood_below[-1] = ood_before, ood_upto[rises - 1] + ood_before, ood_upto[-1] + ood_before

            ood = ood_below[1:] - ood_below[:-1]
            ids = (below[1:] - below[:-1]) - ood
            p_out = ood_below / below
            p_in = (n_id - (below - ood_below)) / (n - below)
            if start == 0:
                p_out[0] = 1.0
            if stop == n:
                p_in[-1] = 1.0
            parts["auroc"].append(np.sum(ids * (ood_below[:-1] + ood_below[1:])))
            parts["ap_out"].append(np.sum(ood * p_out[1:]))
            parts["ap_in"].append(np.sum(ids * p_in[:-1]))
            parts["trapezoid_out"].append(np.sum(ood * (p_out[:-1] + p_out[1:])))
            parts["trapezoid_in"].append(np.sum(ids * (p_in[:-1] + p_in[1:])))
    return {name: math.fsum(values) for name, values in parts.items()}


def _closest(counts: list[int], total: int, level: float = 0.95) -> int:
    """The count whose fraction of ``total`` is closest to ``level`` in float arithmetic (as the
    references compute it), the larger on a tie.

    |count / total - level| falls and then rises with the count (strictly, for totals below 2^52),
    so only the counts on either side of ``level * total`` can be closest: ``counts`` are those.
    """
    counts = sorted(counts)
    distance = np.abs(np.array(counts, np.float64) / total - level)
    return counts[len(counts) - 1 - int(np.argmin(distance[::-1]))]  # argmin finds the first; reversed: the last


def _ninety_five(n: int) -> int:
    """ceil(0.95 n), exact in integers."""
    return (95 * n + 99) // 100


def _fpr_first_at_95(ranked: _Ranked) -> float:
    """pytorch-ood's FPR95 (sklearn's first ROC point with TPR >= 0.95): the ID samples scored <= t,
    the ceil(0.95 n_ood)-th lowest OOD score."""
    return float(ranked.id_before(ranked.tie_end(ranked.ood_at(_ninety_five(ranked.n_ood)))) / ranked.n_id)


def _fpr_at_closest_recall(ranked: _Ranked) -> float:
    """The OE code's ``fpr_and_fdr_at_recall``: curve points at the distinct scores v up to the
    highest OOD score (full recall), flagging score <= v; the point whose recall is closest to 95%,
    the last such in ascending v.

    The closest recall is that of the tie group of t, the ceil(0.95 n_ood)-th lowest OOD score (the
    first at or above 95%), or that just below it (a recall of 0 is never the closest). The last
    point at a recall short of full lies just below the next OOD score, so it flags every ID sample
    below that score; at full recall: up to the highest OOD score.
    """
    t = ranked.ood_at(_ninety_five(ranked.n_ood))
    reached = [ranked.ood_before(ranked.tie_start(t)), ranked.ood_before(ranked.tie_end(t))]
    closest = _closest([count for count in reached if count > 0], ranked.n_ood)
    if closest == ranked.n_ood:
        flagged = ranked.id_before(ranked.tie_end(ranked.ood_at(ranked.n_ood)))
    else:
        flagged = ranked.id_before(ranked.tie_start(ranked.ood_at(closest + 1)))
    return float(flagged / ranked.n_id)


def _fpr_openood(ranked: _Ranked) -> float:
    """OpenOOD's FPR95, read on sklearn's ``roc_curve(drop_intermediate=True)``: as pytorch-ood's,
    at the first point from there on that sklearn keeps.

    The curve has one point per distinct score (ascending ID score = descending outlier score);
    sklearn drops a point, other than the first and the last, whose step in (ID count, OOD count)
    equals the next one's (a straight run). Looks at growing windows of tie groups from that of t,
    the ceil(0.95 n_ood)-th lowest OOD score, so a short run costs a few small comparisons.
    """
    first = ranked.tie_start(ranked.ood_at(_ninety_five(ranked.n_ood)))
    if first == 0:
        return _fpr_first_at_95(ranked)  # the first point is always kept
    width = 64
    while True:
        stop = ranked.tie_end(min(first + width, ranked.n) - 1)
        window = ranked.keys[first:stop]
        # the window's tie groups: their ends, and the steps they make in (ID count, OOD count)
        ends = np.r_[np.flatnonzero((window[1:] ^ window[:-1]) > _ONE) + 1, window.size]
        ood = np.diff(np.cumsum(window & _ONE)[ends - 1], prepend=0)
        ids = np.diff(ends, prepend=0) - ood
        bends = np.flatnonzero((ids[:-1] != ids[1:]) | (ood[:-1] != ood[1:]))
        if bends.size or stop == ranked.n:  # a bend, or the last point (always kept)
            kept_end = first + int(ends[bends[0]] if bends.size else ends[-1])
            return float(ranked.id_before(kept_end) / ranked.n_id)
        width *= 4


def _paper(keys: np.ndarray, n_id: int) -> dict[str, float]:
    ranked = _Ranked(keys, n_id)
    sums = _curve_sums(ranked)
    return {"fpr95": _fpr_at_closest_recall(ranked), "auroc": sums["auroc"] / (2 * ranked.n_id * ranked.n_ood),
            "aupr_out": sums["ap_out"] / ranked.n_ood, "aupr_in": sums["ap_in"] / ranked.n_id}


def _trapezoid_metrics(keys: np.ndarray, n_id: int, fpr95) -> dict[str, float]:
    """pytorch-ood's and OpenOOD's metrics: ties count one half in AUROC, AUPRs as
    ``auc(recall, precision)`` of sklearn's ``precision_recall_curve``, and ``fpr95(ranked)`` read
    on the ROC curve their way."""
    ranked = _Ranked(keys, n_id)
    sums = _curve_sums(ranked)
    return {"fpr95": fpr95(ranked), "auroc": sums["auroc"] / (2 * ranked.n_id * ranked.n_ood),
            "aupr_out": sums["trapezoid_out"] / (2 * ranked.n_ood), "aupr_in": sums["trapezoid_in"] / (2 * ranked.n_id)}


def _pytorch_ood(keys: np.ndarray, n_id: int) -> dict[str, float]:
    return _trapezoid_metrics(keys, n_id, _fpr_first_at_95)


def _openood(keys: np.ndarray, n_id: int) -> dict[str, float]:
    return _trapezoid_metrics(keys, n_id, _fpr_openood)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where both are 0 (calculate_log's end points)."""
    return np.divide(numerator, denominator, out=np.zeros(numerator.size), where=denominator > 0)


def _mixoe_reference(keys: np.ndarray, n_id: int) -> dict[str, float]:
    """calculate_log's curve: samples leave in ascending score order, an ID sample before an OOD one
    of equal score (the order of ``keys``); tp / fp count the ID / OOD samples still accepted.

    One pass over the samples, block by block, in float64 (exact integers) as :func:`_curve_sums`.
    """
    ranked = _Ranked(keys, n_id)
    n, n_ood = ranked.n, ranked.n_ood
    auroc, aupr_in, aupr_out = [], [], []
    for start, stop, ood_before in ranked.blocks():
        is_ood = keys[start:stop] & _ONE
        id_at = np.flatnonzero(is_ood == 0) + float(start)  # positions in that order
        ood_at = np.flatnonzero(is_ood) + float(start)
        # when the j-th lowest ID sample leaves: tp = n_id - j, the OOD samples before it have left
        # (ood_gone), and tp + fp = n - its position
        j = (start - ood_before) + np.arange(id_at.size, dtype=np.float64)
        tp, ood_gone, accepted = n_id - j, id_at - j, n - id_at
        # AUROC: each ID step of 1/n_id at height 1 - fpr = ood_gone / n_ood
        auroc.append(np.sum(ood_gone))
        # AUIN: trapezoid over each ID step of precision tp / (tp + fp), 0 at the end (tp = fp = 0)
        aupr_in.append(np.sum(tp / accepted) + np.sum(_ratio(tp - 1, accepted - 1)))
        # AUOUT: when the i-th lowest OOD sample leaves, the i OOD and the ID samples before it have
        # left (ID first on ties): precision i / its position before, (i + 1) / (position + 1) after
        i = ood_before + np.arange(ood_at.size, dtype=np.float64)
        aupr_out.append(np.sum(_ratio(i, ood_at)) + np.sum((i + 1) / (ood_at + 1)))
    # TNR at the TPR closest to 95%: tp runs n_id .. 0; the closest (the larger tp on a tie, the
    # most OOD still accepted) is reached when the (n_id - tp)-th lowest ID sample has left
    near = _ninety_five(n_id)
    best_tp = _closest([tp for tp in (near - 1, near) if tp >= 0], n_id)
    ood_accepted = n_ood if best_tp == n_id else n_ood - ranked.ood_before(ranked.id_at(n_id - best_tp))
    return {"fpr95": float(ood_accepted / n_ood), "auroc": math.fsum(auroc) / (n_id * n_ood),
            "aupr_out": math.fsum(aupr_out) / (2 * n_ood), "aupr_in": math.fsum(aupr_in) / (2 * n_id)}


_COMPUTE = {"paper": _paper, "openood": _openood, "pytorch-ood": _pytorch_ood, "mixoe-reference": _mixoe_reference}


def check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise FgoodError(f"unknown metric convention {convention!r}; choose from {', '.join(CONVENTIONS)}")
    return convention


def ood_metrics(id_scores, ood_scores, convention: str = PAPER_CONVENTION) -> dict[str, float]:
    """FPR95, AUROC, AUPR-out and AUPR-in (as fractions) for ID and OOD score arrays, computed as
    ``convention`` (one of :data:`CONVENTIONS`) defines them."""
    compute = _COMPUTE[check_convention(convention)]
    id_scores, ood_scores = _scores(id_scores, "ID"), _scores(ood_scores, "OOD")
    return compute(_sorted_keys(id_scores, ood_scores), id_scores.size)


def ood_metrics_at_base_rate(id_scores, ood_scores, base_rate: float = PAPER_BASE_RATE, repeats: int = PAPER_REPEATS, seed: int = 0,
                             convention: str = PAPER_CONVENTION) -> dict:
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
