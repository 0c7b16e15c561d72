"""neuraldrum.atomic: files and folders appear whole or not at all, with plain modes, and debris left by killed
writers is cleaned by the next write. Expected modes come from a plain open()/mkdir() made in the test."""
import ast
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from neuraldrum import atomic
from neuraldrum.atomic import atomic_file, atomic_folder, remove_stale, write_bytes, write_text


def mode(p) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def snapshot(folder: Path) -> dict:
    """Every file and folder under ``folder``: relative path → (mode, bytes or None for a folder)."""
    out = {".": (mode(folder), None)}
    for p in sorted(folder.rglob("*")):
        out[p.relative_to(folder).as_posix()] = (mode(p), None if p.is_dir() else p.read_bytes())
    return out


@pytest.fixture
def set_umask():
    old = os.umask(0o022)
    os.umask(old)
    yield lambda u: os.umask(u)
    os.umask(old)


def plain_modes(folder: Path) -> tuple[int, int]:
    """The modes a plain open() and mkdir() give in ``folder`` right now."""
    with open(folder / "plain-file", "w"):
        pass
    os.mkdir(folder / "plain-dir")
    modes = mode(folder / "plain-file"), mode(folder / "plain-dir")
    os.unlink(folder / "plain-file")
    os.rmdir(folder / "plain-dir")
    return modes


# ---------------------------------------------------------------- files

def test_file_write_lands_whole_with_nothing_beside_it(tmp_path):
    target = tmp_path / "sub" / "a.bin"
    assert write_bytes(target, b"\x00\x01") == target and target.read_bytes() == b"\x00\x01"
    assert write_text(target, "é") == target and target.read_bytes() == "é".encode("utf-8")
    with atomic_file(tmp_path / "b.wav", ".wav") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".b.wav.tmp-") and tmp.suffix == ".wav"
        assert tmp.exists() and not (tmp_path / "b.wav").exists()  # nothing at the target until the end
        tmp.write_bytes(b"RIFF")
    assert (tmp_path / "b.wav").read_bytes() == b"RIFF"
    assert names(tmp_path) == ["b.wav", "sub"] and names(tmp_path / "sub") == ["a.bin"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_failed_file_write_keeps_the_old_file_and_leaves_no_debris(tmp_path, exc):
    target = tmp_path / "report.md"
    target.write_text("old")
    with pytest.raises(exc):
        with atomic_file(target) as tmp:
            tmp.write_text("half")
            raise exc("disk full")
    assert target.read_text() == "old" and names(tmp_path) == ["report.md"]
    with pytest.raises(RuntimeError):  # a writer that replaced the temp file with its own
        with atomic_file(tmp_path / "new.md") as tmp:
            os.unlink(tmp)
            tmp.write_text("half")
            raise RuntimeError
    assert names(tmp_path) == ["report.md"]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002, 0o077])
def test_modes_are_a_plain_open_and_mkdir(tmp_path, set_umask, umask):
    set_umask(umask)
    file_mode, dir_mode = plain_modes(tmp_path)
    assert (file_mode, dir_mode) == (0o666 & ~umask, 0o777 & ~umask)

    assert mode(write_text(tmp_path / "a.txt", "x")) == file_mode
    with atomic_file(tmp_path / "b.bin") as tmp:  # a writer that makes its own private file
        os.unlink(tmp)
        fd, private = tempfile.mkstemp(dir=tmp_path)
        os.close(fd)
        os.replace(private, tmp)
    assert mode(tmp_path / "b.bin") == file_mode

    with atomic_folder(tmp_path / "bundle") as tmp:
        (tmp / "plain.json").write_text("{}")
        fd, private = tempfile.mkstemp(dir=tmp)  # 0600
        os.close(fd)
        nested = Path(tempfile.mkdtemp(dir=tmp))  # 0700
        write_bytes(nested / "w.bin", b"1")
    folder = tmp_path / "bundle"
    assert mode(folder) == dir_mode and mode(folder / nested.name) == dir_mode
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert len(files) == 3 and {mode(p) for p in files} == {file_mode}


def test_umask_is_never_set_while_writing(tmp_path, monkeypatch):
    def no(*a):
        raise AssertionError("os.umask called: setting it to read it races with other threads")

    monkeypatch.setattr(os, "umask", no)
    write_text(tmp_path / "a", "x")
    with atomic_folder(tmp_path / "f") as tmp:
        (tmp / "x").write_text("x")
    assert names(tmp_path) == ["a", "f"]


def test_threads_writing_at_once_all_get_plain_modes(tmp_path, set_umask):
    set_umask(0o027)  # not the 0o022 that the old helpers set for an instant
    file_mode, dir_mode = plain_modes(tmp_path)
    errors = []

    def work(k):
        try:
            for i in range(40):
                write_text(tmp_path / f"t{k}-{i}.json", "{}")
                with open(tmp_path / f"p{k}-{i}.txt", "w"):  # plain files made meanwhile, by other code
                    pass
                if i % 8 == 0:
                    with atomic_folder(tmp_path / f"d{k}-{i}") as tmp:
                        (tmp / "x").write_text("x")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave the threads as much as the interpreter allows
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(switch)
    assert not errors
    made = list(tmp_path.iterdir())
    assert len(made) == 8 * (40 + 40 + 5)
    assert {mode(p) for p in made if p.is_file()} == {file_mode}
    assert {mode(p) for p in made if p.is_dir()} == {dir_mode}
    assert {mode(p / "x") for p in made if p.is_dir()} == {file_mode}


# ---------------------------------------------------------------- folders

def make_old(folder: Path) -> dict:
    (folder / "deep").mkdir(parents=True)
    (folder / "manifest.jsonl").write_text("old manifest\n")
    (folder / "audio.npy").write_bytes(b"\x93NUMPY old")
    (folder / "deep" / "x.txt").write_text("old x")
    os.chmod(folder / "deep" / "x.txt", 0o600)  # an odd mode the failed write must not touch
    return snapshot(folder)


@pytest.mark.parametrize("exc", [OSError, KeyboardInterrupt])
def test_failed_folder_write_leaves_the_old_folder_exactly_as_it_was(tmp_path, exc):
    target = tmp_path / "corpus"
    before = make_old(target)
    with pytest.raises(exc):
        with atomic_folder(target) as tmp:
            assert tmp.parent == tmp_path and tmp.is_dir() and names(tmp) == []
            (tmp / "manifest.jsonl").write_text("new manifest\n")
            write_bytes(tmp / "audio.npy", b"new")
            raise exc("disk full")
    assert snapshot(target) == before and names(tmp_path) == ["corpus"]
    with pytest.raises(exc):  # no old folder: nothing appears
        with atomic_folder(tmp_path / "fresh") as tmp:
            (tmp / "a").write_text("a")
            raise exc("disk full")
    assert names(tmp_path) == ["corpus"]


def test_folder_write_replaces_the_whole_old_folder(tmp_path):
    target = tmp_path / "corpus"
    make_old(target)
    with atomic_folder(target) as tmp:
        (tmp / "build.json").write_text("{}")
        assert (target / "manifest.jsonl").read_text() == "old manifest\n"  # readers see the old one meanwhile
    assert names(target) == ["build.json"] and names(tmp_path) == ["corpus"]
    with atomic_folder(tmp_path / "a" / "b") as tmp:  # missing parents are made
        (tmp / "f").write_text("f")
    assert (tmp_path / "a" / "b" / "f").read_text() == "f"


def test_folder_over_a_file_is_refused(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        with atomic_folder(tmp_path / "thesis.tex"):
            pass
    assert (tmp_path / "thesis.tex").read_text() == "precious" and names(tmp_path) == ["thesis.tex"]


# ---------------------------------------------------------------- writers killed with SIGKILL

KILLED_FOLDER = """
import os, sys
from neuraldrum.atomic import atomic_folder
with atomic_folder(sys.argv[1]) as tmp:
    (tmp / "manifest.jsonl").write_text("half")
    (tmp / "sub").mkdir()
    (tmp / "sub" / "b.txt").write_text("half")
    os.kill(os.getpid(), 9)
"""

KILLED_FILE = """
import os, sys
from neuraldrum.atomic import atomic_file
with atomic_file(sys.argv[1], ".wav") as tmp:
    tmp.write_bytes(b"half")
    os.kill(os.getpid(), 9)
"""

# killed after moving the old folder aside, before renaming the new one in
KILLED_BETWEEN_RENAMES = """
import os, sys
from neuraldrum.atomic import atomic_folder
rename = os.rename
def kill_on_second(a, b):
    if ".tmp-" in os.fspath(a):
        os.kill(os.getpid(), 9)
    rename(a, b)
os.rename = kill_on_second
with atomic_folder(sys.argv[1]) as tmp:
    (tmp / "manifest.jsonl").write_text("new")
"""


def run_killed(script: str, target: Path) -> int:
    proc = subprocess.Popen([sys.executable, "-c", script, str(target)])
    assert proc.wait(timeout=120) == -signal.SIGKILL
    return proc.pid


def debris(folder: Path, name: str, pid: int) -> list[str]:
    return [n for n in names(folder) if re.fullmatch(rf"\.{re.escape(name)}\.(tmp|old)-{pid}-[0-9a-f]{{8}}.*", n)]


def test_killed_folder_write_leaves_debris_that_the_next_write_cleans(tmp_path):
    target = tmp_path / "corpus"
    before = make_old(target)
    pid = run_killed(KILLED_FOLDER, target)
    left = debris(tmp_path, "corpus", pid)
    assert len(left) == 1 and (tmp_path / left[0] / "sub" / "b.txt").read_text() == "half"
    assert snapshot(target) == before  # the old one untouched

    with atomic_folder(target) as tmp:
        (tmp / "manifest.jsonl").write_text("new")
    assert names(tmp_path) == ["corpus"] and names(target) == ["manifest.jsonl"]
    assert (target / "manifest.jsonl").read_text() == "new"


def test_killed_file_write_leaves_debris_that_the_next_write_cleans(tmp_path):
    target = tmp_path / "kick.wav"
    target.write_bytes(b"old")
    pid = run_killed(KILLED_FILE, target)
    assert len(debris(tmp_path, "kick.wav", pid)) == 1 and target.read_bytes() == b"old"
    with atomic_file(target, ".wav") as tmp:
        tmp.write_bytes(b"new")
    assert names(tmp_path) == ["kick.wav"] and target.read_bytes() == b"new"


def test_killed_between_renames_the_old_folder_comes_back(tmp_path):
    target = tmp_path / "corpus"
    before = make_old(target)
    pid = run_killed(KILLED_BETWEEN_RENAMES, target)
    assert not target.exists() and len(debris(tmp_path, "corpus", pid)) == 2  # .old- and .tmp-
    with pytest.raises(RuntimeError):  # the next write puts the old one back first, and fails
        with atomic_folder(target):
            raise RuntimeError
    assert snapshot(target) == before and names(tmp_path) == ["corpus"]


def test_only_dead_writers_debris_of_the_same_target_is_removed(tmp_path):
    pid = run_killed("import os; os.kill(os.getpid(), 9)", tmp_path)  # a pid that is surely dead now
    keep = [f".a.tmp-{os.getpid()}-0123abcd",  # a live writer (this process)
            f".b.tmp-{pid}-0123abcd",  # another target
            f".a.tmp-{pid}-0123abcz", f".a.tmp-{pid}-0123abc", f"a.tmp-{pid}-0123abcd",  # not the pattern
            f".a.tmp-{pid}-0123abcd.wav"]  # another suffix
    gone = [f".a.tmp-{pid}-89abcdef", f".a.old-{pid}-89abcdef"]
    (tmp_path / "a").write_text("a")
    for n in keep + gone[:1]:
        (tmp_path / n).write_text("x")
    (tmp_path / gone[1]).mkdir()
    (tmp_path / gone[1] / "f").write_text("x")
    assert sorted(p.name for p in remove_stale(tmp_path / "a")) == sorted(gone)
    assert names(tmp_path) == sorted(keep + ["a"])
    assert [p.name for p in remove_stale(tmp_path / "a", ".wav")] == [keep[-1]]


def test_atomic_imports_nothing_from_the_package():
    tree = ast.parse(Path(atomic.__file__).read_text())
    imported = [n.module if isinstance(n, ast.ImportFrom) else a.name
                for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names]
    relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
    assert not relative and not [m for m in imported if m and m.split(".")[0] == "neuraldrum"]


def test_foreign_entries_some_and_scratch_folder(tmp_path):
    """What replacing a folder would delete that its writer did not write (folders and links too); a short list
    of them; and a scratch folder beside a target that is gone afterwards, as is one a killed process left."""
    from neuraldrum.atomic import foreign_entries, scratch_folder, some

    d = tmp_path / "d"
    d.mkdir()
    for name in ("kit.json", "a.wav", "notes.txt"):
        (d / name).write_text("x")
    (d / "sub").mkdir()
    (d / "link.wav").symlink_to(d / "a.wav")
    assert foreign_entries(d, {"kit.json", "a.wav", "link.wav"}.__contains__) == ["link.wav", "notes.txt", "sub/"]
    assert some(["a", "b"]) == "a, b" and some(list("abcde")) == "a, b, c and 2 more"
    dead = tmp_path / ".out.tmp-999999999-0123abcd"  # a killed writer's (no such pid)
    dead.mkdir()
    with scratch_folder(tmp_path / "out") as tmp:
        assert tmp.is_dir() and tmp.parent == tmp_path and not dead.exists()
        (tmp / "f").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
