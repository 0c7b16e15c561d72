"""The OSC server's default sounds folder is private to the user: made 0700, refused when another user (or a
link, or a group/world-writable folder) got there first."""
import os
import stat

import pytest

from neuraldrum.control.osc_server import default_folder, private_folder


def test_default_folder_names_the_user_and_port():
    f = default_folder(9123)
    assert f.name == f"neuraldrum-osc-{os.getuid()}-9123"


def test_a_new_folder_is_private(tmp_path):
    f = private_folder(tmp_path / "snd")
    assert f.is_dir() and stat.S_IMODE(f.stat().st_mode) & 0o077 == 0
    assert private_folder(f) == f  # ours already: taken as it is


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_a_folder_others_may_write_is_refused(tmp_path, mode):
    f = tmp_path / "snd"
    f.mkdir()
    f.chmod(mode)
    with pytest.raises(PermissionError, match="snd: exists but is not a private folder"):
        private_folder(f)


def test_a_link_or_a_file_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(PermissionError, match="link: exists but"):
        private_folder(tmp_path / "link")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(PermissionError, match="file: exists but"):
        private_folder(tmp_path / "file")


def test_another_users_folder_is_refused(tmp_path):
    if os.getuid() != 0:
        pytest.skip("needs root to give the folder to another user")
    f = tmp_path / "snd"
    f.mkdir(mode=0o700)
    os.chown(f, 65534, 65534)  # nobody
    with pytest.raises(PermissionError, match="another user"):
        private_folder(f)
