"""Training objectives: Standard, OE, EnergyOE, Rotation and MixupOE, as the paper states them.

Each method maps one step's batches to a loss. ``x_id`` / ``x_out`` are normalised float batches
already on the device (mixing happens there); ``y`` are ID labels 0..K-1.

* ``standard``: cross-entropy on ID images.
* ``oe`` (eq. 1): + beta * cross-entropy of the outliers' predictions to the uniform distribution.
* ``energy-oe`` (Liu et al., 2020): + lambda * (E[relu(E(x_in) - m_in)^2] + E[relu(m_out - E(x_out))^2])
  with E(x) = -logsumexp(f(x)).
* ``rotation`` (Hendrycks et al., 2019): + weight * cross-entropy of a 4-way head predicting the
  rotation (0, 90, 180, 270 degrees) of each ID image.
* ``mixupoe``: eq. (3) by default, ID cross-entropy + beta_in-out * soft cross-entropy on
  lam * x_id + (1 - lam) * x_out with target lam * onehot(y) + (1 - lam) * uniform,
  lam ~ Beta(alpha, alpha) drawn once per batch; the full eq. (2) adds beta_in-in times the
  ID-ID mixup term and beta_out times the OE term. ``cutmix`` pastes an outlier box into the ID
  image and sets lam to the exact kept-pixel ratio; ``coarse`` uses lam' = min(lam, 1 - lam)
  (Appendix H.2).

OE and EnergyOE send ID and outlier images through the network in one pass and use every
outlier of the step, however many (Hendrycks et al.'s ``CIFAR/oe_tune.py`` and the MixOE
reference's ``train/train_oe.py`` draw twice as many outliers as ID images and use them all).
MixupOE uses separate passes for the ID and the mixed batch, as the MixOE reference does, so
BatchNorm statistics are those of each batch.

MixupOE pairing (:func:`mixup_pairs`): every outlier of the step is mixed with one ID image,
outlier j with ID image j mod B (B the ID batch), so the mixed batch has as many samples as the
outlier batch and each is used once. Appendix H.2 draws 512 outliers per step with 256 ID images
("We set the batch size to 256 and 512 for ID samples and outlier samples, respectively"); the
MixOE reference's ``train/train_mixoe.py`` pairs ID image i with outlier i and asserts that both
batches are equally large, so it gives no rule for 512 against 256: cycling the ID batch keeps
its one-to-one pairing wherever the batches are equal (Appendix D.1's 32 and 32) and uses every
outlier H.2 draws. An outlier batch smaller than the ID batch mixes the first ID images only
(the ID cross-entropy still takes them all).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fgood_bench import paper
from fgood_bench.errors import FgoodError
from fgood_bench.tools.loop import Objective, logits_of
from fgood_bench.tools.models import attach_rotation_head, rotations

METHODS = ("standard", "oe", "energy-oe", "rotation", "mixupoe")


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k target_k log softmax(logits)_k."""
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def uniform_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the predictions to the uniform distribution over the classes (OE)."""
    return -F.log_softmax(logits, dim=1).mean(dim=1).mean()


def energy_regulariser(logits_in: torch.Tensor, logits_out: torch.Tensor, m_in: float, m_out: float) -> torch.Tensor:
    energy_in = -torch.logsumexp(logits_in, dim=1)
    energy_out = -torch.logsumexp(logits_out, dim=1)
    return F.relu(energy_in - m_in).pow(2).mean() + F.relu(m_out - energy_out).pow(2).mean()


def mixed_target(labels: torch.Tensor, lam: float, num_classes: int) -> torch.Tensor:
    """lam * onehot(y) + (1 - lam) * uniform."""
    one_hot = F.one_hot(labels, num_classes).float()
    return lam * one_hot + (1 - lam) / num_classes


def cutmix_box(height: int, width: int, lam: float, generator: torch.Generator) -> tuple[int, int, int, int]:
    """A box covering about 1 - lam of the image (CutMix, Yun et al. 2019), clipped to the image."""
    ratio = (1.0 - lam) ** 0.5
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy = int(torch.randint(0, height, (1,), generator=generator))
    cx = int(torch.randint(0, width, (1,), generator=generator))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return top, bottom, left, right


def mix(x_id: torch.Tensor, x_out: torch.Tensor, lam: float, op: str, generator: torch.Generator) -> tuple[torch.Tensor, float]:
    """The mixed batch and the ID share of it (exact pixel ratio for cutmix)."""
    if op == "mixup":
        return lam * x_id + (1 - lam) * x_out, lam
    height, width = x_id.shape[-2:]
    top, bottom, left, right = cutmix_box(height, width, lam, generator)
    mixed = x_id.clone()
    mixed[..., top:bottom, left:right] = x_out[..., top:bottom, left:right]
    return mixed, 1.0 - (bottom - top) * (right - left) / (height * width)


@dataclass
class Hyper:
    """Hyperparameters by the paper's names; defaults: Appendix D.3's (:mod:`fgood_bench.paper`)."""

    beta: float = paper.FINE_GRAINED_HYPER["beta"]  # OE weight; MixupOE beta_in-out
    alpha: float = paper.FINE_GRAINED_HYPER["alpha"]  # MixupOE alpha_in-out
    beta_in_in: float | None = None
    alpha_in_in: float | None = None
    beta_out: float | None = None
    mix_op: str = "mixup"
    coarse: bool = False
    m_in: float = paper.FINE_GRAINED_HYPER["m_in"]
    m_out: float = paper.FINE_GRAINED_HYPER["m_out"]
    energy_weight: float = paper.FINE_GRAINED_HYPER["energy_weight"]  # EnergyOE lambda
    rotation_weight: float = paper.ROTATION_WEIGHT

    def check(self) -> None:
        if self.alpha <= 0 or (self.alpha_in_in is not None and self.alpha_in_in <= 0):
            raise FgoodError("--alpha and --alpha-in-in must be > 0 (Beta(alpha, alpha))")
        for name in ("beta", "beta_in_in", "beta_out", "energy_weight", "rotation_weight"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise FgoodError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
        if self.mix_op not in ("mixup", "cutmix"):
            raise FgoodError(f"--mix-op must be mixup or cutmix, got {self.mix_op!r}")


OUTLIER_METHODS = ("oe", "energy-oe", "mixupoe")  # the methods that draw outliers every step


def outliers_per_step(method: str, hyper: Hyper, id_batch: int, outlier_batch: int) -> int:
    """How many outliers a step draws: all ``outlier_batch``, for every method that uses outliers
    (OE and EnergyOE as their code does; MixupOE as Appendix H.2 states, mixed by :func:`mixup_pairs`)."""
    return outlier_batch


def mixup_pairs(id_batch: int, outlier_batch: int) -> torch.Tensor:
    """The ID image each outlier is mixed with: outlier j with ID image j mod ``id_batch``."""
    return torch.arange(outlier_batch) % id_batch


def method_loss(method: str, net: nn.Module, x_id: torch.Tensor, y: torch.Tensor, x_out: torch.Tensor | None,
                num_classes: int, hyper: Hyper, generator: torch.Generator, logits_of=lambda o: o) -> tuple[torch.Tensor, dict]:
    """The loss of one step and the numbers to log (floats)."""
    if method == "standard":
        loss = F.cross_entropy(logits_of(net(x_id)), y)
        return loss, {"ce": loss.item()}
    if method == "rotation":
        rotated, rotation_labels = rotations(x_id)
        logits = logits_of(net(rotated))
        model = net.module if hasattr(net, "module") else net
        ce = F.cross_entropy(logits[: len(x_id)], y)
        rotation = F.cross_entropy(model.rotation_head(), rotation_labels)
        return ce + hyper.rotation_weight * rotation, {"ce": ce.item(), "rotation": rotation.item()}
    if method in ("oe", "energy-oe"):  # every outlier of the step
        logits = logits_of(net(torch.cat([x_id, x_out])))
        logits_in, logits_out = logits[: len(x_id)], logits[len(x_id):]
        ce = F.cross_entropy(logits_in, y)
        if method == "oe":
            oe = uniform_cross_entropy(logits_out)
            return ce + hyper.beta * oe, {"ce": ce.item(), "oe": oe.item()}
        energy = energy_regulariser(logits_in, logits_out, hyper.m_in, hyper.m_out)
        return ce + hyper.energy_weight * energy, {"ce": ce.item(), "energy": energy.item()}
    if method != "mixupoe":
        raise FgoodError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    ce = F.cross_entropy(logits_of(net(x_id)), y)
    lam = float(torch.distributions.Beta(hyper.alpha, hyper.alpha).sample().item()) if hyper.alpha else 1.0
    if hyper.coarse:
        lam = min(lam, 1 - lam)
    pairs = mixup_pairs(len(x_id), len(x_out)).to(x_id.device)  # outlier j with ID image j mod B
    mixed, share = mix(x_id[pairs], x_out, lam, hyper.mix_op, generator)
    in_out = soft_cross_entropy(logits_of(net(mixed)), mixed_target(y[pairs], share, num_classes))
    loss = ce + hyper.beta * in_out
    logs = {"ce": ce.item(), "in_out": in_out.item(), "lam": share}
    if hyper.beta_in_in:
        alpha = hyper.alpha_in_in or hyper.alpha
        lam2 = float(torch.distributions.Beta(alpha, alpha).sample().item())
        order = torch.randperm(len(x_id), generator=generator).to(x_id.device)
        target = lam2 * F.one_hot(y, num_classes).float() + (1 - lam2) * F.one_hot(y[order], num_classes).float()
        in_in = soft_cross_entropy(logits_of(net(lam2 * x_id + (1 - lam2) * x_id[order])), target)
        loss = loss + hyper.beta_in_in * in_in
        logs["in_in"] = in_in.item()
    if hyper.beta_out:  # eq. (2)'s OOD term: every outlier of the step
        out = uniform_cross_entropy(logits_of(net(x_out)))
        loss = loss + hyper.beta_out * out
        logs["out"] = out.item()
    return loss, logs


class MethodObjective(Objective):
    """A reference method's loss (:func:`method_loss`) as the training loop's objective."""

    def __init__(self, method: str, hyper: Hyper, num_classes: int):
        if method not in METHODS:
            raise FgoodError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        self.method, self.hyper, self.num_classes = method, hyper, num_classes
        self.key = f"{method}:{hyper}" if method != "standard" else ""  # the checkpoint's data key
        self.needs_outliers = method in OUTLIER_METHODS

    def prepare(self, model: nn.Module) -> nn.Module:
        return attach_rotation_head(model) if self.method == "rotation" else model

    def loss(self, net, inputs, targets, out_inputs, mixing):
        return method_loss(self.method, net, inputs, targets, out_inputs, self.num_classes, self.hyper, mixing, logits_of)
