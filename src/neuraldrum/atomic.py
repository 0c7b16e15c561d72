"""Atomic writes: a file or a whole folder appears at its path complete, or not at all.

Every writer in the package goes through here (audio, reports, checkpoints, corpora, bundles)::

    with atomic_file("out/kick.wav", ".wav") as tmp:    # tmp: a Path beside the target
        soundfile.write(tmp, x, sr)                     # renamed onto out/kick.wav when the block ends
    with atomic_folder("corpus") as tmp:                # tmp: an empty folder beside "corpus"
        (tmp / "build.json").write_text("{}")           # the whole folder replaces "corpus" at once
    write_text("report.md", text)
    write_bytes("blob.bin", data)
    write_new(["out/kick_000.wav", "out/kick_001.wav"], write)  # the first free name; never replaces a file

On success the target gets the mode a plain ``open()`` / ``mkdir()`` would give it (0666 / 0777 less the
umask), whatever made the temp file; on any exception, ``KeyboardInterrupt`` included, the temp file or
folder is removed and an old target is left as it was.

The umask is never read with ``os.umask`` (setting it to read it races with other threads' file creation):
the temp file is created with mode 0666 (the folder with 0777) and the kernel applies the umask, exactly as
for a plain ``open()``; the mode it gets is the one the target keeps.

Temp names are ``.{name}.tmp-{pid}-{8 hex digits}{suffix}`` (and ``.{name}.old-{pid}-…`` for a folder being
replaced). A process killed mid-write (``kill -9``, power loss) leaves one behind; the next atomic write to
the same target removes every such name whose pid is no longer alive. (A pid is checked on this machine and
in this pid namespace: do not share one folder between writers in different containers.)

Imports nothing from the package: everything may use it.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Callable, Iterable, Iterator, Union

PathLike = Union[str, os.PathLike]

__all__ = ["atomic_file", "atomic_folder", "write_bytes", "write_text", "remove_stale", "write_new", "target_of",
           "foreign_entries", "some", "scratch_folder"]


def _temp_name(path: Path, kind: str = "tmp", suffix: str = "") -> Path:
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale(path: PathLike, suffix: str = "") -> list[Path]:
    """Remove what killed writers to ``path`` left beside it: files or folders named
    ``.{name}.tmp-{pid}-{hex}{suffix}`` or ``.{name}.old-{pid}-{hex}`` whose pid is not a live process.
    A folder that was renamed aside (``.old-``) is put back instead when ``path`` itself is missing.
    Returns what was removed or put back.

    Called by :func:`atomic_file` and :func:`atomic_folder` before they start.
    """
    path = Path(path)
    tail = f"(?:{re.escape(suffix)})?" if suffix else ""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(tmp|old)-(\d+)-[0-9a-f]{{8}}{tail}")
    try:
        names = sorted(os.listdir(path.parent))
    except FileNotFoundError:
        return []
    done = []
    for name in names:
        m = pattern.fullmatch(name)
        if not m or _alive(int(m.group(2))):
            continue
        try:
            if m.group(1) == "old" and not os.path.lexists(path):
                os.rename(path.parent / name, path)  # killed between its two renames: the old one goes back
            else:
                _remove(path.parent / name)
        except OSError:  # another process got there first
            continue
        done.append(path.parent / name)
    return done


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _new_temp(path: Path, suffix: str, clean: bool = True) -> tuple[Path, int]:
    """Create an empty temp file beside ``path`` (its folder made when missing; killed writers' debris removed
    first unless ``clean`` is False). Returns it and the mode a plain ``open()`` gives a new file here."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if clean:
        remove_stale(path, suffix)
    tmp = _temp_name(path, suffix=suffix)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the kernel applies the umask
    try:
        return tmp, os.fstat(fd).st_mode & 0o7777
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: PathLike, suffix: str = "", *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temp file beside ``path`` (created empty; write to it by name); on success it is renamed onto
    ``path`` with a plain ``open()``'s mode, on any exception it is removed and ``path`` is untouched.

    Args:
        path: the target file; its folder is created when missing.
        suffix: ending of the temp name, for writers that choose a format by extension (".wav").
        fsync: flush the data to disk before the rename (checkpoints), so a crash leaves the old file or
            the whole new one, never an empty one.
    """
    path = Path(path)
    tmp, mode = _new_temp(path, suffix)
    try:
        yield tmp
        os.chmod(tmp, mode)  # the writer may have replaced the file with one of its own
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def atomic_folder(path: PathLike) -> Iterator[Path]:
    """Yield an empty temp folder beside ``path``; on success it becomes ``path`` in one rename, on any
    exception it is removed whole and an old ``path`` is left exactly as it was.

    An existing ``path`` is renamed aside, the new folder renamed in, then the old one deleted: a reader
    sees the old folder, then (for the instant between two renames) none, then the new one; never a mix.
    The folder gets a plain ``mkdir()``'s mode; every file and folder inside it a plain ``open()``'s /
    ``mkdir()``'s (whatever made them), so a corpus or bundle is as readable as any other file.

    A ``path`` that is a link to a folder stays a link: the folder it points to is the one replaced.

    Raises:
        NotADirectoryError: ``path`` exists and is not a folder.
    """
    path = Path(path)
    if path.is_symlink() and path.is_dir():
        path = Path(os.path.realpath(path))  # write where the link points; the link itself is the user's
    if os.path.lexists(path) and not path.is_dir():
        raise NotADirectoryError(f"{path}: exists and is not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = _temp_name(path)
    os.mkdir(tmp, 0o777)  # the kernel applies the umask
    dir_mode = tmp.stat().st_mode & 0o7777
    file_mode = dir_mode & 0o666
    old = None
    try:
        yield tmp
        for root, dirs, files in os.walk(tmp):
            for name in dirs:
                if not os.path.islink(os.path.join(root, name)):
                    os.chmod(os.path.join(root, name), dir_mode)
            for name in files:
                if not os.path.islink(os.path.join(root, name)):
                    os.chmod(os.path.join(root, name), file_mode)
        os.chmod(tmp, dir_mode)
        if os.path.lexists(path):
            old = _temp_name(path, "old")
            os.rename(path, old)
        try:
            os.rename(tmp, path)
        except BaseException:
            if old is not None:
                os.rename(old, path)
                old = None
            raise
    except BaseException:
        _remove(tmp)
        raise
    if old is not None:
        _remove(old)


def foreign_entries(folder: PathLike, ours: Callable[[str], bool]) -> list[str]:
    """What replacing ``folder`` whole would delete that its writer did not write: every entry that is not a
    plain file whose name ``ours`` accepts (folders and links included; a folder's name ends in "/"), sorted."""
    return sorted(p.name + ("/" if p.is_dir() else "") for p in Path(folder).iterdir()
                  if not p.is_file() or p.is_symlink() or not ours(p.name))


def some(names: list[str], k: int = 3) -> str:
    """The first ``k`` names, and how many more: "a, b, c and 2 more"."""
    return ", ".join(names[:k]) + (f" and {len(names) - k} more" if len(names) > k else "")


@contextlib.contextmanager
def scratch_folder(path: PathLike) -> Iterator[Path]:
    """An empty folder beside ``path`` for work to do before ``path`` is written, removed afterwards (also on
    Ctrl-C); named as :func:`atomic_folder`'s temp folders, so one a killed process left goes at the next write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = _temp_name(path)
    tmp.mkdir()
    try:
        yield tmp
    finally:
        _remove(tmp)


def write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically. Returns ``Path(path)``."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8 by default). Returns ``Path(path)``."""
    return write_bytes(path, text.encode(encoding))


def write_new(names: Iterable[PathLike], write: Callable[[Path], object], suffix: str = "", *,
              clean: bool = True) -> Path:
    """Write a file that replaces nothing: ``write(tmp)`` fills a temp file beside the first of ``names``, which
    then takes the first name of ``names`` that no file has. Each name is claimed with a hard link, which fails
    when the name exists, so concurrent writers never claim the same name and a file that appears meanwhile is
    skipped, not replaced. The file gets a plain ``open()``'s mode; on any exception nothing is left behind.

    Args:
        names: candidate paths in order of preference, all in one folder (created when missing); may be endless.
        write: fills the temp file (given as a Path; it exists, empty).
        suffix: ending of the temp name, for writers that choose a format by extension (".wav").
        clean: remove killed writers' debris beside the first name first (:func:`remove_stale`); a caller writing
            many files may do that once itself instead.

    Returns:
        the path the file now has.

    Raises:
        FileExistsError: every name in ``names`` is taken.
    """
    it = iter(names)
    path = Path(next(it))
    tmp, mode = _new_temp(path, suffix, clean)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        while True:
            try:
                _claim(tmp, path)
                return path
            except FileExistsError:
                nxt = next(it, None)
                if nxt is None:
                    raise FileExistsError(errno.EEXIST, "exists; nothing was replaced", str(path)) from None
                path = Path(nxt)
    finally:
        _remove(tmp)


def _claim(tmp: Path, path: Path) -> None:
    """Give ``tmp``'s contents the name ``path`` if no file has it (FileExistsError otherwise)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as e:  # a file system without hard links: claim the name empty, then rename onto it
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        try:
            os.replace(tmp, path)
        except BaseException:
            _remove(path)
            raise


_TEMP = re.compile(r"\.(.+)\.(?:tmp|old)-\d+-[0-9a-f]{8}.*")


def target_of(path: PathLike) -> Path:
    """The path a temp name of this module stands for (``out/.kick.wav.tmp-12-0a1b2c3d.wav`` → ``out/kick.wav``),
    so that an error names the file a user asked for; a temp folder in the path too (``.kit.tmp-…/kick.wav`` →
    ``kit/kick.wav``); any other path unchanged."""
    def target(part: str) -> str:
        while (m := _TEMP.fullmatch(part)) is not None:
            part = m.group(1)
        return part
    path = Path(path)
    return Path(*[target(part) for part in path.parts]) if path.parts else path
