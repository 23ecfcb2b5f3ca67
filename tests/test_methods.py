"""Training objectives against hand computations; every method end to end on the CPU."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from conftest import run_cli
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.training.methods import (
    Hyper, cutmix_box, energy_regulariser, method_loss, mix, mixed_target, rotations, soft_cross_entropy,
    uniform_cross_entropy,
)
from fgood_bench.training.models import load_classifier

LOGITS = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]])


def log_softmax_by_hand(row):
    total = math.log(sum(math.exp(v) for v in row))
    return [v - total for v in row]


def test_losses_by_hand():
    rows = [log_softmax_by_hand(r) for r in LOGITS.tolist()]
    target = torch.tensor([[0.7, 0.2, 0.1], [0.0, 0.0, 1.0]])
    expected = -(sum(t * l for t, l in zip(target[0].tolist(), rows[0])) + rows[1][2]) / 2
    assert soft_cross_entropy(LOGITS, target).item() == pytest.approx(expected)
    assert uniform_cross_entropy(LOGITS).item() == pytest.approx(-(sum(rows[0]) / 3 + sum(rows[1]) / 3) / 2)
    energy_in = [-math.log(sum(math.exp(v) for v in r)) for r in LOGITS.tolist()]
    m_in, m_out = -2.0, 0.0
    expected = np.mean([max(0, e - m_in) ** 2 for e in energy_in]) + np.mean([max(0, m_out - e) ** 2 for e in energy_in])
    assert energy_regulariser(LOGITS, LOGITS, m_in, m_out).item() == pytest.approx(expected)
    assert mixed_target(torch.tensor([1]), 0.7, 4)[0].tolist() == pytest.approx([0.075, 0.775, 0.075, 0.075])


def test_cutmix_share_is_the_exact_pixel_ratio():
    generator = torch.Generator().manual_seed(3)
    x_id, x_out = torch.zeros(2, 3, 10, 20), torch.ones(2, 3, 10, 20)
    for lam in (0.2, 0.5, 0.9):
        mixed, share = mix(x_id, x_out, lam, "cutmix", generator)
        assert share == pytest.approx(1 - mixed[0, 0].mean().item())  # the outlier box holds the ones
        assert torch.equal(mixed[0], mixed[1])
    top, bottom, left, right = cutmix_box(10, 20, 0.75, torch.Generator().manual_seed(0))
    assert 0 <= top <= bottom <= 10 and 0 <= left <= right <= 20
    mixed, share = mix(x_id, x_out, 0.3, "mixup", generator)
    assert share == 0.3 and torch.allclose(mixed, torch.full_like(mixed, 0.7))


class Tiny(nn.Module):
    def __init__(self, classes=3):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(12, classes)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_mixupoe_loss_by_hand_and_lam_from_beta():
    net, generator = Tiny(), torch.Generator().manual_seed(0)
    x_id, x_out, y = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 1])
    hyper = Hyper(beta=5.0, alpha=1.0)
    torch.manual_seed(11)
    loss, logs = method_loss("mixupoe", net, x_id, y, x_out, 3, hyper, generator)
    torch.manual_seed(11)
    lam = torch.distributions.Beta(1.0, 1.0).sample().item()
    expected = nn.functional.cross_entropy(net(x_id), y) + 5.0 * soft_cross_entropy(
        net(lam * x_id + (1 - lam) * x_out), lam * nn.functional.one_hot(y, 3).float() + (1 - lam) / 3)
    assert logs["lam"] == pytest.approx(lam) and loss.item() == pytest.approx(expected.item())
    lams = [method_loss("mixupoe", net, x_id, y, x_out, 3, Hyper(alpha=2.0), generator)[1]["lam"] for _ in range(400)]
    assert np.mean(lams) == pytest.approx(0.5, abs=0.04) and np.var(lams) == pytest.approx(1 / 20, abs=0.015)  # Beta(2, 2)
    coarse = [method_loss("mixupoe", net, x_id, y, x_out, 3, Hyper(alpha=1.0, coarse=True), generator)[1]["lam"] for _ in range(200)]
    assert max(coarse) <= 0.5


def test_oe_and_energy_oe_losses_by_hand():
    net = Tiny()
    x_id, x_out, y = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 1])
    ce = nn.functional.cross_entropy(net(x_id), y)
    loss, _ = method_loss("oe", net, x_id, y, x_out, 3, Hyper(beta=2.0), torch.Generator())
    assert loss.item() == pytest.approx((ce + 2.0 * uniform_cross_entropy(net(x_out))).item(), rel=1e-6)
    loss, _ = method_loss("energy-oe", net, x_id, y, x_out, 3, Hyper(), torch.Generator())
    assert loss.item() == pytest.approx((ce + 0.1 * energy_regulariser(net(x_id), net(x_out), -15, -5)).item(), rel=1e-6)


def test_rotations_and_hyperparameter_checks():
    x = torch.arange(8.0).view(2, 1, 2, 2)
    rotated, labels = rotations(x)
    assert rotated.shape == (8, 1, 2, 2) and labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert torch.equal(rotated[2], torch.rot90(x[0], 1, dims=(-2, -1)))
    from fgood_bench.errors import FgoodError

    for bad, message in ((Hyper(alpha=0), "must be > 0"), (Hyper(beta=-1), "--beta must be >= 0")):
        with pytest.raises(FgoodError, match=message):
            bad.check()


TINY = ["--arch", "resnet18", "--weights", "none", "--image-size", "32", "--batch-size", "8", "--workers", "0"]


@pytest.fixture(scope="module")
def bench(dozen_birds, bird_benchmark):
    from fgood_bench.cli import main

    base, places = bird_benchmark["base"], bird_benchmark["places"]
    assert main(["train", "--method", "standard", "--manifest", str(base / "out" / "bird"), "--root", str(dozen_birds),
                 "--out", str(base / "standard-for-methods"), "--epochs", "1", *TINY]) == 0
    return {"base": base, "root": dozen_birds, "places": places}


def outlier_args(bench):
    return ["--outliers", bench["base"] / "out" / "places365", "--outlier-root", bench["places"], "--outlier-batch-size", "8"]


@pytest.mark.parametrize("method", ["oe", "energy-oe", "mixupoe", "rotation"])
def test_every_method_writes_a_loadable_checkpoint(method, bench, tmp_path, capsys):
    extra = [] if method == "rotation" else [*outlier_args(bench), "--init", bench["base"] / "standard-for-methods" / "classifier.pt"]
    status, out, err = run_cli("train", "--method", method, "--manifest", bench["base"] / "out" / "bird", "--root", bench["root"],
                               "--out", tmp_path, "--max-steps", "2", *extra, *TINY, capsys=capsys)
    assert status == 0, err
    model, payload = load_classifier(out.strip(), 8)
    assert payload["method"] == method and payload["classes"] == Manifest.load(bench["base"] / "out" / "bird").id_class_names
    assert payload["epochs"] == (60 if method == "rotation" else 10)  # the bird preset / OE-style fine-tuning
    assert hasattr(model, "rotation_head") == (method == "rotation")
    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 2 and "mean_loss" in log[-1]


def test_resume_continues_with_identical_state(bench, tmp_path, capsys):
    args = ["train", "--method", "mixupoe", "--manifest", bench["base"] / "out" / "bird", "--root", bench["root"],
            "--init", bench["base"] / "standard-for-methods" / "classifier.pt", "--epochs", "2", *outlier_args(bench), *TINY]
    assert run_cli(*args, "--out", tmp_path / "whole", capsys=capsys)[0] == 0
    assert run_cli(*args, "--out", tmp_path / "cut", "--max-steps", "6", capsys=capsys)[0] == 0  # stops after epoch 1
    state = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert state["epochs_done"] == 1 and state["outlier_position"] == 6 * 8
    assert run_cli(*args, "--out", tmp_path / "cut", "--resume", capsys=capsys)[0] == 0
    whole = torch.load(tmp_path / "whole" / "classifier.pt", weights_only=True)["state_dict"]
    resumed = torch.load(tmp_path / "cut" / "classifier.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_bad_training_inputs(bench, tmp_path, capsys):
    base = bench["base"]
    common = ["--manifest", base / "out" / "bird", "--root", bench["root"], "--out", tmp_path, *TINY]
    status, _, err = run_cli("train", "--method", "mixupoe", *common, "--init", base / "standard-for-methods" / "classifier.pt",
                             "--alpha", "0", *outlier_args(bench), capsys=capsys)
    assert status == 2 and "--alpha and --alpha-in-in must be > 0" in err
    status, _, err = run_cli("train", "--method", "oe", *common, "--init", base / "standard-for-methods" / "classifier.pt", capsys=capsys)
    assert status == 2 and "needs --outliers" in err
    status, _, err = run_cli("train", "--method", "oe", *common, *outlier_args(bench), capsys=capsys)
    assert status == 2 and "give --init CHECKPOINT, or --from-scratch" in err
    status, _, _ = run_cli("build-ood-set", "cub", "--root", bench["root"], "--out", tmp_path, "--name", "leak", capsys=capsys)
    status, _, err = run_cli("train", "--method", "oe", *common, "--from-scratch", "--outliers", tmp_path / "leak", capsys=capsys)
    assert status == 2 and "the outlier set contains" in err and "images of the benchmark" in err


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(bench, tmp_path):
    """Same global batches, outlier pairs, lam and jitter on 1 or 2 processes: with a model without
    BatchNorm or dropout (ViT-B/16), the weights after two MixupOE steps agree."""
    base = bench["base"]
    args = ["train", "--method", "mixupoe", "--manifest", str(base / "out" / "bird"), "--root", str(bench["root"]),
            "--from-scratch", "--arch", "vit_b_16", "--weights", "none", "--image-size", "32", "--batch-size", "8",
            "--workers", "0", "--max-steps", "2", "--outliers", str(base / "out" / "places365"), "--outlier-root",
            str(bench["places"]), "--outlier-batch-size", "8"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "fgood_bench", *args, "--out", str(tmp_path / "one")], capture_output=True, text=True, env=env)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "fgood_bench",
                          *args, "--out", str(tmp_path / "two")], capture_output=True, text=True, env=env)
    assert two.returncode == 0, two.stderr
    a = torch.load(tmp_path / "one" / "classifier.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "two" / "classifier.pt", weights_only=True)["state_dict"]
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-4, atol=1e-5), key


def test_synthetic_validation_outliers(bench, tmp_path, capsys):
    base = bench["base"]
    outputs = []
    for name in ("a", "b"):
        status, out, err = run_cli("build-ood-set", "synthetic-val", "--manifest", base / "out" / "bird", "--root", bench["root"],
                                   "--out", tmp_path / name, "--size", "2", "--image-size", "16", "--seed", "5", capsys=capsys)
        assert status == 0, err
        outputs.append(Manifest.load(out.strip()))
    rows = outputs[0].split("ood_test")
    assert len(rows) == 16 and sorted(set(rows.class_names)) == sorted(
        ["gaussian", "rademacher", "blobs", "arithmetic_mean", "geometric_mean", "speckle", "inverted", "pixelated"])
    images = tmp_path / "a" / "synthetic-val" / "images"
    assert all((images / p).read_bytes() == (tmp_path / "b" / "synthetic-val" / "images" / p).read_bytes() for p in rows.paths)
    from PIL import Image

    assert Image.open(images / rows.paths[0]).size == (16, 16)
    status, _, err = run_cli("verify", tmp_path / "a" / "synthetic-val", "--root", images, "--images", capsys=capsys)
    assert status == 0, err


def test_paper_hyperparameter_presets():
    from fgood_bench.training.train import paper_hyper

    assert (paper_hyper("bird", {}).beta, paper_hyper("dog", {}).beta) == (5.0, 1.0)
    inet = paper_hyper("inet-a", {}, "mixupoe")
    assert (inet.alpha, inet.beta, inet.coarse, inet.m_in, inet.energy_weight) == (0.4, 5.0, True, -27.0, 0.05)
    assert paper_hyper("inet-b", {}, "oe").beta == 0.5
    assert paper_hyper("dog", {"beta": 2.0, "alpha": None}).beta == 2.0
