#!/usr/bin/env bash
# The whole test suite: set up, then unit and integration tests on an ASan+UBSan build, then
# the fuzzers for a bounded time. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build-asan -DKMS_SANITIZE=ON
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
(cd build-asan && ctest --output-on-failure -j2) || status=1
if [ -x tests/fuzz/run.sh ] || [ -f tests/fuzz/run.sh ]; then
  bash tests/fuzz/run.sh || status=1
fi
if [ $status -ne 0 ]; then
  echo "test.sh: FAILED" >&2
fi
exit $status
