import warnings

import numpy as np
import pytest
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from fgood_bench.errors import FgoodError
from fgood_bench.metrics import CONVENTION, CONVENTIONS, METRICS, ood_metrics, ood_metrics_at_base_rate


def sklearn_metrics(id_scores, ood_scores) -> dict:
    """The stated convention, computed with sklearn: OOD positive, detected by a low score."""
    is_ood = np.r_[np.zeros(len(id_scores)), np.ones(len(ood_scores))]
    scores = np.r_[id_scores, ood_scores].astype(np.float64)
    fpr, tpr, _ = roc_curve(is_ood, -scores, drop_intermediate=False)
    return {
        "fpr95": fpr[np.searchsorted(tpr, 0.95, "left")],
        "auroc": roc_auc_score(is_ood, -scores),
        "aupr_out": average_precision_score(is_ood, -scores),
        "aupr_in": average_precision_score(1 - is_ood, scores),
    }


rng = np.random.default_rng(0)
CASES = {
    "random": (rng.normal(1, 1, 2000), rng.normal(0, 1.5, 1500)),
    "few ood": (rng.normal(1, 1, 3000), rng.normal(0, 1, 17)),
    "few id": (rng.normal(1, 1, 9), rng.normal(0, 1, 4000)),
    "rounded (ties)": (np.round(rng.normal(1, 1, 1000), 1), np.round(rng.normal(0, 1, 800), 1)),
    "three values": (rng.integers(0, 3, 500).astype(float), rng.integers(0, 3, 700).astype(float)),
    "float32 ties": (rng.normal(1, 1, 20000).astype(np.float32), rng.normal(0, 1, 20000).astype(np.float32)),
    "all equal": (np.full(50, 0.3), np.full(70, 0.3)),
    "separated": (np.linspace(10, 11, 40), np.linspace(0, 1, 60)),
    "reversed": (np.linspace(0, 1, 40), np.linspace(10, 11, 60)),
    "single each": (np.array([0.5]), np.array([0.5])),
    # every distinct score holds two ID and one OOD sample: one straight ROC run (sklearn drops its inner points)
    "straight run": (np.repeat(np.arange(60.0), 2), np.arange(60.0)),
    "long straight run": (np.repeat(np.arange(2000.0), 2), np.r_[np.arange(2000.0), 5000.0]),
}


def oe_code_fpr95(id_scores, ood_scores) -> float:
    """FPR95 as Hendrycks et al.'s OE code defines it (utils/display_results.py in
    hendrycks/outlier-exposure, ``fpr_and_fdr_at_recall`` on outlier score -score): thresholds at
    the distinct outlier scores, highest first, until every OOD sample is flagged; the threshold
    whose recall is closest to 0.95 (the last one in that order on a tie); its false positives / #ID."""
    outlier = -np.r_[id_scores, ood_scores].astype(np.float64)
    is_ood = np.r_[np.zeros(len(id_scores), bool), np.ones(len(ood_scores), bool)]
    order = np.argsort(-outlier, kind="stable")
    outlier, is_ood = outlier[order], is_ood[order]
    group_ends = np.r_[np.flatnonzero(outlier[1:] != outlier[:-1]), outlier.size - 1]  # last index of each value
    true_flagged = np.cumsum(is_ood)[group_ends]
    false_flagged = group_ends + 1 - true_flagged
    full = np.argmax(true_flagged == is_ood.sum())
    distance = np.abs(true_flagged[: full + 1] / is_ood.sum() - 0.95)
    chosen = np.flatnonzero(distance == distance.min())[-1]
    return false_flagged[chosen] / len(id_scores)


@pytest.mark.parametrize("case", CASES)
def test_equal_to_sklearn_and_the_oe_code(case):
    """paper: AUROC / AUPR as sklearn, FPR95 as the OE code (closest recall); pytorch-ood's FPR95 is
    sklearn's first ROC point with TPR >= 0.95."""
    id_scores, ood_scores = CASES[case]
    ours, reference = ood_metrics(id_scores, ood_scores), sklearn_metrics(id_scores, ood_scores)
    for metric in ("auroc", "aupr_out", "aupr_in"):
        assert ours[metric] == pytest.approx(reference[metric], abs=1e-9), metric
    assert ours["fpr95"] == oe_code_fpr95(id_scores, ood_scores)
    assert ood_metrics(id_scores, ood_scores, convention="pytorch-ood")["fpr95"] == pytest.approx(reference["fpr95"], abs=1e-12)


def openood_reference(id_scores, ood_scores) -> dict:
    """OpenOOD v1.5's evaluator (openood/evaluators/metrics.py::auc_and_fpr_recall) in sklearn calls:
    OOD positive on the negated score, roc_curve with its default drop_intermediate, trapezoid AUPRs."""
    is_ood = np.r_[np.zeros(len(id_scores)), np.ones(len(ood_scores))]
    scores = np.r_[id_scores, ood_scores].astype(np.float64)
    fpr, tpr, _ = roc_curve(is_ood, -scores)
    precision_in, recall_in, _ = precision_recall_curve(1 - is_ood, scores)
    precision_out, recall_out, _ = precision_recall_curve(is_ood, -scores)
    return {"fpr95": fpr[np.argmax(tpr >= 0.95)], "auroc": auc(fpr, tpr),
            "aupr_in": auc(recall_in, precision_in), "aupr_out": auc(recall_out, precision_out)}


def mixoe_reference(id_scores, ood_scores) -> dict:
    """The MixOE authors' utils/calculate_log.py, re-derived from its definitions: ID positive; all
    samples ordered by score with an ID sample before an OOD sample of equal score; after removing
    the c lowest (c = 0..N), tp / fp = ID / OOD samples still accepted. TNR at the first point whose
    tp / n_id is closest to 0.95; AUROC, AUIN and AUOUT by np.trapezoid over the curve padded with
    (tpr, fpr) = (1, 1) and (0, 0), precision-in padded with 0.5 and 0, precision-out with 0 and 0.5,
    skipping points where the precision is 0 / 0."""
    n_id, n_ood = len(id_scores), len(ood_scores)
    is_ood = np.r_[np.zeros(n_id, int), np.ones(n_ood, int)]
    order = np.lexsort((is_ood, np.r_[id_scores, ood_scores].astype(np.float64)))
    tp = n_id - np.r_[0, np.cumsum(is_ood[order] == 0)]
    fp = n_ood - np.r_[0, np.cumsum(is_ood[order] == 1)]
    tpr, fpr = np.r_[1.0, tp / n_id, 0.0], np.r_[1.0, fp / n_ood, 0.0]
    tnr = 1 - fp[np.argmin(np.abs(tp / n_id - 0.95))] / n_ood
    accepted, flagged = tp + fp, (n_id - tp) + (n_ood - fp)
    keep_in, keep_out = np.r_[True, accepted > 0, True], np.r_[True, flagged > 0, True]
    precision_in = np.r_[0.5, tp / np.where(accepted > 0, accepted, 1), 0.0]
    precision_out = np.r_[0.0, (n_ood - fp) / np.where(flagged > 0, flagged, 1), 0.5]
    return {"fpr95": 1 - tnr, "auroc": -np.trapezoid(1 - fpr, tpr),
            "aupr_in": -np.trapezoid(precision_in[keep_in], tpr[keep_in]),
            "aupr_out": np.trapezoid(precision_out[keep_out], (1 - fpr)[keep_out])}


@pytest.mark.parametrize("case", CASES)
def test_openood_convention_equals_its_formula(case):
    ours, reference = ood_metrics(*CASES[case], convention="openood"), openood_reference(*CASES[case])
    for metric in reference:
        assert ours[metric] == pytest.approx(reference[metric], abs=1e-9), metric


@pytest.mark.parametrize("case", CASES)
def test_mixoe_reference_convention_equals_its_formula(case):
    ours, reference = ood_metrics(*CASES[case], convention="mixoe-reference"), mixoe_reference(*CASES[case])
    for metric in reference:
        assert ours[metric] == pytest.approx(reference[metric], abs=1e-9), metric


@pytest.mark.parametrize("case", CASES)
def test_pytorch_ood_convention_equals_pytorch_ood(case):
    pytest.importorskip("pytorch_ood", minversion="0.4")
    torch = pytest.importorskip("torch")
    from pytorch_ood.metrics import OODMetrics

    id_scores, ood_scores = CASES[case]
    outlier_scores = -torch.tensor(np.r_[id_scores, ood_scores], dtype=torch.float64)
    labels = torch.tensor(np.r_[np.zeros(len(id_scores)), -np.ones(len(ood_scores))], dtype=torch.long)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # AUTC is undefined (NaN, with a warning) for constant scores
        theirs = OODMetrics().update(outlier_scores, labels).compute()
    ours = ood_metrics(id_scores, ood_scores, convention="pytorch-ood")
    for metric, key in (("fpr95", "FPR95TPR"), ("auroc", "AUROC"), ("aupr_in", "AUPR-IN"), ("aupr_out", "AUPR-OUT")):
        assert ours[metric] == pytest.approx(float(theirs[key]), abs=1e-9), metric


def test_conventions_differ_where_documented():
    # every distinct score holds one ID and one OOD sample: the ROC curve is one straight diagonal
    diagonal = np.arange(100.0)
    assert ood_metrics(diagonal, diagonal)["fpr95"] == 0.95
    assert ood_metrics(diagonal, diagonal, convention="pytorch-ood")["fpr95"] == 0.95
    assert ood_metrics(diagonal, diagonal, convention="openood")["fpr95"] == 1.0  # the 0.95 point is dropped
    # ID [0.5, 1, 2, 3] against OOD [0, 1]: the tie at 1 counts one half, except in the MixOE reference
    ids, oods = np.array([0.5, 1, 2, 3]), np.array([0.0, 1.0])
    assert ood_metrics(ids, oods)["auroc"] == 6.5 / 8
    assert ood_metrics(ids, oods, convention="mixoe-reference")["auroc"] == 6 / 8
    # with 4 ID samples the TPR closest to 95% is 100%: every OOD sample is accepted
    assert ood_metrics(ids, oods, convention="mixoe-reference")["fpr95"] == 1.0
    # heavy ties: average precision and trapezoids disagree a lot
    paper, openood = ood_metrics(*CASES["three values"]), ood_metrics(*CASES["three values"], convention="openood")
    assert abs(paper["aupr_out"] - openood["aupr_out"]) > 0.05
    assert set(CONVENTIONS) == {"paper", "openood", "pytorch-ood", "mixoe-reference"}
    with pytest.raises(FgoodError, match="unknown metric convention 'sklearn'; choose from paper, openood"):
        ood_metrics(ids, oods, convention="sklearn")


def test_degenerate_values():
    assert ood_metrics(*CASES["separated"]) == {"fpr95": 0.0, "auroc": 1.0, "aupr_out": 1.0, "aupr_in": 1.0}
    reversed_ = ood_metrics(*CASES["reversed"])
    assert reversed_["fpr95"] == 1.0 and reversed_["auroc"] == 0.0
    equal = ood_metrics(*CASES["all equal"])
    assert equal == pytest.approx({"fpr95": 1.0, "auroc": 0.5, "aupr_out": 70 / 120, "aupr_in": 50 / 120}, abs=1e-12)


def test_fpr95_by_hand():
    ood = np.arange(1.0, 21.0)  # 95% of 20 OOD samples: the 19 lowest, detected from threshold 19 on
    ids = np.array([5.0, 18.5, 19.0, 19.5, 30.0])
    # first threshold detecting 95% (sklearn, pytorch-ood): 19 flags 5, 18.5 and the tie 19
    assert ood_metrics(ids, ood, convention="pytorch-ood")["fpr95"] == pytest.approx(3 / 5)
    # the OE code (paper): of the thresholds at recall 95% (19 and 19.5), the lowest, which also flags 19.5
    assert ood_metrics(ids, ood)["fpr95"] == pytest.approx(4 / 5)
    # closest, not at least: with 12 OOD samples a recall of 11/12 = 0.917 is closer to 0.95 than 12/12
    ood12, ids2 = np.arange(1.0, 13.0), np.array([11.0, 12.0])
    assert ood_metrics(ids2, ood12)["fpr95"] == 0.5  # at 11/12 only the ID sample 11 is flagged
    assert ood_metrics(ids2, ood12, convention="pytorch-ood")["fpr95"] == 1.0  # at least 95%: 12/12, both flagged
    assert "OOD is the positive class" in CONVENTION


def test_base_rate_is_seeded_and_explicit():
    ids, oods = rng.normal(1, 1, 1000), rng.normal(0, 1, 1000)
    first = ood_metrics_at_base_rate(ids, oods, base_rate=5, repeats=6, seed=3)
    again = ood_metrics_at_base_rate(ids, oods, base_rate=5, repeats=6, seed=3)
    other = ood_metrics_at_base_rate(ids, oods, base_rate=5, repeats=6, seed=4)
    assert first == again and first != other
    assert (first["n_id"], first["n_ood"]) == (1000, 200) and first["aupr_out"]["std"] > 0
    full = ood_metrics(ids, oods)
    assert first["auroc"]["mean"] == pytest.approx(full["auroc"], abs=0.03)
    assert first["aupr_out"]["mean"] < full["aupr_out"]  # rarer OOD: lower precision
    few_id = ood_metrics_at_base_rate(ids[:100], oods, base_rate=5, repeats=2)
    assert (few_id["n_id"], few_id["n_ood"]) == (100, 20)


def test_base_rate_needs_a_draw_and_a_positive_rate():
    ids, oods = np.arange(50.0), np.arange(10.0)
    for base_rate, repeats in ((5.0, 0), (0.0, 10), (float("nan"), 10), (5.0, 2.5)):
        with pytest.raises(FgoodError, match="need a finite rate > 0 and at least one draw"):
            ood_metrics_at_base_rate(ids, oods, base_rate, repeats)


def test_bad_scores():
    with pytest.raises(FgoodError, match="OOD scores contain NaN or inf"):
        ood_metrics([1.0, 2.0], [0.0, np.nan])
    with pytest.raises(FgoodError, match="no ID scores"):
        ood_metrics([], [0.0])


# --------------------------------------------------------------------------------------------------
# The one-sort fast path against independent slow references, heavy ties and awkward floats included


def fpr95_per_threshold(id_scores, ood_scores, rule: str) -> float:
    """FPR95 by walking the distinct thresholds t one at a time, flagging score <= t.

    ``closest`` (the OE code, paper): of the thresholds up to full recall, the last one whose recall
    is closest to 0.95; ``first`` (sklearn's first ROC point with TPR >= 0.95, pytorch-ood)."""
    id_scores, ood_scores = np.asarray(id_scores, np.float64), np.asarray(ood_scores, np.float64)
    chosen, best_distance = None, np.inf
    for t in np.unique(np.r_[id_scores, ood_scores]):
        recall = np.count_nonzero(ood_scores <= t) / len(ood_scores)
        if rule == "first" and recall >= 0.95:
            chosen = t
            break
        if rule == "closest":
            distance = abs(recall - 0.95)
            if distance <= best_distance:
                chosen, best_distance = t, distance
            if recall == 1:
                break
    return np.count_nonzero(id_scores <= chosen) / len(id_scores)


def reference_metrics(id_scores, ood_scores, convention: str) -> dict:
    """Each convention from sklearn and the per-threshold or per-sample references above."""
    if convention == "mixoe-reference":
        return mixoe_reference(id_scores, ood_scores)
    if convention == "openood":
        return openood_reference(id_scores, ood_scores)
    is_ood = np.r_[np.zeros(len(id_scores)), np.ones(len(ood_scores))]
    scores = np.r_[id_scores, ood_scores].astype(np.float64)
    if convention == "paper":
        return {"fpr95": fpr95_per_threshold(id_scores, ood_scores, "closest"),
                "auroc": roc_auc_score(is_ood, -scores),
                "aupr_out": average_precision_score(is_ood, -scores),
                "aupr_in": average_precision_score(1 - is_ood, scores)}
    return {**openood_reference(id_scores, ood_scores), "fpr95": fpr95_per_threshold(id_scores, ood_scores, "first")}


def random_scores(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """ID and OOD scores of random sizes, mostly with heavy ties (few distinct values, shared by both)."""
    rng_ = np.random.default_rng(seed)
    n_id, n_ood = rng_.integers(1, 250, 2)
    shift = rng_.uniform(-1, 2)
    ids, oods = rng_.normal(shift, 1, n_id), rng_.normal(0, 1.3, n_ood)
    style = seed % 5
    if style == 1:  # rounded: a few dozen distinct values
        ids, oods = np.round(ids, 1), np.round(oods, 1)
    elif style == 2:  # integers from a tiny range
        ids, oods = np.round(ids * 1.5), np.round(oods * 1.5)
    elif style == 3:  # two distinct values, both signs of zero among them
        ids, oods = rng_.choice([-0.0, 0.0, 1.0], n_id), rng_.choice([-0.0, 0.0, 1.0], n_ood)
    elif style == 4:  # long straight runs: every value holds the same (ID, OOD) counts
        values = np.arange(rng_.integers(1, 40), dtype=float)
        ids, oods = np.repeat(values, rng_.integers(1, 4)), np.repeat(values, rng_.integers(1, 4))
    return ids, oods


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_random_heavy_ties_equal_the_references(convention):
    for seed in range(40):
        id_scores, ood_scores = random_scores(seed)
        ours, reference = ood_metrics(id_scores, ood_scores, convention), reference_metrics(id_scores, ood_scores, convention)
        for metric in METRICS:
            assert ours[metric] == pytest.approx(reference[metric], abs=1e-12), (seed, metric)


@pytest.mark.parametrize("block", [1, 3, 64])
def test_tie_groups_across_blocks(monkeypatch, block):
    """The passes before and after the sort go block by block: tiny blocks make tie groups, the
    95% points and the end points straddle block boundaries everywhere."""
    from fgood_bench import metrics

    monkeypatch.setattr(metrics, "_BLOCK", block)
    for seed in (1, 2, 3, 4, 6):
        id_scores, ood_scores = random_scores(seed)
        for convention in CONVENTIONS:
            ours, reference = ood_metrics(id_scores, ood_scores, convention), reference_metrics(id_scores, ood_scores, convention)
            for metric in METRICS:
                assert ours[metric] == pytest.approx(reference[metric], abs=1e-12), (seed, convention, metric)


def test_many_blocks_of_heavy_ties():
    """Default blocks, 10^5 scores on 61 distinct values: every block boundary falls inside a tie group."""
    rng_ = np.random.default_rng(7)
    id_scores, ood_scores = np.round(rng_.normal(1, 1, 40_000), 1), np.round(rng_.normal(0, 1, 60_000), 1)
    for convention in CONVENTIONS:
        ours, reference = ood_metrics(id_scores, ood_scores, convention), reference_metrics(id_scores, ood_scores, convention)
        for metric in METRICS:
            assert ours[metric] == pytest.approx(reference[metric], abs=1e-12), (convention, metric)


def test_float_ties_in_the_closest_rules():
    """In float arithmetic 47/50 and 48/50 lie equally far from 0.95: the OE code then takes the
    larger recall (its last point), calculate_log the larger TPR (its first point)."""
    ood = np.arange(1.0, 51.0)
    ids = np.array([47.5, 48.5])  # recall 47/50 flags 47.5 only; recall 48/50 flags both
    assert abs(47 / 50 - 0.95) == abs(48 / 50 - 0.95)
    assert ood_metrics(ids, ood)["fpr95"] == oe_code_fpr95(ids, ood) == 1.0
    ids, oods = np.arange(50.0), np.array([0.5, 1.5, 2.5, 10.0])
    # TPR 48/50: after the ID sample 1 leaves, 3 of the 4 OOD samples are still accepted (47/50: 2)
    assert ood_metrics(ids, oods, convention="mixoe-reference")["fpr95"] == mixoe_reference(ids, oods)["fpr95"] == 0.75


def tiny_magnitudes():
    """Subnormals, zeros of both signs and the largest floats, in both classes."""
    tiny, huge = np.nextafter(0.0, 1.0), np.finfo(np.float64).max
    ids = np.array([tiny, -tiny, 0.0, huge, 1e-300, -1e-300, 2 * tiny, huge])
    oods = np.array([-0.0, tiny, -huge, 1e300, -1e-300, 0.0, -huge, 3 * tiny])
    return ids, oods


def every_binade():
    """Powers of two of both signs over the whole float64 range: more than 2048 (sign, exponent)
    codes, too many for the one-sort key, so the slower stable sort handles them."""
    powers = 2.0 ** np.arange(-1074, 1024)
    pool = np.r_[powers, -powers, 0.0]
    picks = np.random.default_rng(5).choice(pool, 300)
    return np.r_[pool[::2], picks[:150]], np.r_[pool[1::2], picks[150:]]


EDGE_CASES = {
    "one id, one ood below": (np.array([1.0]), np.array([0.0])),
    "one id, one ood above": (np.array([0.0]), np.array([1.0])),
    "one id, one ood tied": (np.array([0.25]), np.array([0.25])),
    "one id among many": (np.array([0.5]), np.linspace(0, 1, 41)),
    "one ood among many": (np.linspace(0, 1, 41), np.array([0.5])),
    "all equal": (np.full(7, -3.5), np.full(11, -3.5)),
    "zeros of both signs": (np.array([-0.0, 0.0, -0.0, 1.0]), np.array([0.0, -0.0, -1.0])),
    "huge and tiny": tiny_magnitudes(),
    "every binade": every_binade(),
}


@pytest.mark.parametrize("case", EDGE_CASES)
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_edge_cases_equal_the_references(case, convention):
    id_scores, ood_scores = EDGE_CASES[case]
    ours = ood_metrics(id_scores, ood_scores, convention)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on degenerate curves (e.g. nothing below)
        reference = reference_metrics(id_scores, ood_scores, convention)
    for metric in METRICS:
        assert ours[metric] == pytest.approx(reference[metric], abs=1e-12), metric


def test_every_binade_takes_the_stable_sort(monkeypatch):
    """The edge case above must exercise the fallback, and typical scores the one-sort key."""
    from fgood_bench import metrics

    calls, ranked_keys = [], metrics._ranked_keys
    monkeypatch.setattr(metrics, "_ranked_keys", lambda *args: calls.append(args) or ranked_keys(*args))
    ood_metrics(*every_binade())
    assert len(calls) == 1
    ood_metrics(*tiny_magnitudes())
    ood_metrics(*CASES["random"])
    assert len(calls) == 1


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_zero_signs_order_and_dtype_do_not_matter_and_inputs_stay(convention):
    id_scores, ood_scores = random_scores(3)  # holds -0.0 and 0.0 in both classes
    reference = ood_metrics(np.abs(id_scores), np.abs(ood_scores), convention)  # every zero +0.0
    shuffled = np.random.default_rng(1)
    assert ood_metrics(shuffled.permutation(id_scores), shuffled.permutation(ood_scores), convention) == reference
    assert ood_metrics(list(id_scores), list(ood_scores), convention) == reference
    kept = id_scores.copy()
    ood_metrics(id_scores, ood_scores, convention)
    assert np.signbit(kept).any() and np.array_equal(id_scores.view(np.int64), kept.view(np.int64))  # -0.0 kept
    id32, ood32 = CASES["float32 ties"][0][:500], CASES["float32 ties"][1][:500]
    assert ood_metrics(id32, ood32, convention) == ood_metrics(id32.astype(np.float64), ood32.astype(np.float64), convention)
