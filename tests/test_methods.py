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

from pathlib import Path

from conftest import run_cli
from fgood_bench.cli import main
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.training.methods import (
    Hyper, cutmix_box, energy_regulariser, method_loss, mix, mixed_target, rotations, soft_cross_entropy,
    uniform_cross_entropy,
)
from fgood_bench.tools.models import load_classifier

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


class Counting(Tiny):
    """Tiny, recording the batch size of every forward pass."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(len(x))
        return super().forward(x)


def test_oe_and_energy_oe_use_every_outlier_of_the_step():
    """4 ID images and 8 outliers: the outlier terms average over all 8 and the network sees 12 images."""
    net = Counting()
    x_id, x_out, y = torch.randn(4, 3, 2, 2), torch.randn(8, 3, 2, 2), torch.tensor([0, 1, 2, 1])
    with torch.no_grad():
        ce = nn.functional.cross_entropy(net.fc(x_id.flatten(1)), y)
        logits_out = net.fc(x_out.flatten(1))
        uniform_ce = np.mean([-np.mean(log_softmax_by_hand(row)) for row in logits_out.tolist()])
        logits_in = net.fc(x_id.flatten(1))
    loss, _ = method_loss("oe", net, x_id, y, x_out, 3, Hyper(beta=2.0), torch.Generator())
    assert net.seen == [12]
    assert loss.item() == pytest.approx(ce.item() + 2.0 * uniform_ce, rel=1e-6)
    net.seen.clear()
    loss, _ = method_loss("energy-oe", net, x_id, y, x_out, 3, Hyper(m_in=-1.0, m_out=1.0), torch.Generator())
    energy_in = -torch.logsumexp(logits_in, 1)
    energy_out = -torch.logsumexp(logits_out, 1)  # all 8
    expected = ce + 0.1 * ((energy_in + 1.0).relu().pow(2).mean() + (1.0 - energy_out).relu().pow(2).mean())
    assert net.seen == [12] and loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_mixupoe_pairs_each_id_image_with_one_outlier():
    """Every outlier is drawn (Appendix H.2) and mixed with ID image j mod B (tests/test_mixupoe_pairing.py);
    eq. (2)'s OOD term averages over the same outliers."""
    from fgood_bench.training.methods import outliers_per_step

    assert outliers_per_step("mixupoe", Hyper(), 4, 8) == 8
    assert outliers_per_step("mixupoe", Hyper(beta_out=1.0), 4, 8) == 8
    assert outliers_per_step("mixupoe", Hyper(), 4, 2) == 2
    assert outliers_per_step("oe", Hyper(), 4, 8) == outliers_per_step("energy-oe", Hyper(), 4, 8) == 8
    net = Counting()
    x_id, x_out, y = torch.randn(4, 3, 2, 2), torch.randn(8, 3, 2, 2), torch.tensor([0, 1, 2, 1])
    torch.manual_seed(5)
    loss, logs = method_loss("mixupoe", net, x_id, y, x_out, 3, Hyper(beta=5.0, beta_out=0.5), torch.Generator())
    lam = logs["lam"]
    with torch.no_grad():
        expected = (nn.functional.cross_entropy(net.fc(x_id.flatten(1)), y)
                    + 5.0 * soft_cross_entropy(net.fc((lam * x_id.repeat(2, 1, 1, 1) + (1 - lam) * x_out).flatten(1)),
                                               mixed_target(y.repeat(2), lam, 3))
                    + 0.5 * uniform_cross_entropy(net.fc(x_out.flatten(1))))
    assert net.seen == [4, 8, 8] and loss.item() == pytest.approx(expected.item(), rel=1e-6)


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

    assert Image.open(images / rows.paths[0]).size == (18, 18)  # the frame a 16 px crop is resized to (16 * 512 / 448)
    status, _, err = run_cli("verify", tmp_path / "a" / "synthetic-val", "--root", images, "--images", capsys=capsys)
    assert status == 0, err


def test_validation_outliers_reach_the_network_with_the_oe_codes_statistics(bench, tmp_path, capsys):
    """Issue 23 item 1: measured through evaluate's own path (its decoding, resize, crop and
    normalisation, read back by a score function), each noise has OE's values: Gaussian
    clip(N(0, 0.5), -1, 1) (std 0.48, not the 0.32 that a resize of crop-sized noise leaves),
    Rademacher +-1, Blobs -1 or at least 0.5."""
    import fgood_bench

    base = bench["base"]
    status, out, err = run_cli("build-ood-set", "synthetic-val", "--manifest", base / "out" / "bird", "--root", bench["root"],
                               "--out", tmp_path, "--size", "6", "--image-size", "16", "--seed", "2", capsys=capsys)
    assert status == 0, err
    val = Manifest.load(out.strip())
    seen = []

    def record(inputs):
        seen.append(inputs.detach().cpu().numpy())
        return inputs.mean(dim=(1, 2, 3))

    fgood_bench.evaluate_scores(record, base / "out" / "bird", bench["root"], ood=["holdout", f"val={val.path.parent}"],
                                ood_roots={"val": val.path.parent / "images"}, image_size=16, workers=0, batch_size=3)
    inputs = np.concatenate(seen)[-len(val.split("ood_test")):]  # the validation outliers are scored last
    assert inputs.shape[1:] == (3, 16, 16)
    kinds = np.asarray(val.split("ood_test").class_names)
    quantum = 1.01 / 255 / 0.224  # one grey level, normalised
    gaussian, rademacher, blobs = (inputs[kinds == kind] for kind in ("gaussian", "rademacher", "blobs"))
    clipped = np.clip(np.random.default_rng(1).normal(0, 0.5, 10**6), -1, 1)
    assert gaussian.std() == pytest.approx(clipped.std(), abs=0.02) and np.abs(gaussian).max() <= 1 + quantum
    assert np.all(np.abs(np.abs(rademacher) - 1) <= quantum)
    assert np.all((np.abs(blobs + 1) <= quantum) | ((blobs >= 0.5 - quantum) & (blobs <= 1 + quantum)))
    assert (np.abs(blobs + 1) <= quantum).any() and (blobs > 0).any()


def test_paper_hyperparameter_presets():
    from fgood_bench.training.train import paper_hyper

    assert (paper_hyper("bird", {}).beta, paper_hyper("dog", {}).beta) == (5.0, 1.0)
    inet = paper_hyper("inet-a", {}, "mixupoe")
    assert (inet.alpha, inet.beta, inet.coarse, inet.m_in, inet.energy_weight) == (0.4, 5.0, True, -27.0, 0.05)
    assert paper_hyper("inet-b", {}, "oe").beta == 0.5
    assert paper_hyper("dog", {"beta": 2.0, "alpha": None}).beta == 2.0


def test_gaussian_validation_noise_is_the_oe_codes():
    """OE's CIFAR/test.py: N(0, sigma=0.5) clipped to [-1, 1] in the network's normalised input
    space; the image, normalised as the models normalise it, gives that noise back."""
    from fgood_bench.manifests.ood_set import synthetic_outlier
    from fgood_bench.tools.images import IMAGENET_MEAN, IMAGENET_STD

    rng = np.random.default_rng(0)
    pixels = synthetic_outlier("gaussian", [np.zeros((64, 64, 3))], rng)
    assert pixels.min() >= 0 and pixels.max() <= 1
    z = (pixels - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert np.abs(z).max() <= 1 + 1e-9 and abs(z.mean()) < 0.02
    clipped = np.clip(np.random.default_rng(1).normal(0, 0.5, 10**6), -1, 1)
    assert z.std() == pytest.approx(clipped.std(), abs=0.01)
    assert np.mean(np.isclose(np.abs(z), 1)) == pytest.approx(np.mean(np.abs(clipped) == 1), abs=0.01)  # ~4.6% clipped


def test_recipes_cite_the_paper_and_the_reference():
    """Appendix D.1 / H.2 values, and the MixOE reference's where the paper is silent."""
    from fgood_bench.tools.loop import TrainConfig
    from fgood_bench.paper import FINE_GRAINED, INET, recipe_for
    from fgood_bench.training.train import recipe_config

    assert recipe_for("bird") is FINE_GRAINED and recipe_for("inet-a") is recipe_for("inet-b") is INET
    standard = recipe_config(FINE_GRAINED, "standard", False, {})
    assert (standard.arch, standard.weights, standard.lr, standard.batch_size, standard.image_size, standard.resize_mode,
            standard.weight_decay) == ("resnet50", "IMAGENET1K_V1", 1e-3, 32, 448, "square", 1e-5)
    assert recipe_config(FINE_GRAINED, "rotation", False, {}).batch_size == 16  # D.1
    assert Hyper().rotation_weight == 1.0 and TrainConfig().weights == "IMAGENET1K_V1" and TrainConfig().weight_decay == 1e-5
    inet = recipe_config(INET, "standard", False, {"batch_size": 8, "arch": None})
    assert (inet.arch, inet.weights, inet.lr, inet.batch_size, inet.image_size, inet.resize_mode, inet.weight_decay) == (
        "resnet18", None, 0.1, 8, 224, "shorter", 1e-4)  # H.2 "common practice on ImageNet": torchvision's recipe
    assert recipe_config(INET, "mixupoe", True, {}).weight_decay == 1e-5  # fine-tuning: the reference's value
    assert recipe_config(FINE_GRAINED, "mixupoe", True, {}).weight_decay == 1e-5
    tuned = recipe_config(INET, "rotation", True, {})
    assert (tuned.lr, tuned.batch_size, INET.epochs, INET.fine_tune_epochs, INET.outlier_batch_size) == (1e-3, 256, 90, 10, 512)
    assert "rotation" in INET.fine_tuned and "rotation" not in FINE_GRAINED.fine_tuned


def test_outliers_drawn_per_step_follow_the_method(bench, tmp_path, capsys):
    """OE and MixupOE draw (and use) every outlier asked for (Appendix H.2: 512 outliers with 256 ID images)."""
    init = bench["base"] / "standard-for-methods" / "classifier.pt"
    common = ["--manifest", bench["base"] / "out" / "bird", "--root", bench["root"], "--init", init, "--max-steps", "1",
              "--outliers", bench["base"] / "out" / "places365", "--outlier-root", bench["places"], "--outlier-batch-size", "16", *TINY]
    drawn = {}
    for name, extra in (("oe", []), ("mixupoe", []), ("mixupoe-out", ["--beta-out", "0.5"])):
        status, out, err = run_cli("train", "--method", name.split("-")[0], "--out", tmp_path / name, *extra, *common, capsys=capsys)
        assert status == 0, err
        drawn[name] = torch.load(out.strip(), weights_only=True)["outliers_per_step"]
        state = torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)
        # a checkpoint mid-epoch keeps the epoch's start position and the step (resume skips that many draws)
        assert state["step"] == 1 and state["outlier_position"] % drawn[name] == 0
    assert drawn == {"oe": 16, "mixupoe": 16, "mixupoe-out": 16}


def test_rotation_uses_the_papers_batch_and_fine_grained_rotation_refuses_init(bench, tmp_path, capsys):
    tiny = [a for a in TINY if a not in ("--batch-size", "8")]
    common = ["--manifest", bench["base"] / "out" / "bird", "--root", bench["root"], "--max-steps", "1", *tiny]
    status, out, err = run_cli("train", "--method", "rotation", "--out", tmp_path / "rot", *common, capsys=capsys)
    assert status == 0, err
    payload = torch.load(out.strip(), weights_only=True)
    assert payload["training"]["batch_size"] == 16 and payload["hyper"]["rotation_weight"] == 1.0
    assert payload["recipe"] == "fine-grained" and payload["resize_mode"] == "square"
    status, _, err = run_cli("train", "--method", "rotation", "--out", tmp_path / "rot2", *common,
                             "--init", bench["base"] / "standard-for-methods" / "classifier.pt", capsys=capsys)
    assert status == 2 and "drop --init" in err
    # OE fine-tunes the standard model, not a rotation one (whose extra head it would carry along unused)
    status, _, err = run_cli("train", "--method", "oe", "--out", tmp_path / "oe", *common, *outlier_args(bench),
                             "--init", out.strip(), capsys=capsys)
    assert status == 2 and "a rotation model (it has a rotation head)" in err and err.count("\n") == 1


@pytest.fixture(scope="module")
def inet_a(tmp_path_factory):
    from fgood_bench.datasets import synthetic

    base = tmp_path_factory.mktemp("inet")
    root = synthetic.write_sample("imagenet", base)
    inet = Path(__file__).parents[1] / "manifests" / "inet"
    assert main(["build-splits", "--dataset", "imagenet", "--name", "inet-a", "--root", str(root), "--out", str(base / "out"),
                 "--id-classes", str(inet / "inet_a.tsv"), "--ood-classes", str(inet / "inet_b.tsv")]) == 0
    return {"manifest": base / "out" / "inet-a", "root": root}


def test_inet_recipe_trains_from_scratch_and_refuses_imagenet_weights(inet_a, tmp_path, capsys):
    """Appendix H.2: ResNet-18 from scratch, 90 epochs at lr 0.1, shorter side 256 -> 224; Rotation
    fine-tunes. ImageNet weights have seen INet-B: refused unless forced."""
    common = ["--manifest", inet_a["manifest"], "--root", inet_a["root"], "--max-steps", "1", "--workers", "0"]
    small = ["--image-size", "32", "--batch-size", "8"]
    status, _, err = run_cli("train", "--method", "standard", "--out", tmp_path / "leak", *common, *small,
                             "--weights", "IMAGENET1K_V1", capsys=capsys)
    assert status == 2 and "have seen inet-a's OOD classes" in err and "--allow-pretrained-leak" in err
    assert "Traceback" not in err and not (tmp_path / "leak").exists()
    import torchvision

    weights = tmp_path / "resnet18-state.pt"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    status, _, err = run_cli("train", "--method", "standard", "--out", tmp_path / "leak", *common, *small, "--weights", weights,
                             capsys=capsys)
    assert status == 2 and "--allow-pretrained-leak" in err
    status, _, err = run_cli("train", "--method", "standard", "--out", tmp_path / "leak", *common, *small, "--weights", weights,
                             "--allow-pretrained-leak", capsys=capsys)
    assert status == 0, err
    status, out, err = run_cli("train", "--method", "standard", "--out", tmp_path / "standard", *common, *small, capsys=capsys)
    assert status == 0, err
    payload = torch.load(out.strip(), weights_only=True)
    training = payload["training"]
    assert (payload["arch"], training["weights"], training["lr"], payload["epochs"], payload["resize_mode"]) == (
        "resnet18", None, 0.1, 90, "shorter")
    assert payload["geometry"] == {"crop": 32, "resize": 37, "mode": "shorter"} and payload["recipe"] == "inet"
    status, _, err = run_cli("train", "--method", "rotation", "--out", tmp_path / "rot", *common, *small, capsys=capsys)
    assert status == 2 and "give --init" in err
    status, out, err = run_cli("train", "--method", "rotation", "--out", tmp_path / "rot", *common, *small,
                               "--init", tmp_path / "standard" / "classifier.pt", capsys=capsys)
    assert status == 0, err
    payload = torch.load(out.strip(), weights_only=True)
    assert (payload["epochs"], payload["training"]["lr"], payload["fine_tuned_from"]) == (
        10, 1e-3, str(tmp_path / "standard" / "classifier.pt"))


def test_a_renamed_benchmark_keeps_its_papers_recipe(bird_benchmark, dozen_birds, tmp_path, monkeypatch):
    """build-splits bird --name bird-s1 trains with bird's 60 epochs (not the 30 of no preset), and a
    renamed dog benchmark with dog's beta 1.0: the recipe follows the dataset, not the name."""
    import shutil

    from fgood_bench.paper import paper_benchmark
    from fgood_bench.training import train as train_module

    assert paper_benchmark("bird", "cub") == "bird" and paper_benchmark("bird-s1", "cub") == "bird"
    assert paper_benchmark("dog-x", "thudogs") == "dog" and paper_benchmark("inet-b", "imagenet") == "inet-b"
    assert paper_benchmark("my-inet", "imagenet") == "inet" and paper_benchmark("textures", "dtd") is None
    assert train_module.paper_hyper(paper_benchmark("dog-x", "thudogs"), {}).beta == 1.0

    renamed = tmp_path / "bird-s1"
    shutil.copytree(bird_benchmark["base"] / "out" / "bird", renamed)
    manifest = json.loads((renamed / "manifest.json").read_text())
    (renamed / "manifest.json").write_text(json.dumps({**manifest, "benchmark": "bird-s1"}))
    seen = {}
    monkeypatch.setattr(train_module, "_train", lambda request, benchmark, *args: seen.update(config=args[-4], recipe=args[-2]))
    train_module.train(train_module.TrainRequest(method="standard", manifest=renamed, root=dozen_birds, out=tmp_path / "run",
                                                 settings={"arch": "resnet18", "weights": "none"}, progress=False))
    assert seen["config"].epochs == 60 and seen["recipe"].name == "fine-grained"
