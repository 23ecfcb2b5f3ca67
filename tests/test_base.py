import pytest

from fgood_bench.datasets.base import list_images, missing_files, read_lines
from fgood_bench.errors import DatasetError


def test_read_lines_handles_bom_crlf_blank_lines_and_no_final_newline(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(b"\xef\xbb\xbf.//a b/1.jpg \r\n\r\n.//c/2.jpg")
    assert read_lines(path) == [(1, ".//a b/1.jpg"), (3, ".//c/2.jpg")]


def test_read_lines_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match=r"absent.txt: file is missing \(see doc.md\)"):
        read_lines(tmp_path / "absent.txt", "doc.md")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(DatasetError, match=r"latin1.txt: not UTF-8 text \(invalid continuation byte at byte 3\)"):
        read_lines(tmp_path / "latin1.txt")


def test_missing_files_scans_each_folder_once_and_keeps_order(tmp_path):
    for rel in ("a/1.jpg", "a/2.jpg", "b c/3.jpg", "top.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "a" / "dir.jpg").mkdir()  # a folder is not an image file
    wanted = ["a/2.jpg", "a/9.jpg", "b c/3.jpg", "nofolder/4.jpg", "top.jpg", "a/dir.jpg", "a/1.jpg"]
    assert missing_files(tmp_path, wanted) == ["a/9.jpg", "nofolder/4.jpg", "a/dir.jpg"]


def test_list_images_filters_by_extension_case_insensitively(tmp_path):
    for name in ("b.JPEG", "a.png", ".hidden.jpg", "notes.txt", "c.webp"):
        (tmp_path / name).write_bytes(b"x")
    assert list_images(tmp_path) == ["a.png", "b.JPEG", "c.webp"]
