"""The evaluation protocol a run's numbers depend on: its ID:OOD base rate and metric convention.

The paper's protocol (Appendix C, following Hendrycks et al.'s baseline [3] and OE [11]): OOD is the
positive class; FPR95, AUROC and AUPR; "the base rate between ID and OOD samples is set to 5:1".
Its tables can be compared only with runs evaluated that way, so every report states the protocol.
"""

from __future__ import annotations

from fgood_bench import paper
from fgood_bench.metrics import CONVENTIONS

PAPER_BASE_RATE, PAPER_CONVENTION = paper.PAPER_BASE_RATE, paper.PAPER_CONVENTION  # Appendix C (fgood_bench.paper)


def metric_convention(results: dict) -> str:
    """The convention of a results.json / report.json (files written before conventions were named: by their text)."""
    if "metric_convention" in results:
        return results["metric_convention"]
    return next((name for name, text in CONVENTIONS.items() if text == results.get("convention")), "unknown")


def base_rate_of(results: dict) -> float | None:
    base = results.get("base_rate")
    return base["id_to_ood"] if isinstance(base, dict) else None


def is_paper_protocol(results: dict) -> bool:
    return base_rate_of(results) == PAPER_BASE_RATE and metric_convention(results) == PAPER_CONVENTION


def protocol_name(base_rate: float | None, convention: str) -> str:
    return "paper" if base_rate == PAPER_BASE_RATE and convention == PAPER_CONVENTION else "custom"


def _base_rate_text(results: dict) -> str:
    base = results.get("base_rate")
    if isinstance(base, dict):
        return f"ID:OOD = {base['id_to_ood']:g}:1 ({base['repeats']} seeded draws)"
    return "all images of each set"


def describe(results: dict) -> str:
    """One line saying under which protocol the numbers were computed and whether the paper's tables compare."""
    convention = metric_convention(results)
    settings = f"{_base_rate_text(results)}, metric convention `{convention}`"
    if is_paper_protocol(results):
        return f"Protocol: the paper's (Appendix C): {settings}; comparable with the paper's Tables 1, 5 and 7."
    return (f"Protocol: NOT the paper's ({settings}); do not compare with the paper's tables, which are at "
            f"ID:OOD = 5:1 with the `paper` convention (evaluate --protocol paper).")
