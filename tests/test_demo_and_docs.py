"""The demo runs the whole pipeline; every fgood-bench command written in the docs parses."""

import re
import shlex
from pathlib import Path

import pytest

from conftest import run_cli
from fgood_bench.cli import build_parser

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), ROOT / "manifests" / "README.md"]


def test_demo_runs_every_stage(tmp_path, capsys):
    status, out, err = run_cli("demo", "--workdir", tmp_path / "demo", "--epochs", "1", capsys=capsys)
    assert status == 0, err
    for line in ("benchmark manifest", "outlier report", "MixupOE model", "confidence plot", "interpolation plot", "report"):
        match = re.search(rf"^  {line}\s+(\S+)$", out, re.M)
        assert match and Path(match.group(1)).is_file(), line
    assert "bird images removed by WordNet" in out
    report = (tmp_path / "demo" / "report.md").read_text()
    assert "## standard" in report and "## mixupoe" in report and "| mahalanobis |" in report
    status, _, err = run_cli("demo", "--workdir", tmp_path / "demo", capsys=capsys)
    assert status == 2 and "needs an empty or new folder" in err


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


DATA_COMMANDS = ("datasets", "inspect", "outlier-exclusions", "build-ood-set", "filter-outliers")


def data_level(command: str) -> bool:
    words = shlex.split(command)
    return words[0] == "fgood-bench" and words[1] in DATA_COMMANDS and "..." not in command and "<" not in command \
        and "[" not in command and "synthetic-val" not in command


def dataset_of(words: list[str]) -> str:
    if words[1] == "filter-outliers":
        return words[words.index("--source") + 1]
    return words[2]


def place_sample(dataset: str, root: Path) -> None:
    """A generated copy of ``dataset`` whose canonical root is ``root`` (as a user's download there)."""
    import shutil

    from fgood_bench.datasets import get_adapter, synthetic

    if root.exists():
        return
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


RUNNABLE = [(w, c) for w, c in COMMANDS if data_level(c)]


def test_documented_data_commands_run(tmp_path, monkeypatch, capsys):
    """The documented dataset, outlier and OOD-set commands, run as written against generated
    copies of the datasets placed where the docs say (a fake home folder)."""
    assert len(RUNNABLE) >= 20
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "manifests").symlink_to(ROOT / "manifests")
    for where, command in RUNNABLE:
        words = shlex.split(command)
        if "--root" in words:
            place_sample(dataset_of(words), Path(words[words.index("--root") + 1]).expanduser())
        status, _, err = run_cli(*words[1:], capsys=capsys)
        assert status == 0, f"{where}: `{command}` failed: {err}"
