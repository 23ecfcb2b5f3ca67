"""Inputs are read strictly (issue 24, items 3, 4, 8, 9, 11 and parts of 10 and 12): results.json and
scores through one schema, JSON / YAML / npz without duplicate keys or members, YAML of bounded depth
and alias expansion, and every input file opened only once it is known to be a regular file.

Every refusal is exit status 2 with one line on stderr naming the file and the field, no traceback."""

from __future__ import annotations

import copy
import json
import os
import shutil
import threading
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import run_cli
from fgood_bench.outputs import MARKER


def refused(result, *expected: str) -> str:
    status, _, err = result
    assert status == 2, err[-2000:]
    assert err.count("\n") == 1 and err.startswith("fgood-bench: error: ") and "Traceback" not in err, err[-2000:]
    for text in expected:
        assert text in err, err[-2000:]
    return err


def results() -> dict:
    """A results.json as evaluate writes it (two scorers, two OOD sets, base-rate draws on one set)."""
    plain = {"fpr95": 0.34, "auroc": 0.91, "aupr_out": 0.67, "aupr_in": 0.98}
    drawn = {m: {"mean": v, "std": 0.01} for m, v in plain.items()} | {"base_rate": 5.0, "n_id": 50, "n_ood": 10,
                                                                      "repeats": 10, "seed": 0}
    return {
        "toolkit": "fgood-bench test", "protocol": "custom", "metric_convention": "paper", "convention": "OOD positive",
        "base_rate": "none: all images of each set", "metrics_reported": ["fpr95", "auroc", "aupr_out", "aupr_in"],
        "benchmark": {"name": "bird", "manifest_sha256": "0" * 64}, "checkpoint_sha256": None,
        "training": {"method": "standard", "fine_tuned": False},
        "model": {"method": "standard", "arch": "resnet18", "checkpoint": "ck.pt"},
        "id_accuracy": 0.9, "id_val_accuracy": None, "scorers": ["msp", "energy"],
        "metrics": {"holdout": {"msp": dict(plain), "energy": dict(plain)},
                    "places365": {"msp": copy.deepcopy(drawn), "energy": copy.deepcopy(drawn)}},
        "degenerate_scorers": [],
    }


def write_run(folder: Path, document: dict | list | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text(json.dumps({"written_by": "fgood-bench", "kind": "evaluate"}) + "\n")
    text = document if isinstance(document, str) else json.dumps(document)
    (folder / "results.json").write_text(text)
    return folder


def edited(change) -> str | dict:
    document = results()
    out = change(document)
    return document if out is None else out


# results.json edited by hand (items 3 and 8): each -> the field the one-line refusal names
BAD_RESULTS = {
    "NaN": (lambda d: json.dumps(d).replace('"auroc": 0.91', '"auroc": NaN', 1), "NaN"),
    "Infinity": (lambda d: json.dumps(d).replace('"fpr95": 0.34', '"fpr95": Infinity', 1), "Infinity"),
    "1e999": (lambda d: json.dumps(d).replace('"fpr95": 0.34', '"fpr95": 1e999', 1), "1e999"),
    "duplicate key": (lambda d: json.dumps(d).replace('"auroc": 0.91', '"auroc": 0.2, "auroc": 0.91', 1), "'auroc' appears twice"),
    "AUROC 250": (lambda d: d["metrics"]["holdout"]["msp"].update(auroc=250), "metrics.holdout.msp.auroc: expected a number in [0, 1], got 250"),
    "negative AUROC": (lambda d: d["metrics"]["holdout"]["energy"].update(auroc=-0.4), "metrics.holdout.energy.auroc"),
    "std above 1": (lambda d: d["metrics"]["places365"]["msp"]["fpr95"].update(std=3.0), "metrics.places365.msp.fpr95.std"),
    "a list": (lambda d: [d], "(top level): expected an object"),
    "no metrics": (lambda d: d.pop("metrics") and None, "no 'metrics'"),
    "unknown scorer": (lambda d: d["metrics"]["holdout"].update(odin=d["metrics"]["holdout"]["msp"]), "metrics.holdout.odin: unknown scorer"),
    "scorer without metrics": (lambda d: d["scorers"].append("gram"), "metrics.holdout: no 'gram'"),
    "a string for a number": (lambda d: d["metrics"]["holdout"]["msp"].update(aupr_out="0.67"), "metrics.holdout.msp.aupr_out"),
    "null for a number": (lambda d: d["metrics"]["holdout"]["msp"].update(fpr95=None), "metrics.holdout.msp.fpr95"),
    "true for a number": (lambda d: d["metrics"]["holdout"]["msp"].update(fpr95=True), "metrics.holdout.msp.fpr95"),
    "a metric missing": (lambda d: d["metrics"]["holdout"]["msp"].pop("aupr_in") and None, "metrics.holdout.msp: no 'aupr_in'"),
    "an unknown metric": (lambda d: d["metrics"]["holdout"]["msp"].update(auroc_x=0.5), "metrics.holdout.msp.auroc_x: unknown metric"),
    "accuracy a string": (lambda d: d.update(id_accuracy="90%"), "id_accuracy"),
    "scorers a string": (lambda d: d.update(scorers="msp"), "scorers: expected a list"),
    "a scorer listed twice": (lambda d: d["scorers"].append("msp"), "scorers: 'msp' is listed twice"),
    "benchmark a string": (lambda d: d.update(benchmark="bird"), "benchmark: expected an object"),
    "base rate without repeats": (lambda d: d.update(base_rate={"id_to_ood": 5.0}), "base_rate: no 'repeats'"),
    "a 100,000-character scorer name": (lambda d: d["metrics"]["holdout"].update({"m" * 100_000: {}}), "unknown scorer"),
}


@pytest.mark.parametrize("case", list(BAD_RESULTS))
def test_report_reads_results_through_the_schema(case, tmp_path, capsys):
    change, message = BAD_RESULTS[case]
    good = write_run(tmp_path / "good", results())
    bad = write_run(tmp_path / "bad", edited(change))
    err = refused(run_cli("report", good, bad, "--out", tmp_path / "report", capsys=capsys), message, str(bad / "results.json"))
    assert len(err) < 400, err
    assert not (tmp_path / "report").exists()


def test_report_of_well_formed_results_still_works(tmp_path, capsys):
    first = write_run(tmp_path / "a", results())
    second = results()
    second["checkpoint_sha256"], second["id_accuracy"] = "1" * 64, 0.8
    second = write_run(tmp_path / "b", second)
    status, out, err = run_cli("report", first, second, "--out", tmp_path / "report", capsys=capsys)
    assert status == 0, err
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["id_accuracy"]["mean"] == pytest.approx(0.85) and "| msp |" in out


def write_scores(folder: Path, msp: np.ndarray, **extra) -> None:
    n = len(msp)
    table = pa.table({"path": [f"images/{i}.jpg" for i in range(n)], "set": ["id" if i % 2 else "places365" for i in range(n)],
                      "label": [i % 3 for i in range(n)], "msp": msp, **extra})
    pq.write_table(table, folder / "scores.parquet")


def test_plot_refuses_non_finite_scores_and_bad_results(tmp_path, capsys):
    run = write_run(tmp_path / "run", results())
    msp = np.linspace(0.05, 0.95, 40)
    half_nan = msp.copy()
    half_nan[::2] = np.nan
    write_scores(run, half_nan)
    refused(run_cli("plot", run, capsys=capsys), f"{run / 'scores.parquet'}: column 'msp': 20 of 40 values are not in [0, 1]")
    write_scores(run, msp, energy=np.where(np.arange(40) == 7, np.inf, 1.0))
    refused(run_cli("plot", run, capsys=capsys), "column 'energy': 1 of 40 values are not finite (row 8")
    write_scores(run, msp * 100)  # a probability of 95
    refused(run_cli("plot", run, capsys=capsys), "column 'msp'")
    write_scores(run, msp)
    write_run(run, edited(lambda d: d["metrics"]["holdout"]["msp"].update(auroc=250)))
    refused(run_cli("plot", run, capsys=capsys), f"{run / 'results.json'}: metrics.holdout.msp.auroc")
    assert not (run / "confidence.png").exists()
    write_run(run, results())
    status, _, err = run_cli("plot", run, "--hist", capsys=capsys)
    assert status == 0 and (run / "confidence.png").is_file(), err


# -- duplicate keys and members (item 4) ------------------------------------------------------


@pytest.fixture
def bench(bird_benchmark, tmp_path) -> Path:
    """A private copy of the shared bird benchmark (K = 8)."""
    shutil.copytree(bird_benchmark["base"] / "out" / "bird", tmp_path / "bird")
    return tmp_path / "bird"


def test_a_manifest_with_a_key_twice_is_refused(bench, dozen_birds, capsys):
    text = (bench / "manifest.json").read_text()
    assert json.loads(text)["kind"] == "benchmark"
    (bench / "manifest.json").write_text('{"kind": "ood_set", ' + text.lstrip()[1:])  # the last "kind" wins in json.loads
    refused(run_cli("verify", bench, "--root", dozen_birds, capsys=capsys), f"{bench / 'manifest.json'}: key 'kind' appears twice")
    (bench / "manifest.json").write_text(text.replace('"schema_version": 1', '"schema_version": NaN', 1))
    refused(run_cli("verify", bench, "--root", dozen_birds, capsys=capsys), "manifest.json: NaN is not a JSON number")


def test_a_predictions_file_with_two_logits_members_is_refused(dozen_birds, bird_benchmark, tmp_path, capsys):
    source = bird_benchmark["base"] / "preds.npz"
    with np.load(source) as saved:
        paths, logits = saved["paths"], saved["logits"]
    other = np.roll(logits, 1, axis=1)  # another ranking: the ID classes change when this one is read
    bad = tmp_path / "preds.npz"
    with zipfile.ZipFile(bad, "w") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        for name, array in (("paths", paths), ("logits", logits), ("logits", other)):
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array)
    refused(run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "out", "--num-id", "8",
                    "--predictions", bad, capsys=capsys), f"{bad}: member 'logits.npy' appears twice")
    assert not (tmp_path / "out").exists()


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_release_config_with_a_key_twice_is_refused(tmp_path, capsys):
    # no roots: before, this config was read (num_id 3 silently) and failed later on the missing root
    config = write_yaml(tmp_path / "release.yaml", "benchmarks:\n  bird:\n    num_id: 2\n    num_id: 3\n")
    refused(run_cli("publish", "--config", config, "--out", tmp_path / "out", capsys=capsys),
            "release.yaml: not valid YAML (line 4: key 'num_id' appears twice")
    assert not (tmp_path / "out").exists()


# -- YAML bombs, bad roots, NaN settings (items 9 and 12) --------------------------------------


def alias_bomb(levels: int, width: int) -> str:
    """``ranking.lr`` as a list whose k-th item holds ``width`` aliases of item k - 1: width^levels values."""
    items = [f"&l0 [{', '.join(['lol'] * width)}]"]
    items += [f"&l{k} [{', '.join([f'*l{k - 1}'] * width)}]" for k in range(1, levels)]
    return f"ranking:\n  lr: [{', '.join(items)}]\n"


@pytest.mark.parametrize("case", ["nested 10,000 deep", "nested aliases as ranking.lr", "self-referring alias",
                                  "~nosuchuser root", "ranking.lr .nan", "ranking.lr .inf", "a 1 MB key"])
def test_a_release_config_is_read_with_limits(case, tmp_path, capsys):
    text, message = {
        "nested 10,000 deep": ("roots:\n  cub: " + "[" * 10_000 + "]" * 10_000 + "\n", "nested more than 100 levels deep"),
        # 8^6 = 262,144 values from 300 bytes (the 588 bytes stood for billions: 54 s, 1.2 GB, a 58 MB line)
        "nested aliases as ranking.lr": (alias_bomb(6, 8), "holds more than 100,000 values once its aliases are expanded"),
        "self-referring alias": ("roots: &r [*r]\n", "an alias refers to a value that holds it"),
        "~nosuchuser root": ("roots:\n  cub: ~nosuchuser-fgood/x\nbenchmarks: [bird]\n",
                             "roots.cub: ~nosuchuser-fgood/x: '~nosuchuser-fgood' names no home folder"),
        "ranking.lr .nan": ("benchmarks: [bird]\nranking:\n  lr: .nan\n", "ranking.lr: expected a finite number, got nan"),
        "ranking.lr .inf": ("benchmarks: [bird]\nranking:\n  lr: .inf\n", "ranking.lr: expected a finite number, got inf"),
        "a 1 MB key": ("ranking:\n  ? " + "k" * 1_000_000 + "\n  : 1\n", "ranking.'kkkkk"),
    }[case]
    config = write_yaml(tmp_path / "release.yaml", text)
    import fgood_bench.publish  # noqa: F401  (imported before the clock starts: torch takes seconds)

    started = time.monotonic()
    err = refused(run_cli("publish", "--config", config, "--out", tmp_path / "out", capsys=capsys), f"{config}: ", message)
    assert time.monotonic() - started < 10 and len(err) < 400, (time.monotonic() - started, len(err))
    assert not (tmp_path / "out").exists()


# -- audit.json of another shape (item 10, part) ----------------------------------------------


@pytest.mark.parametrize("case", ["pairs a dict", "a pair a list", "a pair without a_path", "a list", "sets a list",
                                  "a key twice"])
def test_an_audit_of_another_shape_is_one_line(case, tmp_path, capsys):
    audit = {"sets": {"outliers": {"dataset": "minc2500"}}, "pairs": [{"a": "outliers", "a_path": "x.jpg", "b": "id_test",
                                                                      "b_path": "y.jpg", "distance": 0, "kind": "exact"}]}
    document, message = {
        "pairs a dict": (audit | {"pairs": {"0": audit["pairs"][0]}}, "pairs: expected a list of pairs"),
        "a pair a list": (audit | {"pairs": [["outliers", "x.jpg"]]}, "pairs[0]: expected an object"),
        "a pair without a_path": (audit | {"pairs": [{"a": "outliers", "b": "id_test", "b_path": "y.jpg"}]},
                                  "pairs[0].a_path: expected an image path, got None"),
        "a list": ([audit], "(top level): expected an object"),
        "sets a list": (audit | {"sets": ["outliers"]}, "sets: expected an object"),
        "a key twice": (json.dumps(audit).replace('"pairs":', '"pairs": [], "pairs":'), "key 'pairs' appears twice"),
    }[case]
    path = tmp_path / "audit.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    refused(run_cli("filter-outliers", "none", "--source", "minc2500", "--root", tmp_path / "no-data", "--out", tmp_path / "o",
                    "--exclude-duplicates-of", path, capsys=capsys), f"{path}: ", message)


# -- FIFOs and other non-regular files (item 11) ----------------------------------------------


@contextmanager
def watchdog(fifos: list[Path], seconds: float = 10.0):
    """Yields an Event set when the command was still running after ``seconds``: it is then released
    (each FIFO opened for writing and closed, so that a reader blocked on it sees the end of the file),
    so that a command that blocks fails the test instead of hanging it."""
    hung, done = threading.Event(), threading.Event()

    def watch():
        if done.wait(seconds):
            return
        hung.set()
        while not done.is_set():
            for fifo in fifos:
                try:
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:  # no reader waiting right now
                    pass
            done.wait(0.1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield hung
    finally:
        done.set()
        thread.join()


def fifo_at(path: Path) -> Path:
    if path.is_dir():
        shutil.rmtree(path)
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("case", ["publish --config", "build-splits --predictions", "verify: manifest.json",
                                  "verify: a split file", "report: results.json", "filter-outliers: audit.json"])
def test_a_fifo_is_refused_at_once(case, bench, dozen_birds, tmp_path, capsys):
    out = tmp_path / "out"
    fifo, argv, message = {
        "publish --config": (tmp_path / "release.yaml", ["publish", "--config", tmp_path / "release.yaml", "--out", out],
                             "a FIFO (named pipe), not a config file"),
        "build-splits --predictions": (tmp_path / "preds.npz", ["build-splits", "bird", "--root", dozen_birds, "--out", out,
                                                                "--num-id", "8", "--predictions", tmp_path / "preds.npz"],
                                       "a FIFO (named pipe), not a predictions file"),
        "verify: manifest.json": (bench / "manifest.json", ["verify", bench, "--root", dozen_birds],
                                  "a FIFO (named pipe), not a manifest file"),
        "verify: a split file": (bench / "splits" / "id_test.txt", ["verify", bench, "--root", dozen_birds],
                                 "a FIFO (named pipe), not a split file"),
        "report: results.json": (tmp_path / "run" / "results.json", ["report", tmp_path / "run"],
                                 "a FIFO (named pipe), not a results file"),
        "filter-outliers: audit.json": (tmp_path / "audit.json", ["filter-outliers", "none", "--source", "minc2500", "--root",
                                                                  tmp_path, "--out", out, "--exclude-duplicates-of",
                                                                  tmp_path / "audit.json"],
                                        "a FIFO (named pipe), not an audit file"),
    }[case]
    fifo.parent.mkdir(parents=True, exist_ok=True)
    fifo_at(fifo)
    with watchdog([fifo]) as hung:
        result = run_cli(*argv, capsys=capsys)
    assert not hung.is_set(), f"{case}: blocked on the FIFO {fifo}"
    refused(result, f"{fifo}: ", message)
    assert fifo.is_fifo()


def test_a_checkpoint_that_is_a_fifo_or_device_is_refused(tmp_path):
    from fgood_bench.errors import FgoodError
    from fgood_bench.tools.models import _load

    fifo = fifo_at(tmp_path / "ck.pt")
    with watchdog([fifo]) as hung:
        with pytest.raises(FgoodError, match="a FIFO \\(named pipe\\), not a checkpoint file"):
            _load(fifo)
    assert not hung.is_set(), "blocked on the FIFO"
    with pytest.raises(FgoodError, match="/dev/zero: a device, not a checkpoint file"):
        _load(Path("/dev/zero"))  # before: read until memory ran out


def test_an_image_that_is_a_fifo_is_reported_not_waited_on(tmp_path):
    """Issue 24 item 11, for images: the image pipeline, the audit's hashing and the dataset check open
    an image only after checking it is a regular file."""
    from fgood_bench.audit.hashing import CROPS, HashCache, _read_one
    from fgood_bench.datasets.check import image_problem
    from fgood_bench.errors import FgoodError
    from fgood_bench.outputs import sha256_file
    from fgood_bench.tools.geometry import Geometry
    from fgood_bench.tools.images import load_image

    fifo = tmp_path / "a.jpg"
    os.mkfifo(fifo)
    with pytest.raises(FgoodError, match="FIFO"):
        load_image(fifo, Geometry(32, 37))
    assert "FIFO" in image_problem(fifo)
    assert "FIFO" in _read_one(fifo, HashCache(None), CROPS[:1])[2]
    with pytest.raises(FgoodError, match="FIFO"):
        sha256_file(fifo)
