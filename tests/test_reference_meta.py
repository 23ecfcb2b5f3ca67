"""tests/data/reference-meta/: every file the tests read is listed, with its checksum, in SOURCES.md."""

import hashlib
import re

from conftest import REFERENCE

# a table row: | local file | ... | bytes | `sha256` |
ROW = re.compile(r"^\| (\S+) \|.*\| (\d+) \| `([0-9a-f]{64})` \|$")


def test_every_reference_file_is_listed_with_its_size_and_sha256():
    rows = {m[1]: (int(m[2]), m[3]) for m in map(ROW.match, (REFERENCE / "SOURCES.md").read_text().splitlines()) if m}
    files = {p.relative_to(REFERENCE).as_posix(): p for p in REFERENCE.rglob("*") if p.is_file()}
    provenance_notes = {"SOURCES.md", "flowers102/SOURCE.md"}
    assert set(rows) == set(files) - provenance_notes
    for name, (size, sha256) in rows.items():
        content = files[name].read_bytes()
        assert (len(content), hashlib.sha256(content).hexdigest()) == (size, sha256), name
