"""tgpo.results.io's atomic writes give files and folders the modes the umask allows (issue 18, item 13):
mkstemp/mkdtemp create 0600/0700, which colleagues on a shared cluster cannot read."""

from __future__ import annotations

import os
import stat

import pytest

from tgpo.results import io


@pytest.fixture
def umask():
    """Run the test under a given umask, restoring the old one afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(
    "mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775), (0o077, 0o600, 0o700)]
)
def test_atomic_writes_honour_the_umask(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    io.write_text(tmp_path / "a.txt", "x")
    io.write_json(tmp_path / "b.json", {"a": 1})
    with io.atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "inside.txt").write_text("y")
    with io.atomic_dir(tmp_path / "folder") as tmp:  # replacing an existing folder
        (tmp / "inside.txt").write_text("z")
    assert mode(tmp_path / "a.txt") == file_mode
    assert mode(tmp_path / "b.json") == file_mode
    assert mode(tmp_path / "folder") == dir_mode
    assert (tmp_path / "folder" / "inside.txt").read_text() == "z"


def test_umask_reading_leaves_the_umask_unchanged(umask):
    umask(0o027)
    assert io.current_umask() == 0o027
    assert io.current_umask() == 0o027
