#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ (registry-core's parsers) for N seconds each.
#
#   scripts/fuzz.sh [seconds-per-target]     (default 30)
#
# Each target starts from its seed corpus (fuzz/seeds/<target>, when there is one) plus what
# earlier runs left in fuzz/corpus/<target> (gitignored). Exits non-zero if any target found a
# crash, after printing the artifact that reproduces it:
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s none <target> <artifact>
# See fuzz/README.md.
set -euo pipefail

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [seconds-per-target]" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

CARGO_FUZZ_VERSION="0.13.2"
# cargo-fuzz passes nightly-only flags (-Zsanitizer, sancov passes); only stable Rust is
# installed, which accepts them with RUSTC_BOOTSTRAP. It applies to this script's builds only.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

# Safe Rust only: AddressSanitizer would slow the targets down for nothing.
# FUZZ_TARGET_DIR lets CI keep the compiled targets outside the clone.
flags=(--sanitizer none --target-dir "${FUZZ_TARGET_DIR:-fuzz/target}")

echo "== building fuzz targets"
cargo fuzz build "${flags[@]}"

mapfile -t targets < <(cargo fuzz list)
# Every file in fuzz/fuzz_targets must be a target that runs: a run of nothing proves nothing.
expected=$(find fuzz/fuzz_targets -name '*.rs' | wc -l)
if ((${#targets[@]} == 0 || ${#targets[@]} != expected)); then
    echo "fuzz: cargo fuzz list names ${#targets[@]} target(s) (${targets[*]:-none}), but fuzz/fuzz_targets holds $expected" >&2
    exit 1
fi
failed=()
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    artifacts="fuzz/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    dirs=("$corpus")
    if [[ -d "fuzz/seeds/$target" ]]; then
        dirs+=("fuzz/seeds/$target")
    fi
    before="$(find "$artifacts" -type f -name 'crash-*' -o -type f -name 'timeout-*' -o -type f -name 'oom-*' | sort)"
    echo "== $target: ${seconds}s"
    # libFuzzer's progress lines go to a log; its final stats and any failure are shown.
    log="$artifacts/last-run.log"
    if cargo fuzz run "${flags[@]}" "$target" "${dirs[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^Done ' "$log" | sed 's/^/   /'
    else
        tail -n 40 "$log" >&2
        failed+=("$target")
        after="$(find "$artifacts" -type f -name 'crash-*' -o -type f -name 'timeout-*' -o -type f -name 'oom-*' | sort)"
        new="$(comm -13 <(echo "$before") <(echo "$after") | sed '/^$/d')"
        echo "!! $target failed; artifact(s):" >&2
        echo "${new:-  (none written: see the output above)}" | sed 's/^/   /' >&2
        echo "   reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run -s none $target <artifact>" >&2
    fi
done

passed=$(( ${#targets[@]} - ${#failed[@]} ))
echo "fuzz targets (${seconds}s each): $passed passed, ${#failed[@]} failed"
if ((${#failed[@]})); then
    echo "fuzzing found crashes in: ${failed[*]}" >&2
    exit 1
fi
