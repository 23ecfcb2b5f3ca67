import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from fgood_bench.errors import FgoodError
from fgood_bench.metrics import CONVENTION, ood_metrics, ood_metrics_at_base_rate


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
}


@pytest.mark.parametrize("case", CASES)
def test_equal_to_sklearn(case):
    id_scores, ood_scores = CASES[case]
    ours, reference = ood_metrics(id_scores, ood_scores), sklearn_metrics(id_scores, ood_scores)
    for metric in reference:
        assert ours[metric] == pytest.approx(reference[metric], abs=1e-9), metric


def test_degenerate_values():
    assert ood_metrics(*CASES["separated"]) == {"fpr95": 0.0, "auroc": 1.0, "aupr_out": 1.0, "aupr_in": 1.0}
    reversed_ = ood_metrics(*CASES["reversed"])
    assert reversed_["fpr95"] == 1.0 and reversed_["auroc"] == 0.0
    equal = ood_metrics(*CASES["all equal"])
    assert equal == pytest.approx({"fpr95": 1.0, "auroc": 0.5, "aupr_out": 70 / 120, "aupr_in": 50 / 120}, abs=1e-12)


def test_fpr95_by_hand():
    ood = np.arange(1.0, 21.0)  # 95% of 20 OOD samples: the 19 lowest, threshold 19
    ids = np.array([5.0, 18.5, 19.0, 19.5, 30.0])  # flagged (<= 19): 5, 18.5 and the tie 19
    assert ood_metrics(ids, ood)["fpr95"] == pytest.approx(3 / 5)
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


def test_bad_scores():
    with pytest.raises(FgoodError, match="OOD scores contain NaN or inf"):
        ood_metrics([1.0, 2.0], [0.0, np.nan])
    with pytest.raises(FgoodError, match="no ID scores"):
        ood_metrics([], [0.0])
