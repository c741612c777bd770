import os

import pytest

from explr.errors import OutputError
from explr.fileio import write_atomic


def test_write_atomic_replaces_and_keeps_mode(tmp_path):
    target = tmp_path / "out.yaml"
    target.write_text("old")
    os.chmod(target, 0o640)
    write_atomic(target, "new")
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["out.yaml"]  # no temp file left behind


def test_unwritable_directory_is_one_clear_error(tmp_path):
    with pytest.raises(OutputError, match="missing/out.yaml: cannot write .*choose another -o path"):
        write_atomic(tmp_path / "missing" / "out.yaml", "x")
