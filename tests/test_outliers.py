"""WordNet exclusion sets and outlier-set filtering."""

import json
from pathlib import Path

import pytest

from conftest import REFERENCE, replace_file, run_cli
from fgood_bench.datasets import synthetic
from fgood_bench.datasets.imagenet import imagenet_synsets
from fgood_bench.errors import FgoodError
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.outliers import wordnet
from fgood_bench.outliers.exclusions import BENCHMARK_ROOTS, benchmark_roots, exclusion_set

# The lists of the project's WordNet study (shared/docs/wordnet.md), derived independently of this code
EXPECTED = json.loads((Path(__file__).parent / "data" / "wordnet_exclusions.json").read_text())


@pytest.mark.parametrize("name", list(BENCHMARK_ROOTS))
def test_default_sets_match_the_wordnet_study(name):
    excluded = exclusion_set(benchmark_roots(name))
    assert [e.wnid for e in excluded] == EXPECTED[name]["wnids"]
    assert list(BENCHMARK_ROOTS[name]) == EXPECTED[name]["roots"]


def test_known_members():
    dog = exclusion_set(["dog.n.01"])
    assert len(dog) == 118 and {e.matched for e in dog} == {"dog.n.01"}
    assert len(exclusion_set(benchmark_roots("bird"))) == 59
    aircraft = {e.wnid: e.names for e in exclusion_set(benchmark_roots("aircraft"))}
    assert aircraft["n04552348"].startswith("warplane") and aircraft["n02690373"] == "airliner"
    assert len(exclusion_set(benchmark_roots(None, all_benchmarks=True))) == 215
    alternatives = {name: exclusion_set(EXPECTED[name]["roots"]) for name in ("dog_wide", "car_strict", "car_mixoe", "butterfly")}
    assert {name: [e.wnid for e in ex] for name, ex in alternatives.items()} == {n: EXPECTED[n]["wnids"] for n in alternatives}


@pytest.mark.wordnet
def test_roots_by_wnid_extra_wnids_and_errors():
    by_wnid = exclusion_set(["n02084071"], ["n01440764"])
    assert len(by_wnid) == 119 and by_wnid[0].wnid == "n01440764" and by_wnid[0].matched == "--exclude-wnid"
    assert by_wnid[1].matched == "n02084071 (dog.n.01)"
    with pytest.raises(FgoodError, match="--exclude-wnid 'n99999999': not one of the 1,000"):
        exclusion_set([], ["n99999999"])
    with pytest.raises(FgoodError, match="--exclude-root 'doggo.n.01': no such WordNet 3.0 noun synset"):
        exclusion_set(["doggo.n.01"])
    assert exclusion_set(["emotion.n.01"]) == []  # a real synset with no ImageNet-1k class below it
    with pytest.raises(FgoodError, match="unknown benchmark 'fish'"):
        benchmark_roots("fish")


@pytest.mark.wordnet
def test_shipped_table_equals_a_fresh_derivation():
    reader = wordnet.open_wordnet()
    fresh = wordnet.table_text(wordnet.derive_ancestor_table(reader, list(imagenet_synsets())))
    shipped = (Path(wordnet.__file__).parent / "resources" / "imagenet_ancestors.tsv").read_text()
    assert fresh == shipped
    assert (Path(wordnet.__file__).parent / "resources" / "WORDNET_LICENSE").read_text().count("Princeton University") >= 3


def test_missing_wordnet_says_how_to_install(monkeypatch, tmp_path):
    import nltk

    monkeypatch.setattr(wordnet, "DEBIAN_WORDNET", tmp_path / "none")
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    monkeypatch.setenv("NLTK_DATA", str(tmp_path))
    wordnet.open_wordnet.cache_clear()
    import nltk.corpus

    # a fresh, unloaded reader that will look for the corpus on the emptied data path
    monkeypatch.setattr(nltk.corpus, "wordnet", nltk.corpus.util.LazyCorpusLoader(
        "wordnet", nltk.corpus.reader.wordnet.WordNetCorpusReader, None))
    try:
        with pytest.raises(FgoodError, match=r"WordNet 3.0 not found: install it with .*nltk.downloader wordnet.*wordnet-base"):
            wordnet.open_wordnet()
    finally:
        wordnet.open_wordnet.cache_clear()


@pytest.mark.wordnet
def test_outlier_exclusions_command(capsys):
    status, out, _ = run_cli("outlier-exclusions", "aircraft", "--json", capsys=capsys)
    assert status == 0 and json.loads(out)["excluded_wnids"] == EXPECTED["aircraft"]["wnids"]
    status, out, err = run_cli("outlier-exclusions", "none", "--exclude-root", "canine.n.02", capsys=capsys)
    assert status == 0 and len(out.splitlines()) == 130 and "130 ImageNet-1k / WebVision concepts excluded" in err
    status, _, err = run_cli("outlier-exclusions", "dog", "--exclude-root", "dog.x.99", capsys=capsys)
    assert status == 2 and "no such WordNet 3.0 noun synset" in err


@pytest.fixture
def webvision(tmp_path):
    """WebVision in native layout: the real synsets order, 6 queries over 4 concepts, both sources."""
    synsets = [tuple(line.split(" ", 1)) for line in (REFERENCE / "imagenet" / "synset_words.txt").read_text().splitlines() if line]
    index = {wnid: i for i, (wnid, _) in enumerate(synsets)}
    concepts = ["n01440764", "n02085620", "n02110341", "n04552348", "n02085620", "n03000684"]  # tench, 2 dogs, warplane
    train = {source: [(f"{source}/q{q:04d}/{source}_{q}_{k}.jpg", index[concepts[q - 1]]) for q in range(1, 7) for k in range(3)]
             for source in ("google", "flickr")}
    return synthetic.write_webvision(tmp_path / "data", synsets, train, None), concepts


def test_webvision_loses_exactly_the_excluded_concepts(webvision, tmp_path, capsys):
    root, concepts = webvision
    status, out, err = run_cli("filter-outliers", "dog", "--source", "webvision", "--root", root, "--out", tmp_path / "out", capsys=capsys)
    assert status == 0, err
    manifest = Manifest.load(out.strip())
    rows = manifest.split("train")
    assert manifest.kind == "outliers" and manifest.name == "webvision-dog"
    dogs = {"n02085620", "n02110341"}
    expected = [f"{s}/q{q:04d}/{s}_{q}_{k}.jpg" for s in ("google", "flickr") for q in range(1, 7) for k in range(3)
                if concepts[q - 1] not in dogs]
    assert rows.paths == expected and set(rows.labels) == {-1}
    report = manifest.data["exclusion"]
    assert report["images_removed"] == 18 and report["images_kept"] == 18
    removed = {e["wnid"]: e["images_removed"] for e in report["excluded"]}
    assert removed["n02085620"] == 12 and removed["n02110341"] == 6 and len(removed) == 121
    assert "| n02085620 | Chihuahua | dog.n.01 | 12 |" in (tmp_path / "out" / "webvision-dog" / "report.md").read_text()
    status, out, _ = run_cli("filter-outliers", "aircraft", "--source", "webvision", "--root", root, "--out", tmp_path / "out",
                             "--exclude-wnid", "n03000684", capsys=capsys)
    kept = Manifest.load(out.strip()).split("train").class_names
    assert "n04552348" not in kept and "n03000684" not in kept and "n02085620" in kept


def test_webvision_errors(webvision, tmp_path, capsys):
    root, _ = webvision
    replace_file(root / "info" / "queries_synsets_map.txt", "1 1\n2 1\n3 1\n4 1\n5 1\n6 1\n")
    status, _, err = run_cli("filter-outliers", "dog", "--source", "webvision", "--root", root, "--out", tmp_path / "o", capsys=capsys)
    assert status == 2 and "but its query folder maps to n01440764" in err and err.count("\n") == 1
    replace_file(root / "info" / "queries_synsets_map.txt", "1 1\n")
    status, _, err = run_cli("filter-outliers", "dog", "--source", "webvision", "--root", root, "--out", tmp_path / "o", capsys=capsys)
    assert status == 2 and "query q0002" in err and "is not mapped to a synset" in err
    (root / "info").rename(root / "information")
    status, _, err = run_cli("filter-outliers", "dog", "--source", "webvision", "--root", root, "--out", tmp_path / "o", capsys=capsys)
    assert status == 2 and "not a WebVision 1.0 download: expected info/synsets.txt" in err


def test_imagenet_and_minc_sources(tmp_path, capsys):
    wnids = list(imagenet_synsets())
    imagenet = synthetic.write_imagenet(tmp_path / "in", {w: [f"{w}_1.JPEG"] for w in wnids}, {})
    status, out, err = run_cli("filter-outliers", "none", "--source", "imagenet", "--root", imagenet, "--out", tmp_path / "o",
                               "--exclude-wnid", wnids[0], "--exclude-root", "bird.n.01", "--name", "inet-no-birds", capsys=capsys)
    assert status == 0, err
    assert len(Manifest.load(out.strip()).split("train")) == 1000 - 1 - 59
    minc = synthetic.write_sample("minc2500", tmp_path / "minc")
    status, out, _ = run_cli("filter-outliers", "none", "--source", "minc2500", "--root", minc, "--out", tmp_path / "o", capsys=capsys)
    assert status == 0 and len(Manifest.load(out.strip()).split("train")) == 21
    assert "removed 0 images of 0 excluded concepts" in (tmp_path / "o" / "minc2500-unfiltered" / "report.md").read_text()
    status, _, err = run_cli("filter-outliers", "dog", "--source", "minc2500", "--root", minc, "--out", tmp_path / "o", capsys=capsys)
    assert status == 2 and "materials, not WordNet concepts" in err


def test_exclude_list_files(tmp_path, capsys):
    wnids = list(imagenet_synsets())
    imagenet = synthetic.write_imagenet(tmp_path / "in", {w: [f"{w}_1.JPEG"] for w in wnids}, {})
    inet = Path(__file__).parents[1] / "manifests" / "inet"
    status, out, err = run_cli("filter-outliers", "none", "--source", "imagenet", "--root", imagenet, "--out", tmp_path / "o",
                               "--exclude-list", inet / "inet_a.tsv", "--exclude-list", inet / "inet_b.tsv", capsys=capsys)
    assert status == 0, err
    kept = set(Manifest.load(out.strip()).split("train").class_names)
    assert len(kept) == 900 and "n07697313" not in kept and "n07831146" not in kept


@pytest.mark.parametrize("name", list(BENCHMARK_ROOTS))
def test_published_exclusion_lists_are_current(name, capsys):
    published = json.loads((Path(__file__).parents[1] / "manifests" / "exclusions" / f"{name}.json").read_text())
    status, out, _ = run_cli("outlier-exclusions", name, "--json", capsys=capsys)
    assert status == 0 and json.loads(out) == published
