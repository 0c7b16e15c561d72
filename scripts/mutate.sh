#!/usr/bin/env bash
# `make mutate`: mutation testing of the core modules with mutmut, printing the share of mutants killed per module.
#
# Each module is mutated in its own scratch copy of the project (outside the work tree, which is never touched),
# judged only by the tests chosen for it below (mutmut then runs, for each mutant, those of them that call the
# mutated function). Slow tests (-m slow), the real-corpus tests and subprocess tests are left out: a subprocess
# imports the unmutated package, so it cannot kill anything. Survivors judged equivalent are listed, with the
# reason, in docs/mutation.md.
#
#   make mutate                          every module below (those that exist), engine.py last
#   make mutate MODULES="bundle mel"     some of them (names as in the table, or paths)
#   MUTATE_JOBS=1 make mutate            fewer parallel mutants (default: the number of cores)
#   MUTATE_WORK=/tmp/m make mutate       where the copies, logs and survivor lists go (default: a new temp folder)
#   MUTATE_SAMPLE=all make mutate        every mutant of every module, ignoring the samples below (hours, not minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MUTMUT=$ROOT/.venv/bin/mutmut
PY=$ROOT/.venv/bin/python
JOBS=${MUTATE_JOBS:-$(nproc)}
WORK=${MUTATE_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/neuraldrum-mutate.XXXXXX")}
mkdir -p "$WORK"

# name | module | the tests that judge it (pytest node ids, space-separated) | which mutants (a glob on mutmut's
# names, which end in a running number: "*" all, "*[05]" the fifth whose number ends in 0 or 5, "*0" the tenth
# whose number ends in 0). Samples keep the whole run under half an hour on this project's 2-core machine (timed
# per module in docs/mutation.md): a fixed fifth of each module, all of train/checkpoint.py (cheap), a tenth of
# bundle.py (its fuzz test is slow), train/loop.py and data/build.py (each mutant costs a few training runs or
# corpus builds). The score of n mutants drawn alike is within about ±60/sqrt(n) points (95 %, near a 90 % score)
# of the full one: ±5 for 150 mutants, ±7 for 70, ±9 for 45. MUTATE_SAMPLE=all runs everything (hours).
# Left out for time: tests/test_resume.py (its bit-identical resume across a learning-rate cut trains for a
# minute and ran for every surviving loop mutant: 14 of the run's 31 minutes, for one more mutant killed; the
# mutants it kills are listed in docs/mutation.md) and tests/test_prior.py's ONNX test (an export per run).
# engine.py is judged by test_engine_paths.py and the engine's tests in test_engine.py (not that file's
# bundle tests, which judge bundle.py).
# the class prior's bundle tests: all of tests/test_prior.py but its ONNX export (16 s a run)
PRIOR_TESTS="tests/test_prior.py::test_fit_matches_numpy_mean_and_cov_of_independent_encodings
tests/test_prior.py::test_class_prior_samples_have_the_fitted_mean_and_covariance
tests/test_prior.py::test_round_trip_through_save_bundle tests/test_prior.py::test_invalid_priors_are_refused_naming_the_field
tests/test_prior.py::test_write_with_prior_refuses_wrong_shapes"
ENGINE_TESTS="tests/test_engine_paths.py tests/test_engine.py::test_generate_shapes_and_click_free
tests/test_engine.py::test_controls_move_along_pca_axes tests/test_engine.py::test_encode_resynth_variations_morph
tests/test_engine.py::test_engine_is_thread_safe
tests/test_engine.py::test_audio_boundary_accepts_layouts_and_names_bad_arguments"
TABLE="
mel|src/neuraldrum/audio/mel.py|tests/test_mel.py|*[05]
bundle|src/neuraldrum/bundle.py|tests/test_bundle.py tests/test_bundle_hardening.py $(echo $PRIOR_TESTS)|*0
checkpoint|src/neuraldrum/train/checkpoint.py|tests/test_checkpoint.py|*
loop|src/neuraldrum/train/loop.py|tests/test_loop.py tests/test_train.py::test_early_stopping_without_progress|*0
build|src/neuraldrum/data/build.py|tests/test_split.py tests/test_corpus_record.py tests/test_build.py|*0
graphs|src/neuraldrum/graphs.py|tests/test_graphs.py|*[05]
service|src/neuraldrum/service.py|tests/test_service.py|*[05]
kit|src/neuraldrum/kit.py|tests/test_kit.py|*[05]
engine|src/neuraldrum/engine.py|$(echo $ENGINE_TESTS)|*[05]
"
WANT=${MODULES:-}

selected() {  # is this row asked for?
    [ -z "$WANT" ] && return 0
    for w in $WANT; do [ "$w" = "$1" ] || [ "$w" = "$2" ] && return 0; done
    return 1
}

echo "mutation testing with $("$MUTMUT" --version 2>/dev/null | tail -1), $JOBS at a time; work in $WORK"
cpu_seconds() {  # user + system CPU seconds of this shell's finished children (`times` is run in this shell:
    times > "$WORK/.times"  # in a $(...) subshell it would count the subshell's)
    tail -1 "$WORK/.times" | tr 'ms' '  ' | awk '{print int($1 * 60 + $2 + $3 * 60 + $4)}'
}

printf '%-11s %7s %7s %8s %8s %7s %8s %8s\n' module mutants killed survived no_tests score minutes cpu_min \
    > "$WORK/summary.txt"
t_all=$(date +%s)
while IFS='|' read -r name module tests sample; do
    [ -z "$name" ] && continue
    selected "$name" "$module" || continue
    if [ ! -f "$module" ]; then
        echo "== $name: $module does not exist yet, skipped"
        continue
    fi
    present=""
    for t in $tests; do [ -f "${t%%::*}" ] && present="$present $t"; done
    if [ -z "$present" ]; then
        echo "== $name: none of its tests ($tests) exist, skipped"
        continue
    fi
    dir=$WORK/$name
    rm -rf "$dir"
    mkdir -p "$dir"
    tar -C "$ROOT" --exclude=__pycache__ --exclude='*.egg-info' -cf - src tests pyproject.toml | tar -C "$dir" -xf -
    {
        echo "[mutmut]"
        echo "source_paths = src"
        echo "only_mutate = $module"
        echo "process_isolation = forkserver"
        echo "pytest_add_cli_args_test_selection ="
        for t in $present; do echo "    $t"; done
        echo "pytest_add_cli_args ="
        printf '    %s\n' -p no:cacheprovider -m "not slow and not corpus"
    } > "$dir/setup.cfg"
    [ "${MUTATE_SAMPLE:-}" = all ] && sample="*"
    pattern=""
    [ "$sample" != "*" ] && pattern="*__mutmut_$sample"  # only this module is mutated in its copy
    echo "== $name: $module, judged by$present${pattern:+, mutants $sample}"
    t0=$(date +%s)
    # mutmut prints a progress line many times a second: keep the log, show its last state. `times` gives the
    # CPU time of the run (this shell's children), so a run slowed by other work on the machine can be judged.
    cpu_seconds > "$WORK/.cpu0"
    if ! (cd "$dir" && "$MUTMUT" run --max-children "$JOBS" ${pattern:+"$pattern"} > "$dir/run.log" 2>&1); then
        tr '\r' '\n' < "$dir/run.log" | grep -v '^\s*$' | tail -30
        # mutmut does not say which test failed its first (unmutated) run: run them plainly in the copy
        (cd "$dir" && "$PY" -m pytest -x -q -p no:cacheprovider -m "not slow and not corpus" $present 2>&1 | tail -15) || true
        echo "== $name: mutmut failed (log: $dir/run.log)"
        printf '%-11s %7s\n' "$name" failed >> "$WORK/summary.txt"
        continue
    fi
    minutes=$(( ($(date +%s) - t0 + 30) / 60 ))
    cpu_seconds > "$WORK/.cpu1"
    cpu_min=$(( ($(cat "$WORK/.cpu1") - $(cat "$WORK/.cpu0") + 30) / 60 ))
    (cd "$dir" && "$MUTMUT" results --all true > "$WORK/$name.results.txt" 2>&1)
    grep -v ': killed$\|: timeout$\|: not checked$' "$WORK/$name.results.txt" > "$WORK/$name.survivors.txt" || true
    "$PY" - "$WORK/$name.results.txt" "$name" "$minutes" "$cpu_min" >> "$WORK/summary.txt" <<'PYEOF'
import collections, sys
status = collections.Counter(line.rsplit(": ", 1)[1].strip() for line in open(sys.argv[1]) if ": " in line)
judged = sum(n for st, n in status.items() if st not in ("not checked", "skipped"))
killed = status["killed"] + status["timeout"]  # a mutant that makes the tests hang is caught too
score = 100.0 * killed / judged if judged else float("nan")
print(f"{sys.argv[2]:<11} {judged:>7} {killed:>7} {status['survived'] + status['suspicious']:>8} "
      f"{status['no tests']:>8} {score:>6.1f}% {sys.argv[3]:>8} {sys.argv[4]:>8}")
PYEOF
    tail -1 "$WORK/summary.txt"
done <<< "$TABLE"
echo
cpu_seconds > "$WORK/.cpu1"
echo "== mutation scores (killed / mutants run; target ≥ 85 % each), $(( ($(date +%s) - t_all + 30) / 60 )) min" \
     "in all, $(( ($(cat "$WORK/.cpu1") + 30) / 60 )) CPU min"
cat "$WORK/summary.txt"
echo "survivors per module: $WORK/<module>.survivors.txt (mutmut show NAME in $WORK/<module> for the diff)"
