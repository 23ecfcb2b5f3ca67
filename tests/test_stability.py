"""Split stability: several rankings give a consensus by mean S(c) and a stability.json with the
expected Jaccard indices, membership changes and boundary margin."""

import json

import numpy as np
import pytest

from conftest import run_cli, write_predictions
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.ranking.scores import ClassScores, border_gap
from fgood_bench.ranking.stability import stability_report

TINY = ["--arch", "resnet18", "--weights", "none", "--image-size", "32", "--batch-size", "8", "--workers", "0"]


def scores_of(values) -> ClassScores:
    """A ranking whose S(c) are ``values`` (accuracy 1, entropy 1 - S)."""
    values = np.asarray(values, float)
    return ClassScores(num_test=np.full(values.size, 4), accuracy=np.ones(values.size), mean_entropy=1 - values)


def test_report_by_hand():
    # Class 0 and 1 always lead, class 2 and 3 swap at the K=3 boundary, class 4 always last.
    a = scores_of([0.9, 0.8, 0.5, 0.4, 0.1])
    b = scores_of([0.9, 0.8, 0.3, 0.6, 0.1])
    c = scores_of([0.9, 0.8, 0.5, 0.3, 0.1])
    report = stability_report([a, b, c], ["c0", "c1", "c2", "c3", "c4"], 3, [{}, {}, {}])
    assert report["num_rankings"] == 3
    # top-3 sets {0,1,2}, {0,1,3}, {0,1,2}: Jaccard 2/4, 1, 2/4
    assert report["mean_jaccard"] == pytest.approx(2 / 3) and report["min_jaccard"] == pytest.approx(0.5)
    assert [c["index"] for c in report["classes"]] == [0, 1, 2, 3, 4]  # mean S: .9 .8 .433 .433 .1, tie -> lower index
    assert [(m["name"], m["times_id"], m["consensus_role"]) for m in report["membership_changes"]] == [
        ("c2", 2, "id"), ("c3", 1, "ood")]
    by_name = {c["name"]: c for c in report["classes"]}
    assert by_name["c3"]["score_mean"] == pytest.approx(1.3 / 3)
    assert by_name["c3"]["score_std"] == pytest.approx(np.std([0.4, 0.6, 0.3], ddof=1))
    assert (by_name["c3"]["rank_min"], by_name["c3"]["rank_max"]) == (3, 4)
    pooled = np.sqrt(np.mean([0, 0, np.var([0.5, 0.3, 0.5], ddof=1), np.var([0.4, 0.6, 0.3], ddof=1), 0]))
    assert report["pooled_std"] == pytest.approx(pooled)
    assert report["boundary_margin_sigma"] == pytest.approx((1.3 / 3 - 1.3 / 3) / pooled, abs=1e-12)
    single = stability_report([a], ["c0", "c1", "c2", "c3", "c4"], 3, [{}])
    assert single["mean_jaccard"] == 1.0 and single["boundary_margin_sigma"] is None and single["membership_changes"] == []


def test_several_predictions_files_rank_by_the_mean_score(dozen_birds, tmp_path, capsys):
    # Three classifiers, all correct (S = -entropy): they agree on classes 0..5 as the best six and
    # disagree on the order of 6..11; ranking 3 promotes class 11 into the top 8.
    confidences = [
        {c: 0.9 - 0.05 * c for c in range(12)},
        {c: 0.9 - 0.05 * c + (0.02 if c in (7, 9) else 0) for c in range(12)},
        {c: 0.9 - 0.05 * c + (0.4 if c == 11 else 0) for c in range(12)},
    ]
    files = []
    for i, confidence in enumerate(confidences):
        write_predictions(tmp_path / f"p{i}.npz", dozen_birds, confidence)
        files += ["--predictions", tmp_path / f"p{i}.npz"]
    for out in ("a", "b"):
        status, stdout, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / out, "--num-id", "8",
                                      *files, capsys=capsys)
        assert status == 0, err
    folder = tmp_path / "a" / "bird"
    for name in ("manifest.json", "stability.json", "ranking.csv", "predictions.npz", "splits/id_test.txt"):
        assert (folder / name).read_bytes() == (tmp_path / "b" / "bird" / name).read_bytes(), name
    manifest = Manifest.load(stdout.strip()).data  # still fits the schema
    stability = json.loads((folder / "stability.json").read_text())

    def entropy(p):
        q = np.full(12, (1 - p) / 11)
        q[0] = p
        return -(q * np.log(q)).sum()

    mean_score = [np.mean([-entropy(conf[c]) for conf in confidences]) for c in range(12)]
    expected = sorted(range(12), key=lambda c: (-mean_score[c], c))
    assert [c["index"] for c in manifest["ranking"]["classes"]] == expected
    assert [c["index"] for c in stability["classes"]] == expected
    assert [c["index"] for c in manifest["id_classes"]] == sorted(expected[:8])
    # top-8 sets: {0..7}, {0..7}, {0..6, 11}: Jaccard 1, 7/9, 7/9
    assert stability["num_rankings"] == 3
    assert stability["min_jaccard"] == pytest.approx(7 / 9) and stability["mean_jaccard"] == pytest.approx((1 + 14 / 9) / 3)
    changing = {m["index"]: m["times_id"] for m in stability["membership_changes"]}
    assert changing == {7: 2, 11: 1}
    stds = np.array([c["score_std"] for c in stability["classes"]])
    gap = mean_score[expected[7]] - mean_score[expected[8]]
    assert stability["boundary_margin_sigma"] == pytest.approx(gap / np.sqrt(np.mean(stds ** 2)))
    # the raw gap is what release.json and the build summary call boundary_margin: one value, one name
    assert stability["boundary"]["score_gap"] == pytest.approx(gap)
    assert border_gap(manifest["ranking"]["classes"], 8) == pytest.approx(gap)
    assert f"S(c) margin at the border: {gap:.4f}" in err
    recorded = manifest["provenance"]["stability"]
    assert recorded["min_jaccard"] == stability["min_jaccard"] and "boundary_margin" not in recorded
    assert recorded["boundary_margin_sigma"] == stability["boundary_margin_sigma"]
    assert manifest["predictions"]["source"]["kind"] == "consensus"
    assert len(manifest["predictions"]["source"]["rankings"]) == 3
    with np.load(folder / "predictions.npz") as saved:
        assert saved["logits"].shape == (3, 48, 12)
    assert (folder / "stability.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_seeds_train_one_ranking_each(dozen_birds, tmp_path, capsys):
    status, out, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path, "--num-id", "8",
                               "--epochs", "1", "--seeds", "2", *TINY, capsys=capsys)
    assert status == 0, err
    manifest = json.loads((tmp_path / "bird" / "manifest.json").read_text())
    sources = manifest["predictions"]["source"]["rankings"]
    assert [(s["arch"], s["seed"]) for s in sources] == [("resnet18", 0), ("resnet18", 1)]
    assert (tmp_path / "bird.work" / "resnet18-seed1" / "classifier.pt").is_file()
    assert json.loads((tmp_path / "bird" / "stability.json").read_text())["num_rankings"] == 2
    status, _, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "x", "--num-id", "8",
                             "--seeds", "2", "--checkpoint", tmp_path / "bird.work" / "resnet18-seed1" / "classifier.pt",
                             *TINY, capsys=capsys)
    assert status == 2 and "cannot be combined with --predictions or --checkpoint" in err


def test_border_gap_is_the_kth_minus_the_next_score():
    ranked = [{"score": 0.9}, {"score": 0.5}, {"score": 0.2}]
    assert border_gap(ranked, 1) == pytest.approx(0.4) and border_gap(ranked, 2) == pytest.approx(0.3)
    assert border_gap(ranked, 3) is None and border_gap(ranked, 0) is None and border_gap([], 1) is None
