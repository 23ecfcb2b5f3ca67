"""The demo runs the whole pipeline; every fgood-bench command written in the docs parses."""

import re
import shlex
from pathlib import Path

import pytest

from conftest import run_cli
from fgood_bench.cli import build_parser

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), ROOT / "manifests" / "README.md"]


@pytest.mark.slow
def test_demo_runs_every_stage(tmp_path, capsys):
    status, out, err = run_cli("demo", "--workdir", tmp_path / "demo", "--epochs", "1", capsys=capsys)
    assert status == 0, err
    for line in ("benchmark manifest", "outlier report", "MixupOE model", "confidence plot", "interpolation plot", "report"):
        match = re.search(rf"^  {line}\s+(\S+)$", out, re.M)
        assert match and Path(match.group(1)).is_file(), line
    assert "bird images removed by WordNet" in out
    report = (tmp_path / "demo" / "report.md").read_text()
    assert "## standard" in report and "## mixupoe" in report and "| mahalanobis" in report
    assert "mean nothing about the methods" in report and "NOTE: These numbers come from generated images" in out
    status, _, err = run_cli("demo", "--workdir", tmp_path / "demo", capsys=capsys)
    assert status == 2 and "holds an earlier demo output; pass --overwrite" in err


def documented_commands() -> list[tuple[str, str]]:
    """(file, command) for every `fgood-bench ...` line in a code block of the docs."""
    commands = []
    for path in DOCS:
        in_block, pending = False, ""
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("```"):
                in_block, pending = not in_block, ""
                continue
            if not in_block:
                continue
            line = pending + line.strip()
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            command = line.split("#")[0].strip()
            for prefix in ("fgood-bench ", "torchrun "):
                if command.startswith(prefix):
                    commands.append((path.relative_to(ROOT).as_posix(), command))
    return commands


COMMANDS = documented_commands()


def test_the_docs_document_every_subcommand():
    used = {shlex.split(c)[1] for _, c in COMMANDS if c.startswith("fgood-bench ")}
    subcommands = set(build_parser()._subparsers._group_actions[0].choices)
    assert subcommands <= used, subcommands - used


def subparser(name: str):
    return build_parser()._subparsers._group_actions[0].choices[name]


def test_python_api_build_and_train_example_makes_valid_requests(monkeypatch):
    """docs/python-api.md's build_splits + train example, with the two functions replaced by
    recorders: its requests are valid (field names, types) as written."""
    import fgood_bench.ranking.build
    import fgood_bench.training.train

    text = Path("docs/python-api.md").read_text(encoding="utf-8")
    code = next(block.split("```", 1)[0] for block in text.split("```python\n")[1:] if "build_splits(" in block)
    requests = []
    monkeypatch.setattr(fgood_bench.ranking.build, "build_splits", lambda request: requests.append(request) or Path("m.json"))
    monkeypatch.setattr(fgood_bench.training.train, "train", lambda request: requests.append(request) or Path("c.pt"))
    exec(compile(code, "docs/python-api.md", "exec"), {})
    build, train = requests
    assert (build.benchmark, build.train.arch, train.method, train.manifest) == ("bird", "resnet50", "standard", Path("m.json"))


def test_python_api_table_names_a_function_for_every_command():
    """docs/python-api.md's table: every CLI command, each with functions that exist."""
    import importlib

    table = Path("docs/python-api.md").read_text(encoding="utf-8").split("| command | function |")[1].split("\n\n")[0]
    rows = [line.split("|")[1:3] for line in table.strip().splitlines()[1:]]
    commands = {name for cell, _ in rows for name in re.findall(r"`([a-z-]+)`", cell)}
    assert commands == set(build_parser()._subparsers._group_actions[0].choices)
    for _, functions in rows:
        for dotted in re.findall(r"`(fgood_bench(?:\.\w+)+)", functions):
            module, _, name = dotted.rpartition(".")
            try:
                target = importlib.import_module(module)
            except ImportError:  # a package attribute: fgood_bench.load_index
                module, _, attribute = module.rpartition(".")
                target = getattr(importlib.import_module(module), attribute)
            assert hasattr(target, name), dotted

@pytest.mark.parametrize("where, command", COMMANDS, ids=[f"{w}:{i}" for i, (w, _) in enumerate(COMMANDS)])
def test_documented_command_parses(where, command):
    """Full commands must parse; synopses (``[optional]`` parts, ``<placeholders>``, ``...``) must
    name a real command and only options it has."""
    while re.search(r"\[[^\[\]]*\]", command):
        command = re.sub(r"\[[^\[\]]*\]", "", command)  # optional parts of a synopsis
    command = re.sub(r"<[^>]+>", "cub", command)
    words = shlex.split(command)
    words = words[words.index("fgood_bench") + 1:] if words[0] == "torchrun" else words[1:]
    if "..." in command:
        options = {w.split("=")[0] for w in words if w.startswith("--")}
        known = set(subparser(words[0])._option_string_actions)
        assert options <= known, f"{where}: `{command}` uses unknown options {options - known}"
        return
    try:
        build_parser().parse_args(words)
    except SystemExit as exit_info:
        assert exit_info.code == 0, f"{where}: `{command}` does not parse"


# Documents in the order a user follows them: later commands use what earlier ones built.
# manifest.md after training.md: its OpenOOD OE export reads the outlier set that training.md's filter-outliers writes
SCENARIO = ["docs/build-splits.md", "docs/datasets/", "docs/outliers.md", "docs/training.md", "docs/manifest.md",
            "docs/evaluation.md", "docs/publishing.md", "manifests/README.md"]
# Appended to long-running commands (argparse keeps the last value): a small CPU model, one epoch.
FAST = {
    "build-splits": ["--arch", "resnet18", "--weights", "none", "--epochs", "1", "--image-size", "32", "--batch-size", "8",
                     "--workers", "0"],
    "train": ["--arch", "resnet18", "--weights", "none", "--epochs", "1", "--image-size", "32", "--batch-size", "8",
              "--workers", "0", "--outlier-batch-size", "8"],
    "sweep": ["--arch", "resnet18", "--weights", "none", "--epochs", "1", "--standard-epochs", "1", "--image-size", "32",
              "--batch-size", "8", "--workers", "0", "--outlier-batch-size", "8"],
    "evaluate": ["--image-size", "32", "--batch-size", "8", "--workers", "0", "--gram-orders", "3"],
    "build-ood-set": ["--image-size", "32", "--size", "2"],
    "cam": ["--num", "2"],  # the generated dog benchmark's holdout has 2 images
}


def prepare_release(words: list[str]) -> None:
    """publish: the example config copied as docs/publishing.md says, with the FAST model and K=2
    (the generated datasets have a few classes), and generated datasets where its roots point."""
    import yaml

    config = yaml.safe_load((ROOT / "docs" / "release.example.yaml").read_text())
    config["ranking"] = {"arch": "resnet18", "weights": None, "epochs": 1, "image_size": 32, "batch_size": 8, "workers": 0}
    config["benchmarks"] = {name: {} if name.startswith("inet") else {"num_id": 2} for name in config["benchmarks"]}
    for dataset, root in config["roots"].items():
        if not Path(root).expanduser().exists():
            place_sample(dataset, Path(root).expanduser())
    path = Path(words[words.index("--config") + 1])
    if not path.exists():
        path.write_text(yaml.safe_dump(config))


def runnable(command: str) -> bool:
    """Full commands (synopses with ``...`` or ``<placeholders>`` are only parsed); torchrun runs
    and the demo are tested on their own (test_build_splits.py, test_methods.py, above)."""
    return command.startswith("fgood-bench ") and "..." not in command and "<" not in command and command != "fgood-bench demo"


def dataset_of(words: list[str]) -> str | None:
    from fgood_bench.paper import get_benchmark

    command = words[1]
    if command == "filter-outliers":
        return words[words.index("--source") + 1]
    if command in ("inspect", "build-ood-set"):
        return words[2]
    if command == "build-splits":
        return words[words.index("--dataset") + 1] if "--dataset" in words else get_benchmark(words[2]).dataset
    return None


def place_sample(dataset: str, root: Path) -> None:
    """A generated copy of ``dataset`` whose canonical root is ``root`` (as a user's download there)."""
    import shutil

    from fgood_bench.datasets import get_adapter, synthetic

    if dataset == "places365":  # the documented sample of 10,000 val images needs that many
        categories = ["/a/airfield", "/a/arena/hockey", "/z/zen_garden"]
        with synthetic.hardlinked_images():
            written = synthetic.write_places365(root.parent / "staging", categories,
                                                [(f"Places365_val_{i:08d}.jpg", i % 3) for i in range(1, 10_001)])
    else:
        written = synthetic.write_sample(dataset, root.parent / "staging")
    canonical = get_adapter(dataset)(written).root
    shutil.move(str(canonical), str(root))
    shutil.rmtree(root.parent / "staging", ignore_errors=True)


def scenario() -> list[tuple[str, str]]:
    ordered = []
    for prefix in SCENARIO:
        ordered += [(w, c) for w, c in COMMANDS if w.startswith(prefix) and runnable(c)]
    return ordered


@pytest.mark.slow
def test_documented_commands_run(tmp_path, monkeypatch, capsys):
    """Every full command of the docs, run as written (plus FAST overrides for training) in a fake
    home whose ~/data holds generated copies of the datasets where the docs put them."""
    commands = scenario()
    assert len(commands) >= 40 and {w for w, _ in commands} >= {"docs/evaluation.md", "docs/training.md", "docs/manifest.md"}
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "manifests").symlink_to(ROOT / "manifests")
    for where, command in commands:
        while re.search(r"\[[^\[\]]*\]", command):
            command = re.sub(r"\[[^\[\]]*\]", "", command)
        words = shlex.split(command)
        if "--root" in words:
            root = Path(words[words.index("--root") + 1]).expanduser()
            if not root.exists() and dataset_of(words):
                place_sample(dataset_of(words), root)
        if words[1] == "publish":
            prepare_release(words)
        extra = list(FAST.get(words[1], []))
        if words[1] == "build-splits" and "--id-classes" not in words:
            extra += ["--num-id", "2"]
        if words[1] == "build-ood-set" and "synthetic-val" not in words:
            extra = []
        status, _, err = run_cli(*words[1:], *extra, capsys=capsys)
        assert status == 0, f"{where}: `{command}` failed: {err}"
