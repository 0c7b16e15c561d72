"""The sound verbs' outputs (issue #15, items 2, 5 and 6): a file the run did not make is never replaced unless
``--overwrite``; concurrent runs into one folder claim distinct names; OS errors and bad options are one line
naming the path or option, before anything is written; a failed run leaves no folder it made; results stream."""
import errno
import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from neuraldrum import atomic, cli, sounds
from neuraldrum.atomic import target_of, write_new
from neuraldrum.data.synth import synth
from neuraldrum.voice import generate_voices


@pytest.fixture
def run(bundle_dir, capsys):
    """``run(verb, *args)`` → (exit code, stdout, stderr) of the CLI in this process, on the tiny random bundle."""
    def go(*argv: str):
        capsys.readouterr()
        rc = cli.main([*map(str, argv), "--model", str(bundle_dir)])
        out, err = capsys.readouterr()
        return rc, out, err
    return go


@pytest.fixture
def src(tmp_path) -> Path:
    p = tmp_path / "src.wav"
    sf.write(str(p), synth("snare", seed=0), 22050)
    return p


def user_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"a user's own file")
    return path.read_bytes()


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- item 2: nothing replaced, no collisions

@pytest.mark.parametrize("verb", ["generate", "variations", "morph"])
def test_a_users_file_is_never_replaced_the_next_free_index_is_taken(verb, run, src, tmp_path):
    out = tmp_path / "out"
    args = {"generate": ["generate", "kick", "-n", "2", "--seed", "1"],
            "variations": ["variations", src, "-n", "2", "--seed", "1"],
            "morph": ["morph", src, src, "--steps", "2"]}[verb]
    first = {"generate": "kick_000.wav", "variations": "src_var000.wav", "morph": "morph_000.wav"}[verb]
    mine = user_file(out / first)
    rc, stdout, err = run(*args, "-o", out, "--json")
    assert rc == 0, err
    written = [f["file"] if isinstance(f, dict) else f for f in json.loads(stdout)["files"]]
    stem = first[:-7]
    assert [Path(f).name for f in written] == [f"{stem}001.wav", f"{stem}002.wav"]
    assert (out / first).read_bytes() == mine
    assert all(sf.info(f).frames > 0 for f in written)
    assert files_in(out) == [first] + [Path(f).name for f in written]  # no temp file left behind
    # a second run goes on after them; --overwrite writes from index 0, replacing by request
    rc, stdout, _ = run(*args, "-o", out)
    assert rc == 0 and [Path(f).name for f in stdout.split()] == [f"{stem}003.wav", f"{stem}004.wav"]
    assert (out / first).read_bytes() == mine
    rc, stdout, _ = run(*args, "-o", out, "--overwrite")
    assert rc == 0 and [Path(f).name for f in stdout.split()] == [first, f"{stem}001.wav"]
    assert (out / first).read_bytes() != mine and sf.info(str(out / first)).frames > 0


def test_resynth_refuses_an_existing_file_unless_overwrite(run, src, tmp_path):
    target = tmp_path / "r.wav"
    mine = user_file(target)
    rc, _, err = run("resynth", src, "-o", target)
    assert rc == 1 and err == f"neuraldrum: error: {target}: exists; pass --overwrite to replace it\n"
    assert target.read_bytes() == mine
    rc, stdout, err = run("resynth", src, "-o", target, "--overwrite")
    assert rc == 0 and stdout.strip() == str(target) and sf.info(str(target)).frames == 22016
    fresh = tmp_path / "new" / "r.wav"
    assert run("resynth", src, "-o", fresh)[0] == 0 and sf.info(str(fresh)).frames == 22016


@pytest.mark.slow
def test_concurrent_runs_into_one_folder_never_collide(bundle_dir, engine, tmp_path):
    """4 processes write 10 sounds each into one folder at once: 40 distinct files, each holding the sound of the
    run (seed) that reports it."""
    shared, seeds = tmp_path / "shared", [11, 22, 33, 44]
    cmd = [sys.executable, "-m", "neuraldrum", "generate", "kick", "-n", "10", "--json", "--model", str(bundle_dir),
           "-o", str(shared)]
    procs = [subprocess.Popen(cmd + ["--seed", str(s)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for s in seeds]
    results = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err[-2000:] for _, err in results]
    reported = {s: [f["file"] for f in json.loads(out)["files"]] for s, (out, _) in zip(seeds, results)}
    names = [f for files in reported.values() for f in files]
    assert len(names) == 40 and len(set(names)) == 40
    assert files_in(shared) == sorted(Path(f).name for f in names)  # and nothing else (no temp files)
    for s, files in reported.items():  # each file against a render of its own run's seed in this process
        for got, want in zip(files, engine.render(generate_voices("kick", 10, s))):
            assert np.abs(sf.read(got, dtype="float32")[0] - np.clip(want, -1, 1)).max() <= 2 / 32768, (s, got)


# ---------------------------------------------------------------- item 5: OS errors are one line naming the path

def test_path_problems_are_one_line_naming_the_path(run, src, tmp_path):
    blocker = tmp_path / "FILE"
    blocker.write_text("x")
    cases = [(["generate", "kick", "-o", blocker / "sub"], f"{blocker / 'sub'}: {blocker} is a file, not a folder"),
             (["generate", "kick", "-o", blocker], f"{blocker}: exists and is not a folder"),
             (["generate", "kick", "-o", ""], "-o '': an empty path; name the output"),
             (["resynth", src, "-o", ""], "-o '': an empty path; name the output"),
             (["resynth", src, "-o", tmp_path], f"{tmp_path}: is a folder; -o names the WAV file to write"),
             (["resynth", src, "-o", blocker / "r.wav"], f"{blocker / 'r.wav'}: {blocker} is a file, not a folder"),
             (["variations", src, "-o", blocker / "v"], f"{blocker / 'v'}: {blocker} is a file, not a folder")]
    before = files_in(tmp_path)
    for argv, message in cases:
        assert run(*argv) == (1, "", f"neuraldrum: error: {message}\n"), argv
    assert files_in(tmp_path) == before and blocker.read_text() == "x"


@pytest.fixture
def read_only(monkeypatch, tmp_path):
    """A folder where creating a file is refused as on a read-only mount (a chmod does not stop root)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.open

    def fake(path, flags, *a, **k):
        if str(path).startswith(str(ro)) and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, flags, *a, **k)
    monkeypatch.setattr(os, "open", fake)
    return ro


def test_a_read_only_output_is_one_line_naming_the_file(run, src, read_only):
    assert run("generate", "kick", "-o", read_only) == (
        1, "", f"neuraldrum: error: {read_only / 'kick_000.wav'}: Permission denied\n")
    assert run("resynth", src, "-o", read_only / "r.wav") == (
        1, "", f"neuraldrum: error: {read_only / 'r.wav'}: Permission denied\n")
    assert run("generate", "kick", "-o", read_only / "sub") == (
        1, "", f"neuraldrum: error: {read_only / 'sub' / 'kick_000.wav'}: Permission denied\n")
    assert files_in(read_only) == []  # the folder the failed run made is gone


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing(run, src, monkeypatch, tmp_path):
    class Full:
        def __init__(self, *a):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(sounds, "open", Full, raising=False)
    out = tmp_path / "a" / "b"
    assert run("generate", "kick", "-o", out) == (
        1, "", f"neuraldrum: error: {out / 'kick_000.wav'}: No space left on device\n")
    assert run("resynth", src, "-o", out / "r.wav") == (
        1, "", f"neuraldrum: error: {out / 'r.wav'}: No space left on device\n")
    assert files_in(tmp_path) == ["src.wav"]  # neither a temp file nor the folders the runs made


def test_any_os_error_reaches_the_user_as_one_line(monkeypatch, bundle_dir, capsys):
    def boom(args):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", "/x/.model.json.tmp-1-0a1b2c3d.json")
    monkeypatch.setattr(sounds, "cmd_classes", boom)
    assert cli.main(["classes", "--model", str(bundle_dir)]) == 1
    assert capsys.readouterr().err == "neuraldrum: error: /x/model.json: Is a directory\n"


# ---------------------------------------------------------------- item 6: options are checked first, named

BAD = [(["generate", "kick", "-n", "0"], "-n 0: must be a whole number ≥ 1"),
       (["generate", "kick", "-n", "-1"], "-n -1: must be a whole number ≥ 1"),
       (["generate", "kick", "--seed", "-1"], "--seed -1: must be a whole number from 0 to 9223372036854775807"),
       (["generate", "kick", "-n", "2", "--seed", str(2 ** 63 - 1)], f"--seed {2 ** 63 - 1}: must be a whole number "
                                                                     f"from 0 to {2 ** 63 - 2}"),
       (["generate", "kick", "--temperature", "nan"], "--temperature nan: must be a finite number in [0, 10]"),
       (["generate", "kick", "--temperature", "1e30"], "--temperature 1e+30: must be a finite number in [0, 10]"),
       (["generate", "kick", "--temperature", "-1", "--x", "0.5"], "--temperature -1: must be a finite number in "
                                                                   "[0, 10]"),
       (["generate", "kick", "--temperature", "0.5", "--x", "0.5"], "--temperature: applies to prior samples "
        "only; --x/--y/--fine/--range/--axes start from the class centre, so leave it out"),
       (["generate", "kick", "--x", "2"], "--x 2: must be a finite number in [-1, 1]"),
       (["generate", "kick", "--range", "inf"], "--range inf: must be a finite number in (0, 1000]"),
       (["generate", "kick", "--range", "0"], "--range 0: must be a finite number in (0, 1000]"),
       (["generate", "kick", "--axes", "a,b"], "--axes a,b: use 'pca' or two latent dimensions 'i,j' "
                                               "(whole numbers ≥ 0)"),
       (["generate", "kick", "--axes", "1,99"], "--axes 1,99: this model's latent dimensions are 0..7"),
       (["generate", "kick", "--decay", "0"], "--decay 0: must be a finite number > 0"),
       (["generate", "kick", "--velocity", "0"], "--velocity 0: must be a finite number in [1, 127]"),
       (["generate", "kick", "--threads", "-2"], "--threads -2: must be a whole number from 1 to"),
       (["generate", "kick", "--threads", "100000"], "--threads 100000: must be a whole number from 1 to"),
       (["variations", "SRC", "--amount", "nan"], "--amount nan: must be a finite number in [0, 100]"),
       (["variations", "SRC", "--amount", "inf"], "--amount inf: must be a finite number in [0, 100]"),
       (["variations", "SRC", "-n", "0"], "-n 0: must be a whole number ≥ 1"),
       (["morph", "SRC", "SRC", "--steps", "1"], "--steps 1: must be a whole number ≥ 2"),
       (["kit", "--seed", "-1"], "--seed -1: must be a whole number from 0 to"),
       (["kit", "--temperature", "inf"], "--temperature inf: must be a finite number in [0, 10]")]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a[2:] if a[0] == "morph" else a[1:]) for a, _ in BAD])
def test_bad_options_are_refused_first_naming_the_option(argv, message, run, src, tmp_path):
    out = tmp_path / "a" / "out"
    rc, stdout, err = run(*[src if a == "SRC" else a for a in argv], "-o", out)
    assert rc == 1 and stdout == "" and err.startswith(f"neuraldrum: error: {message}") and err.count("\n") == 1
    assert files_in(tmp_path) == ["src.wav"]  # nothing written, no folder made


def test_a_run_that_fails_after_making_its_folder_removes_it(run, monkeypatch, tmp_path):
    from neuraldrum.engine import Engine

    def fail(self, voices):
        raise ValueError("the model failed")
    monkeypatch.setattr(Engine, "render", fail)
    (tmp_path / "kept").mkdir()
    assert run("generate", "kick", "-o", tmp_path / "a" / "b" / "c") == (1, "", "neuraldrum: error: the model failed\n")
    assert run("generate", "kick", "-o", tmp_path / "kept" / "new")[0] == 1
    assert files_in(tmp_path) == ["kept"] and files_in(tmp_path / "kept") == []


def test_prior_settings_are_recorded_only_when_used(run, tmp_path):
    rc, stdout, _ = run("generate", "kick", "--x", "0.5", "--json", "-o", tmp_path)
    assert rc == 0 and json.loads(stdout)["files"][0]["temperature"] is None
    rc, stdout, _ = run("generate", "kick", "--temperature", "0.5", "--json", "-o", tmp_path)
    assert rc == 0 and json.loads(stdout)["files"][0]["temperature"] == 0.5


def test_results_stream_as_written_with_progress_for_long_runs(run, engine, monkeypatch, capsys, tmp_path):
    """With 2 sounds per batch, the first batch's names are printed before the second batch is rendered; a long
    run reports progress on stderr; the files are those of one batch of 5."""
    from neuraldrum.engine import Engine

    monkeypatch.setattr(sounds, "CHUNK", 2)
    monkeypatch.setattr(sounds, "LONG_RUN", 5)
    render, seen, errs = Engine.render, [], []

    def spy(self, voices):
        out, err = capsys.readouterr()  # what was printed before this batch
        seen.append(out)
        errs.append(err)
        return render(self, voices)
    monkeypatch.setattr(Engine, "render", spy)
    rc, stdout, err = run("generate", "kick", "-n", "5", "--seed", "7", "-o", tmp_path)
    printed = seen[1].split() + seen[2].split() + stdout.split()
    assert rc == 0 and len(seen) == 3 and seen[0] == "" and len(seen[1].split()) == 2 and len(seen[2].split()) == 2
    assert printed == [str(tmp_path / f"kick_{k:03d}.wav") for k in range(5)]
    assert "".join(errs[1:] + [err]).splitlines() == [f"neuraldrum: {k}/5 sounds written" for k in range(1, 6)]
    want = render(engine, generate_voices("kick", 5, 7))
    for p, w in zip(printed, want):
        got = sf.read(p, dtype="float32")[0]
        assert np.abs(got - np.clip(w, -1, 1)).max() <= 2 / 32768


@pytest.mark.parametrize("verb", ["variations", "morph", "morph across classes"])
def test_variations_and_morph_stream_too(run, engine, monkeypatch, src, tmp_path, verb):
    """variations and morph render CHUNK sounds at a time (all at once, a morph of 100 000 steps took 23.5 GB
    before the kernel killed it), and write the same sounds as the engine's one-batch variations and morph."""
    from neuraldrum.engine import Engine

    monkeypatch.setattr(sounds, "CHUNK", 2)
    sizes, batch, mix = [], Engine.generate_batch, type(engine.backend).mix
    monkeypatch.setattr(Engine, "generate_batch", lambda self, c, z: sizes.append(len(z)) or batch(self, c, z))
    monkeypatch.setattr(type(engine.backend), "mix", lambda self, a, b, t, z: sizes.append(len(z)) or mix(self, a, b, t, z))
    other = tmp_path / "kick.wav"
    sf.write(str(other), synth("kick", seed=1), 22050)
    argv = {"variations": ["variations", src, "-n", "5", "--seed", "3"],
            "morph": ["morph", src, src, "--steps", "5"],
            "morph across classes": ["morph", src, other, "--steps", "5"]}[verb]
    rc, stdout, err = run(*argv, "-o", tmp_path / "out", "--json")
    assert rc == 0, err
    files = sorted((tmp_path / "out").glob("*.wav"))
    assert sizes[-3:] == [2, 2, 1] and max(sizes) == 2 and len(files) == 5  # (before: the engine's warm-up)
    sizes.clear()
    x = str(src)  # (the engine reads a path as the verbs do)
    if verb == "variations":
        want = engine.variations(engine.encode(x), 5, 0.5, seed=3)
    else:
        b = x if verb == "morph" else str(other)
        want = engine.morph(engine.encode(x), engine.encode(b), 5)
    assert sizes == [5]  # (the engine's own: one batch)
    for p, w in zip(files, want):
        assert np.abs(sf.read(p, dtype="float32")[0] - np.clip(w, -1, 1)).max() <= 2 / 32768


def test_an_input_that_cannot_be_used_is_named(run, tmp_path):
    """encode, resynth, variations and morph read their inputs as files, so a refusal names the file (it said
    "<array>: silent")."""
    click = tmp_path / "click.wav"
    sf.write(str(click), np.r_[np.zeros(100), np.full(1, 1e-6), np.zeros(1000)], 22050)
    for argv in (["encode", click], ["resynth", click, "-o", tmp_path / "r.wav"],
                 ["variations", click, "-o", tmp_path / "v"], ["morph", click, click, "-o", tmp_path / "m"]):
        rc, _, err = run(*argv)
        assert rc == 1 and f"{click}: silent" in err and "<array>" not in err, err


# ---------------------------------------------------------------- the no-replace writer

def test_write_new_claims_the_first_free_name_and_leaves_nothing_else(tmp_path):
    names = [tmp_path / f"n{k}" for k in range(3)]
    names[0].write_bytes(b"old")
    assert write_new(names, lambda tmp: tmp.write_bytes(b"new")) == names[1]
    assert names[0].read_bytes() == b"old" and names[1].read_bytes() == b"new"
    with pytest.raises(FileExistsError):
        write_new(names[:2], lambda tmp: tmp.write_bytes(b"newer"))
    with pytest.raises(RuntimeError):
        write_new(names[2:], lambda tmp: (_ for _ in ()).throw(RuntimeError("writer failed")))
    assert files_in(tmp_path) == ["n0", "n1"]


def test_write_new_without_hard_links_still_never_replaces(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise PermissionError(errno.EPERM, "Operation not permitted", src, dst)
    monkeypatch.setattr(atomic.os, "link", no_links)
    names = [tmp_path / "a", tmp_path / "b"]
    names[0].write_bytes(b"old")
    assert write_new(names, lambda tmp: tmp.write_bytes(b"new")) == names[1]
    assert names[0].read_bytes() == b"old" and names[1].read_bytes() == b"new" and files_in(tmp_path) == ["a", "b"]


def test_target_of_names_what_a_temp_file_stands_for():
    assert target_of("out/.kick_000.wav.tmp-12-0a1b2c3d.wav") == Path("out/kick_000.wav")
    assert target_of("out/..k.wav.tmp-1-aaaaaaaa.wav.tmp-2-bbbbbbbb.wav") == Path("out/k.wav")
    assert target_of("out/.hidden.wav") == Path("out/.hidden.wav")


def test_write_new_from_many_threads_at_once_claims_each_name_once(tmp_path):
    """8 writers race for the same names from index 0: every file is someone's, whole, and nobody's is lost."""
    start, claimed = threading.Barrier(8), {}

    def writer(w: int):
        start.wait()
        for k in range(25):
            data = f"writer {w} file {k}".encode()
            names = (tmp_path / f"s_{i:03d}" for i in itertools.count())
            claimed[w, k] = write_new(names, lambda tmp, data=data: tmp.write_bytes(data))
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(claimed.values())) == 200 and len(files_in(tmp_path)) == 200
    assert all(p.read_bytes() == f"writer {w} file {k}".encode() for (w, k), p in claimed.items())
