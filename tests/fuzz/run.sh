#!/usr/bin/env bash
# Builds the libFuzzer targets in build-fuzz with clang and runs each under ctest for
# KMS_FUZZ_TIME seconds (default 20). Exits non-zero if any fuzzer crashes, leaks or fails an
# invariant; crash inputs are left in build-fuzz/tests/fuzz/fuzz_<name>-crash-*.
#
#   tests/fuzz/run.sh                 # 20 s per fuzzer
#   KMS_FUZZ_TIME=300 tests/fuzz/run.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/build-fuzz"
time_per_fuzzer="${KMS_FUZZ_TIME:-20}"

if ! command -v clang >/dev/null 2>&1; then
    echo "run.sh: clang not found; the fuzzers need clang's libFuzzer. Skipped." >&2
    echo "0 passed, 0 failed (skipped)"
    exit 0
fi

CC=clang cmake -S "$root" -B "$build" -DKMS_FUZZ=ON -DKMS_BUILD_TESTS=OFF \
    -DKMS_FUZZ_TIME="$time_per_fuzzer" >/dev/null
# Every fuzzer of tests/fuzz (fuzz_NAME.c), so that a new one is never left unbuilt.
mapfile -t targets < <(cd "$root/tests/fuzz" && ls fuzz_*.c | sed 's/\.c$//')
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
ctest --test-dir "$build" -L fuzz --output-on-failure 2>&1 | tee "$log" || status=$?

# ctest ends with "NN% tests passed, F tests failed out of T".
summary=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
if [[ -z "$summary" ]]; then
    echo "run.sh: ctest ran no fuzz tests" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$summary")
total=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$summary")
echo "$((total - failed)) passed, $failed failed"
if [[ "$status" -ne 0 || "$failed" -ne 0 ]]; then
    exit 1
fi
