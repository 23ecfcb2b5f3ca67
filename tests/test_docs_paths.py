"""The docs cite files that exist, say what the code does (not how it came to be), and name CUDA
wheels that torch publishes; messages read as English (counts, articles) and name the Python
API's parameters too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fgood_bench.errors import FgoodError, article, plural

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted((REPO / "docs").rglob("*.md")) + [REPO / "README.md"]
# backticked text that starts like a path of this repository (or of the project's notes beside it)
REPO_PREFIXES = ("fgood_bench/", "scripts/", "tests/", "docs/", ".ci/", "manifests/", "shared/", "examples/")
PLACEHOLDER = re.compile(r"[*<>{}$]|\.\.\.|\b[A-Z][A-Z_]+\b")  # docs/datasets/NAME.md, tests/*.py: patterns, not files


def _cited_paths(text: str):
    for token in re.findall(r"`([^`\s]+)`", text):
        path = token.split("::")[0].split("#")[0].rstrip(".,:;)")
        if path.startswith(REPO_PREFIXES) and not PLACEHOLDER.search(path):
            yield path


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_cited_repository_path_exists(doc):
    text = doc.read_text(encoding="utf-8")
    missing = [path for path in _cited_paths(text) if not (REPO / path).exists()]
    links = re.findall(r"\]\(([^)\s#]+\.md)(?:#[^)]*)?\)", text)  # relative links to other docs
    missing += [link for link in links if "://" not in link and not (doc.parent / link).exists()]
    assert not missing, f"{doc.relative_to(REPO)} cites files that are not in the repository: {missing}"


def test_the_path_check_sees_a_missing_file():
    assert list(_cited_paths("see (`shared/docs/wordnet.md`, `fgood_bench/outputs.py`, `docs/datasets/NAME.md`)")) == [
        "shared/docs/wordnet.md", "fgood_bench/outputs.py"]


DEVELOPMENT_LOG = re.compile(r"\b(sessions?|this fix|we changed|previously)\b", re.IGNORECASE)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_docs_say_what_is_done_not_how_it_came_to_be(doc):
    lines = [f"{n}: {line.strip()}" for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
             if DEVELOPMENT_LOG.search(line)]
    assert not lines, f"{doc.relative_to(REPO)}: development-log wording: {lines}"


def test_cuda_wheel_indexes_are_ones_torch_2_14_publishes():
    pins = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert '"torch==2.14.1"' in pins and '"torchvision==0.29.1"' in pins  # the tags below are torch 2.14's
    tags = {tag for doc in DOCS for tag in re.findall(r"download\.pytorch\.org/whl/(cu\d+)", doc.read_text(encoding="utf-8"))}
    assert tags and tags <= {"cu126", "cu128", "cu130"}, tags


# -- messages --------------------------------------------------------------------------------------------------


def test_counts_and_articles_in_messages():
    assert plural(1, "split") == "1 split" and plural(3, "split") == "3 splits" and plural(1200, "image") == "1,200 images"
    assert article("imagefolder") == "an imagefolder" and article("cub") == "a cub"


def test_a_dataset_message_reads_an_oxford_download(tmp_path):
    from fgood_bench.datasets import load_dataset

    with pytest.raises(FgoodError, match="not an Oxford Flowers-102 download"):
        load_dataset("flowers102", tmp_path)


def test_python_api_errors_name_the_parameter(dozen_birds, tmp_path):
    from fgood_bench.ranking.build import BuildRequest, build_splits

    with pytest.raises(FgoodError, match=r"^num_id \(--num-id\) 100: must be 1\.\.11 \(cub has 12 classes\)"):
        build_splits(BuildRequest(root=dozen_birds, out=tmp_path / "out", dataset="cub", num_id=100))
    with pytest.raises(FgoodError, match=r"give dataset and num_id \(--dataset ID --num-id K\)"):
        build_splits(BuildRequest(root=dozen_birds, out=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_id_validation_accuracy_says_whether_the_model_saw_those_images():
    from fgood_bench.evaluation.report import markdown_table

    metric = {"fpr95": 0.5, "auroc": 0.5, "aupr_in": 0.5, "aupr_out": 0.5}
    results = {"toolkit": "fgood-bench", "convention": "c", "metrics_reported": list(metric), "benchmark": {"name": "bird"},
               "scorers": ["msp"], "base_rate": "none", "id_accuracy": 0.9, "metrics": {"holdout": {"msp": metric}},
               "id_val_accuracy": 0.875}
    for held_out, said in ((False, "(87.5% on the ID validation images, which the model was trained on)"),
                           (True, "(87.5% on the ID validation images, held out of training)")):
        results["settings"] = {"id_validation": {"held_out_in_training": held_out}}
        assert f"ID accuracy 90.0% {said}." in markdown_table(results)
