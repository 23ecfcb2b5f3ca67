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
