"""OOD scorers (paper section 3.2, Appendix D.2). Every score is an *ID score*: higher = more ID.

Each scorer is a small class: ``needs`` says which network outputs it reads (``logits``, the
spatially averaged features of each feature layer ``pooled``, their Gram statistics ``gram``),
``fit`` sees the ID training split where the method needs it (and, for ``needs_validation``
scorers, the held-out ID validation images), ``score`` maps outputs to scores.
All outputs of one forward pass per image feed every scorer.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax

from fgood_bench import paper
from fgood_bench.errors import FgoodError


class Scorer:
    name: str = ""
    needs: frozenset[str] = frozenset({"logits"})
    needs_validation: bool = False

    def fit(self, outputs: dict, labels: np.ndarray, validation: dict | None = None) -> "Scorer":
        return self

    def score(self, outputs: dict) -> np.ndarray:
        raise NotImplementedError


class MSP(Scorer):
    """Maximum softmax probability (Hendrycks & Gimpel, 2017)."""

    name = "msp"

    def score(self, outputs):
        return softmax(np.asarray(outputs["logits"], np.float64), axis=1).max(axis=1)


class ODIN(Scorer):
    """Maximum softmax of logits / T, T = 1000 (Liang et al., 2018).

    The input perturbation is applied by the forward pass when asked for (``odin_logits``); off by
    default, as in the paper (Appendix D.2).
    """

    name = "odin"

    def __init__(self, temperature: float = paper.ODIN_TEMPERATURE):
        self.temperature = temperature

    def score(self, outputs):
        logits = outputs.get("odin_logits", outputs["logits"])
        return softmax(np.asarray(logits, np.float64) / self.temperature, axis=1).max(axis=1)


class Energy(Scorer):
    """Negative free energy, T * logsumexp(logits / T), T = 1 (Liu et al., 2020)."""

    name = "energy"

    def __init__(self, temperature: float = paper.ENERGY_TEMPERATURE):
        self.temperature = temperature

    def score(self, outputs):
        return self.temperature * logsumexp(np.asarray(outputs["logits"], np.float64) / self.temperature, axis=1)


class MaxLogit(Scorer):
    """The largest logit (Hendrycks et al., 2022)."""

    name = "maxlogit"

    def score(self, outputs):
        return np.asarray(outputs["logits"], np.float64).max(axis=1)


class Mahalanobis(Scorer):
    """Class-conditional Gaussians with a tied covariance on the spatially averaged features of each
    feature layer (residual stage or block, see ``forward.feature_layers``; Lee et al., 2018), fitted
    on the ID training split; the layer scores (negative distance to the closest class mean) are
    summed, following the paper (Appendix D.2, after Hsu et al. 2020). No input preprocessing, as in
    the paper (Appendix D.2)."""

    name = "mahalanobis"
    needs = frozenset({"pooled"})

    def fit(self, outputs, labels, validation=None):
        labels = np.asarray(labels)
        self.stages = []
        for features in outputs["pooled"]:
            features = np.asarray(features, np.float64)
            classes = np.unique(labels)
            means = np.stack([features[labels == c].mean(axis=0) for c in classes])
            centred = features - means[np.searchsorted(classes, labels)]
            precision = np.linalg.pinv(centred.T @ centred / len(features), hermitian=True)
            self.stages.append((means, precision))
        return self

    def score(self, outputs):
        total = 0.0
        for features, (means, precision) in zip(outputs["pooled"], self.stages):
            features = np.asarray(features, np.float64)
            # (f - mu)^T P (f - mu) for every class at once
            fp = features @ precision
            distances = (np.einsum("nd,nd->n", fp, features)[:, None] - 2 * fp @ means.T
                         + np.einsum("cd,dk,ck->c", means, precision, means)[None, :])
            total = total + (-distances.min(axis=1))
        return np.asarray(total)


class Gram(Scorer):
    """Gram-matrix deviations (Sastry & Oore, 2020) on each feature layer.

    For orders p = 1..P, the row sums of the p-th-order Gram matrix of a layer's feature maps,
    sign(G)|G|^(1/p), are compared with their minimum and maximum over the ID training images of
    the predicted class (all of them, as the original); deviations outside that range, relative to
    the bound, are summed per layer and normalised by the layer's mean deviation on held-out ID
    validation images (``detect()`` of VectorInstitute/gram-ood-detection normalises by the mean
    over 10% of the ID images it does not score). The score is minus the sum of the normalised
    deviations.
    """

    name = "gram"
    needs = frozenset({"gram", "logits"})
    needs_validation = True

    def fit(self, outputs, labels, validation=None):
        if validation is None or len(validation["logits"]) == 0:
            raise FgoodError("the Gram scorer needs held-out ID validation images to normalise its deviations")
        gram = [np.asarray(g, np.float64) for g in outputs["gram"]]
        predicted = np.asarray(outputs["logits"]).argmax(axis=1)
        self.num_classes = np.asarray(outputs["logits"]).shape[1]
        self.bounds = []
        for layer in gram:
            low = np.full((self.num_classes,) + layer.shape[1:], np.inf)
            high = np.full_like(low, -np.inf)
            for c in range(self.num_classes):
                rows = predicted == c
                if rows.any():
                    low[c], high[c] = layer[rows].min(axis=0), layer[rows].max(axis=0)
            self.bounds.append((low, high))
        self.scale = self._deviations(validation).mean(axis=0) + 1e-7  # + 1e-7 as the original's detect()
        return self

    def _deviations(self, outputs) -> np.ndarray:
        predicted = np.asarray(outputs["logits"]).argmax(axis=1)
        per_stage = []
        for stage, (low, high) in zip(outputs["gram"], self.bounds):
            stage = np.asarray(stage, np.float64)
            lo, hi = low[predicted], high[predicted]
            seen = np.isfinite(lo)  # classes never predicted on the training images: no bounds, no deviation
            with np.errstate(invalid="ignore", divide="ignore"):  # the inf bounds of unseen classes
                below = np.where(seen & (stage < lo), (lo - stage) / (np.abs(lo) + 1e-6), 0.0)
                above = np.where(seen & (stage > hi), (stage - hi) / (np.abs(hi) + 1e-6), 0.0)
            per_stage.append((below + above).reshape(len(stage), -1).sum(axis=1))
        return np.stack(per_stage, axis=1)

    def score(self, outputs):
        return -(self._deviations(outputs) / self.scale).sum(axis=1)


class Rotation(Scorer):
    """Hendrycks et al. (2019) for rotation-trained models: KL(uniform || p(y|x)) minus the mean
    cross-entropy of the rotation head on the image rotated by 0, 90, 180 and 270 degrees."""

    name = "rotation"
    needs = frozenset({"logits", "rotation"})

    def score(self, outputs):
        logits = np.asarray(outputs["logits"], np.float64)
        log_p = logits - logsumexp(logits, axis=1, keepdims=True)
        kl_uniform = -np.log(logits.shape[1]) - log_p.mean(axis=1)
        return kl_uniform - np.asarray(outputs["rotation"], np.float64)


SCORERS = {cls.name: cls for cls in (MSP, ODIN, Energy, MaxLogit, Mahalanobis, Gram, Rotation)}


def check_standard_model_scorer(name: str) -> None:
    """A scorer for the standard or OE-family models that study and sweep train (no rotation head),
    checked before their first training rather than after it."""
    make_scorers([name])
    if name == "rotation":
        raise FgoodError("--scorer rotation needs a model trained with --method rotation; choose another scorer")


def make_scorers(names: list[str], settings=None) -> list[Scorer]:
    """The scorers ``names``, with the temperatures of the resolved ``settings`` (tools.settings.Settings;
    default: the paper's)."""
    unknown = [n for n in names if n not in SCORERS]
    if unknown:
        raise FgoodError(f"unknown scorer {unknown[0]!r}; choose from {', '.join(SCORERS)}")
    temperatures = {"odin": settings.odin_temperature, "energy": settings.energy_temperature} if settings else {}
    return [SCORERS[n](temperatures[n]) if n in temperatures else SCORERS[n]() for n in names]
