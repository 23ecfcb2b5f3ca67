"""WordNet exclusion sets and outlier-set filtering."""

import json
from pathlib import Path

import pytest

from conftest import REFERENCE, replace_file, run_cli
from fgood_bench.datasets import synthetic
from fgood_bench.datasets.imagenet import imagenet_synsets
from fgood_bench.errors import FgoodError
from fgood_bench.manifests.files import sha256_file
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.manifests.verify import verify_manifest
from fgood_bench.outliers import wordnet
from fgood_bench.outliers.exclusions import BENCHMARK_ROOTS, benchmark_roots, exclusion_set

# The lists of the project's WordNet study (shared/docs/wordnet.md), derived independently of this code
# with NLTK, plus the concepts added by hand below
EXPECTED = json.loads((Path(__file__).parent / "data" / "wordnet_exclusions.json").read_text())
# The MixOE reference's lists (zjysteven/MixOE utils/dataset.py, INET_SPLITS)
MIXOE = json.loads((Path(__file__).parent / "data" / "mixoe_inet_splits.json").read_text())["lists"]
# Concepts added by wnid, whose images show the benchmark's objects (reasons: exclusions.py, docs/outliers.md)
HAND_ADDED = {"flower": {"n07718747": "artichoke.n.02", "n11879895": "rapeseed.n.01", "n03991062": "pot.n.04"},
              "dog": {"n03218198": "dogsled.n.01", "n03803284": "muzzle.n.03"},
              "aircraft": {"n04266014": "space_shuttle.n.01"}}


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
    assert len(exclusion_set(benchmark_roots(None, all_benchmarks=True))) == 221
    assert {name: len(exclusion_set(benchmark_roots(name))) for name in BENCHMARK_ROOTS} == \
        {"bird": 59, "dog": 123, "flower": 5, "car": 28, "aircraft": 6}  # the counts docs/outliers.md gives
    alternatives = {name: exclusion_set(EXPECTED[name]["roots"]) for name in ("dog_wide", "car_strict", "car_mixoe", "butterfly")}
    assert {name: [e.wnid for e in ex] for name, ex in alternatives.items()} == {n: EXPECTED[n]["wnids"] for n in alternatives}


def test_hand_added_concepts_are_imagenet_leaves_excluded_alone():
    synsets = imagenet_synsets()
    for benchmark, added in HAND_ADDED.items():
        excluded = {e.wnid: e.matched for e in exclusion_set(benchmark_roots(benchmark))}
        for wnid, name in added.items():
            assert wnid in synsets and wnid in BENCHMARK_ROOTS[benchmark]
            assert excluded[wnid] == f"{wnid} ({name})"
            assert [e.wnid for e in exclusion_set([wnid])] == [wnid]  # no other ImageNet-1k concept below it
    assert synsets["n07718747"].startswith("artichoke") and synsets["n03803284"] == "muzzle"


@pytest.mark.wordnet
def test_hand_added_names_checked_with_nltk():
    reader = wordnet.open_wordnet()
    for added in HAND_ADDED.values():
        for wnid, name in added.items():
            assert reader.synset_from_pos_and_offset("n", int(wnid[1:])).name() == name
    assert reader.synset("artichoke.n.02").hypernyms()[0].name() == "vegetable.n.01"  # out of flower.n.01's reach


def test_differences_from_the_mixoe_reference_lists():
    """What docs/outliers.md says about the reference's lists, which it removes as one union of 223."""
    synsets = imagenet_synsets()
    names = lambda wnids: sorted(synsets[w].split(",")[0] for w in wnids)  # noqa: E731
    ours = {name: {e.wnid for e in exclusion_set(benchmark_roots(name))} for name in BENCHMARK_ROOTS}
    mixoe = {name: set(wnids) for name, wnids in MIXOE.items()}
    assert {name: len(w) for name, w in mixoe.items()} == {"dog": 120, "bird": 52, "car": 42, "butterfly": 6, "aircraft": 3}
    assert len(set().union(*mixoe.values())) == 223 and len(set().union(*ours.values())) == 221
    assert all(mixoe[name] < ours[name] for name in ("bird", "dog", "aircraft"))
    assert names(ours["bird"] - mixoe["bird"]) == ["black grouse", "partridge", "peacock", "prairie chicken", "ptarmigan",
                                                   "quail", "ruffed grouse"]
    assert names(ours["dog"] - mixoe["dog"]) == ["dalmatian", "dogsled", "muzzle"]
    assert names(ours["aircraft"] - mixoe["aircraft"]) == ["space shuttle", "warplane", "wing"]
    assert names(ours["car"] - mixoe["car"]) == ["car mirror", "car wheel", "golfcart", "grille", "minibus", "school bus",
                                                 "trolleybus"]
    assert names(mixoe["car"] - ours["car"]) == [
        "barrow", "bicycle-built-for-two", "electric locomotive", "forklift", "freight car", "half track", "horse cart",
        "jinrikisha", "motor scooter", "mountain bike", "oxcart", "passenger car", "recreational vehicle", "shopping cart",
        "snowmobile", "steam locomotive", "streetcar", "tank", "tractor", "tricycle", "unicycle"]
    assert "flower" not in mixoe and not mixoe["butterfly"] & set().union(*ours.values())


@pytest.mark.wordnet
def test_roots_by_wnid_extra_wnids_and_errors():
    by_wnid = exclusion_set(["n02084071"], ["n01440764"])
    assert len(by_wnid) == 119 and by_wnid[0].wnid == "n01440764" and by_wnid[0].matched == "--exclude-wnid"
    assert by_wnid[1].matched == "n02084071 (dog.n.01)"
    with pytest.raises(FgoodError, match="--exclude-wnid 'n99999999': not one of the 1,000"):
        exclusion_set([], ["n99999999"])
    with pytest.raises(FgoodError, match="--exclude-root 'doggo.n.01': no such WordNet 3.0 noun synset"):
        exclusion_set(["doggo.n.01"])
    with pytest.raises(FgoodError, match="unknown benchmark 'fish'"):
        benchmark_roots("fish")


@pytest.mark.wordnet
def test_roots_by_other_names_resolve_through_wordnet():
    """A name NLTK accepts that is not the canonical one in the shipped table, or a wnid without its
    leading zero, excluded nothing before (auto.n.01 gave 0 instead of car.n.01's 10)."""
    cars = [e.wnid for e in exclusion_set(["car.n.01"])]
    auto = exclusion_set(["auto.n.01"])
    assert len(cars) == 10 and [e.wnid for e in auto] == cars and auto[0].matched == "auto.n.01 (car.n.01)"
    dogs = exclusion_set(["domestic_dog.n.01"])
    assert len(dogs) == 118 and dogs[0].matched == "domestic_dog.n.01 (dog.n.01)"
    assert [e.matched for e in exclusion_set(["n2084071"])][:1] == ["n2084071 (dog.n.01)"]
    assert len(exclusion_set(["n2084071"])) == 118
    # a real synset with no ImageNet-1k class below it would exclude nothing: said, not silently 0
    with pytest.raises(FgoodError, match=r"^--exclude-root 'emotion.n.01': no ImageNet-1k concept is under it, so it "
                       r"would exclude nothing$"):
        exclusion_set(["emotion.n.01"])
    with pytest.raises(FgoodError, match=r"--exclude-root 'n7480068' \(emotion.n.01\): no ImageNet-1k concept"):
        exclusion_set(["n7480068"])
    with pytest.raises(FgoodError, match="--exclude-root 'n00000001': no such WordNet 3.0 noun synset"):
        exclusion_set(["n00000001"])
    with pytest.raises(FgoodError, match="--exclude-root 'run.v.01': not a noun synset"):
        exclusion_set(["run.v.01"])


def test_without_wordnet_other_names_are_refused(monkeypatch):
    """Without WordNet only the shipped table's canonical names and wnids resolve; another name is
    refused in one line, never taken to exclude nothing."""
    def absent():
        raise FgoodError(wordnet.INSTALL_HINT)

    monkeypatch.setattr(wordnet, "open_wordnet", absent)
    assert len(exclusion_set(["dog.n.01"])) == len(exclusion_set(["n2084071"])) == 118
    for name in ("auto.n.01", "emotion.n.01", "n7480068"):
        with pytest.raises(FgoodError, match=rf"^--exclude-root '{name}': not the canonical name \(e.g. dog.n.01\) or wnid "
                           "of a synset above an ImageNet-1k class; other names need WordNet 3.0 to resolve") as err:
            exclusion_set([name])
        assert "\n" not in str(err.value)


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
    status, out, err = run_cli("outlier-exclusions", "none", "--exclude-root", "auto.n.01", capsys=capsys)
    assert status == 0 and len(out.splitlines()) == 10 and out.splitlines()[0].endswith("\tauto.n.01 (car.n.01)")
    status, out, err = run_cli("outlier-exclusions", "none", "--exclude-root", "emotion.n.01", capsys=capsys)
    assert status == 2 and out == "" and err.count("\n") == 1 and "would exclude nothing" in err


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
    assert removed["n02085620"] == 12 and removed["n02110341"] == 6 and len(removed) == 123
    # the query map assigns images to concepts: pinned by the manifest, and a changed copy fails verify
    pinned = manifest.data["dataset"]["metadata_sha256"]
    assert list(pinned) == ["info/queries_synsets_map.txt", "info/synsets.txt", "info/train_filelist_flickr.txt",
                            "info/train_filelist_google.txt"]
    assert pinned["info/queries_synsets_map.txt"] == sha256_file(root / "info" / "queries_synsets_map.txt")
    assert not verify_manifest(manifest, root, progress=False).metadata
    assert "| n02085620 | Chihuahua | dog.n.01 | 12 |" in (tmp_path / "out" / "webvision-dog" / "report.md").read_text()
    status, out, _ = run_cli("filter-outliers", "aircraft", "--source", "webvision", "--root", root, "--out", tmp_path / "out",
                             "--exclude-wnid", "n03000684", capsys=capsys)
    kept = Manifest.load(out.strip()).split("train").class_names
    assert "n04552348" not in kept and "n03000684" not in kept and "n02085620" in kept
    replace_file(root / "info" / "queries_synsets_map.txt", (root / "info" / "queries_synsets_map.txt").read_text() + "99 1\n")
    assert verify_manifest(manifest, root, progress=False).metadata == {
        "info/queries_synsets_map.txt": "differs from the manifest's sha256"}


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
    manifest = Manifest.load(out.strip())
    kept = set(manifest.split("train").class_names)
    assert len(kept) == 900 and "n07697313" not in kept and "n07831146" not in kept
    # each list recorded by name and sha256, its entries attributed to it (not to --exclude-wnid)
    report = manifest.data["exclusion"]
    assert report["exclude_lists"] == [{"file": f"inet_{x}.tsv", "sha256": sha256_file(inet / f"inet_{x}.tsv"), "wnids": 50}
                                       for x in "ab"]
    matched = {e["wnid"]: e["matched"] for e in report["excluded"]}
    assert matched["n07697313"] == "--exclude-list inet_a.tsv" and matched["n07831146"] == "--exclude-list inet_b.tsv"
    assert report["wnids_given"] == [] and len(matched) == 100
    markdown = (tmp_path / "o" / "imagenet-unfiltered" / "report.md").read_text()
    assert f"wnid lists: inet_a.tsv (50 wnids, sha256 {sha256_file(inet / 'inet_a.tsv')})" in markdown
    assert "| n07831146 | carbonara | --exclude-list inet_b.tsv | 1 |" in markdown
    # a root or --exclude-wnid that also matches is named first (airliner is an INet-A class and an aircraft)
    status, out, err = run_cli("filter-outliers", "aircraft", "--source", "imagenet", "--root", imagenet, "--out", tmp_path / "o",
                               "--name", "x", "--exclude-list", inet / "inet_a.tsv", "--exclude-wnid", "n07697313", capsys=capsys)
    matched = {e["wnid"]: e["matched"] for e in Manifest.load(out.strip()).data["exclusion"]["excluded"]}
    assert matched["n02690373"] == "aircraft.n.01" and matched["n07697313"] == "--exclude-wnid"
    assert matched["n04254680"] == "--exclude-list inet_a.tsv" and len(matched) == 6 + 50 - 1
    bad = tmp_path / "lists"
    bad.mkdir()
    (bad / "inet_a.tsv").write_text("n01440764\n")
    (bad / "empty.txt").write_text("\n")
    (bad / "typo.txt").write_text("n01440764\nn0144076\n")
    (bad / "latin1.txt").write_bytes("n01440764\tcaf\xe9\n".encode("latin-1"))
    for lists, message in (([inet / "inet_a.tsv", bad / "inet_a.tsv"], "another list is also named 'inet_a.tsv'"),
                           ([bad / "latin1.txt"], "latin1.txt: not UTF-8 text"),
                           ([bad / "empty.txt"], "empty.txt: no wnids in it"),
                           ([bad / "typo.txt"], "--exclude-list typo.txt 'n0144076': not one of the 1,000")):
        options = [arg for path in lists for arg in ("--exclude-list", path)]
        status, _, err = run_cli("filter-outliers", "none", "--source", "imagenet", "--root", imagenet, "--out", tmp_path / "o",
                                 "--name", "bad", *options, capsys=capsys)
        assert status == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "o" / "bad").exists()


@pytest.mark.parametrize("name", list(BENCHMARK_ROOTS))
def test_published_exclusion_lists_are_current(name, capsys):
    published = json.loads((Path(__file__).parents[1] / "manifests" / "exclusions" / f"{name}.json").read_text())
    status, out, _ = run_cli("outlier-exclusions", name, "--json", capsys=capsys)
    assert status == 0 and json.loads(out) == published
