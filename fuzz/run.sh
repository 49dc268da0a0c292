#!/usr/bin/env bash
# Fuzzes for a bounded time: every cargo-fuzz target (nightly toolchain) and the Python
# binding's argument fuzzer (python_args.py, atheris), each for SECONDS.
#
#   fuzz/run.sh [SECONDS] [TARGET...]   run (default 20 s each; CI runs 15, the long run 600)
#   fuzz/run.sh --merge [TARGET...]     minimise what earlier runs found into fuzz/corpus/
#
# fuzz/corpus/<target>/ is the small seed corpus kept in the repository: runs only read it and
# write new units to fuzz/target/new-corpus/<target>/ (ignored by git), so they leave the tree
# clean. --merge adds to the seed corpus only the new units that reach new coverage; review
# and commit what it adds (keep the corpus small). A crash, panic, unexpected Python exception
# or hang fails the run (exit 1) and says where the input is. Python: the venv FERROSSL_VENV
# (relative to python/, default .venv, as scripts/test.sh); a missing atheris or ferrossl
# module is installed there, and when that fails the target is skipped, unless CI is set.
set -euo pipefail
cd "$(dirname "$0")"

merge=false
if [[ ${1:-} == --merge ]]; then
    merge=true
    shift
fi
seconds=20
if [[ ${1:-} =~ ^[0-9]+$ ]]; then
    seconds=$1
    shift
fi
atheris_version=3.0.0
venv="${FERROSSL_VENV:-.venv}"
[[ $venv = /* ]] || venv="../python/$venv"
new_units=target/new-corpus
mkdir -p "$new_units" artifacts
# The targets' scratch files (the loaders' inputs written to disk) go to a directory of this
# run, removed at its end: libFuzzer exits without running the targets' own clean-up.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export TMPDIR="$scratch"

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
targets=("$@")
((${#targets[@]})) || targets=($(cargo +nightly fuzz list) python_args)

# Makes the venv's ferrossl and atheris importable; says why not otherwise.
python_ready() {
    local py="$venv/bin/python"
    [ -x "$py" ] || python3 -m venv "$venv" || return 1
    "$py" -c "import atheris" 2>/dev/null ||
        "$py" -m pip install --quiet "atheris==$atheris_version" || return 1
    if ! "$py" -c "import ferrossl" 2>/dev/null; then
        echo "building the ferrossl module into $venv"
        "$py" -m pip install --quiet "maturin>=1.5,<2" &&
            (cd ../python && VIRTUAL_ENV="$(cd "$venv" && pwd)" "$venv/bin/maturin" develop --release --quiet) ||
            return 1
    fi
}

# Runs one target; its log is kept in target/logs/<target>.log.
run() {
    local target=$1 status=0 log="target/logs/$1.log"
    mkdir -p target/logs "$new_units/$target" "artifacts/$target"
    # New units go to the first directory; the seed corpus after it is only read.
    local dirs=("$new_units/$target" "corpus/$target")
    # A unit running 30 s is a hang; cargo fuzz puts artifacts in artifacts/<target>/ itself.
    local flags=(-max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096)
    if $merge; then
        dirs=("corpus/$target" "$new_units/$target")
        flags=(-merge=1 -timeout=30 -rss_limit_mb=4096)
    fi
    echo "fuzzing $target$($merge && echo " (merge)" || echo " for ${seconds}s")"
    if [[ $target == python_args ]]; then
        if ! python_ready >"$log" 2>&1; then
            echo "skipping python_args: atheris or ferrossl cannot be installed in $venv:"
            tail -n 5 "$log"
            [[ -n ${CI:-} ]] && return 1
            return 0
        fi
        "$venv/bin/python" python_args.py "${flags[@]}" -artifact_prefix="artifacts/$target/" "${dirs[@]}" >"$log" 2>&1 || status=$?
    else
        cargo +nightly fuzz run "$target" "${dirs[@]}" -- "${flags[@]}" >"$log" 2>&1 || status=$?
    fi
    # libFuzzer's last status line: executions, coverage, corpus.
    grep -E "^#[0-9]+[[:space:]]+(DONE|INITED)|^Done [0-9]+ runs|MERGE-OUTER: [0-9]+ new files" "$log" | tail -n 2 || true
    if ((status != 0)); then
        echo "FAILED: $target (exit $status); log: fuzz/$log"
        grep -E "panicked at|ERROR: libFuzzer|Uncaught Python exception|^[A-Za-z]*(Error|Exception):" "$log" | head -n 5 || true
        grep -E "Test unit written to|artifact_prefix" "$log" | sed 's/^/  /' || true
        return 1
    fi
}

failed=()
for target in "${targets[@]}"; do
    run "$target" || failed+=("$target")
done
if ((${#failed[@]})); then
    echo "fuzzing failed: ${failed[*]} (inputs under fuzz/artifacts/<target>/;" \
        "reproduce with: cargo +nightly fuzz run <target> <input>, or python fuzz/python_args.py <input>)"
    exit 1
fi
