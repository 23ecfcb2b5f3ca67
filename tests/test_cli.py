import json

from conftest import run_cli, run_cli_process
from fgood_bench.datasets import ADAPTERS, synthetic


def test_datasets_lists_every_adapter(capsys):
    status, out, _ = run_cli("datasets", capsys=capsys)
    assert status == 0
    assert [line.split()[0] for line in out.splitlines()] == list(ADAPTERS)
    assert len(ADAPTERS) == 11


def test_inspect_json_on_full_cub(full_cub, capsys):
    status, out, err = run_cli("inspect", "cub", "--root", full_cub.parent, "--json", capsys=capsys)
    assert status == 0, err
    report = json.loads(out)
    assert report["dataset"] == "cub" and report["num_classes"] == 200
    assert report["splits"] == {"train": 5994, "test": 5794}
    assert report["missing"] == {"train": 0, "test": 0}


def test_inspect_table_on_full_thudogs(full_thudogs, capsys):
    status, out, _ = run_cli("inspect", "thudogs", "--root", full_thudogs, capsys=capsys)
    assert status == 0
    assert "classes: 130" in out
    assert [line.split() for line in out.splitlines()[3:5]] == [["train", "65,228", "0"], ["val", "5,200", "0"]]


def test_inspect_counts_missing_images_and_fails(tmp_path, capsys):
    root = synthetic.write_sample("cub", tmp_path)
    images = sorted((root / "images").rglob("*.jpg"))
    for image in images[:3]:
        image.unlink()
    status, out, err = run_cli("inspect", "cub", "--root", root, "--json", capsys=capsys)
    assert status == 2
    assert sum(json.loads(out)["missing"].values()) == 3
    assert err.count("\n") == 1
    assert "image listed in the" in err and "3 listed images missing in all" in err
    assert "docs/datasets/cub.md" in err


def test_check_images_reports_corrupt_images_by_path(tmp_path, capsys):
    root = synthetic.write_sample("minc2500", tmp_path)
    broken = root / "images" / "wood" / "wood_000001.jpg"
    broken.write_bytes(broken.read_bytes()[:40])  # truncated JPEG
    (root / "images" / "brick" / "brick_000002.jpg").write_bytes(b"<html>not found</html>")
    status, out, err = run_cli("inspect", "minc2500", "--root", root, "--check-images", "--workers", "2", "--json", capsys=capsys)
    assert status == 2
    unreadable = json.loads(out)["unreadable"]
    assert [u["path"] for u in unreadable] == ["images/brick/brick_000002.jpg", "images/wood/wood_000001.jpg"]
    lines = err.splitlines()
    assert len(lines) == 2 and all("unreadable image" in line for line in lines)
    assert str(root / "images/brick/brick_000002.jpg") in lines[0]


def test_check_images_parallel_on_many_images(full_flowers, capsys):
    status, out, _ = run_cli("inspect", "flowers102", "--root", full_flowers, "--check-images", "--json", capsys=capsys)
    assert status == 0
    assert json.loads(out)["unreadable"] == []


def test_inspect_sample_for_every_dataset(capsys):
    for name in ADAPTERS:
        status, out, err = run_cli("inspect", name, "--sample", "--check-images", "--json", capsys=capsys)
        assert status == 0, (name, err)
        report = json.loads(out)
        assert report["dataset"] == name and report["num_classes"] > 0 and report["unreadable"] == []


def test_adapter_options_are_passed_and_checked(tmp_path, capsys):
    root = synthetic.write_sample("dtd", tmp_path)
    status, _, err = run_cli("inspect", "dtd", "--root", root, "--partition", "11", capsys=capsys)
    assert status == 2 and "partition must be 1..10, got 11" in err
    status, _, err = run_cli("inspect", "cub", "--root", root, "--partition", "2", capsys=capsys)
    assert status == 2 and "option 'partition' does not apply to cub" in err


def test_errors_are_one_line_without_traceback(tmp_path):
    result = run_cli_process("inspect", "cub", "--root", tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"fgood-bench: error: {tmp_path}: not a CUB-200-2011 download")
    result = run_cli_process("inspect", "nosuchset", "--root", tmp_path)
    assert result.returncode == 2 and "unknown dataset 'nosuchset'; choose from cub, thudogs" in result.stderr
    result = run_cli_process("inspect", "cub")
    assert result.returncode == 2 and "inspect needs --root DIR" in result.stderr


def test_help_describes_commands():
    result = run_cli_process("--help")
    assert result.returncode == 0 and "inspect" in result.stdout and "datasets" in result.stdout
    result = run_cli_process("inspect", "--help")
    assert "--check-images" in result.stdout and "--partition" in result.stdout


def test_sample_refuses_a_folder_with_content(tmp_path, capsys):
    (tmp_path / "CUB_200_2011").mkdir()
    (tmp_path / "CUB_200_2011" / "images.txt").write_text("1 real/line.jpg\n")
    status, _, err = run_cli("inspect", "cub", "--sample", "--root", tmp_path, capsys=capsys)
    assert status == 2 and "needs an empty or new folder" in err
    assert (tmp_path / "CUB_200_2011" / "images.txt").read_text() == "1 real/line.jpg\n"
    status, _, err = run_cli("inspect", "nosuchset", "--sample", capsys=capsys)
    assert status == 2 and "unknown dataset 'nosuchset'" in err
