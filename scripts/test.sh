#!/usr/bin/env bash
# Every test: Swift unit tests, then the end-to-end suite against the release binaries
# (real Apache on loopback, real SQLite, real Maildir). `make test` builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
python3 scripts/embed-site.py --check
echo "== swift test"
swift test 2>&1 | grep -Ev '^(◇|↳)|started\.$' | tail -n 40
test "${PIPESTATUS[0]}" = 0
echo "== fuzzing (libFuzzer + AddressSanitizer, a short bounded run; \`make fuzz\` runs longer)"
scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
echo "== end-to-end (pytest)"
python3 -m pytest -q -p no:cacheprovider Tests/e2e
