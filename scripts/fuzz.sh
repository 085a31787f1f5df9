#!/usr/bin/env bash
# `make fuzz` (FUZZ_SECONDS per target, default 60): libFuzzer with AddressSanitizer on the
# request parsers (form body, query string, cookies, FastCGI records and params) and the
# template parser. A crash stops
# the run and leaves its input in artifacts/fuzz/; copy it into Tests/fuzz/regressions/TARGET/
# so every later test run replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-${FUZZ_SECONDS:-60}}"
scratch=.build-fuzz
flags=(-sanitize=fuzzer,address -DFUZZING)
# The libraries through SwiftPM with the sanitizers; each fuzz entry point is then linked by
# swiftc itself, because libFuzzer brings its own main().
swift build --scratch-path "$scratch" -Xswiftc -sanitize=fuzzer,address --target LatchkeyCGI >"$scratch.log" 2>&1 \
  || { tail -20 "$scratch.log" >&2; exit 1; }
objects=()
for module in LatchkeyCore LatchkeyStore LatchkeySite LatchkeyMail LatchkeyAccounts LatchkeyCGI; do
  objects+=("$scratch"/debug/$module.build/*.o)
done
mkdir -p artifacts/fuzz
for target in forms templates fastcgi; do
  binary="$scratch/fuzz-$target"
  swiftc "${flags[@]}" -parse-as-library -g -I "$scratch/debug/Modules" -I Sources/CSodium -I Sources/CSQLite -I Sources/CNettle -I Sources/CLinux \
    "Sources/fuzz-$target/"*.swift "${objects[@]}" -lsodium -lsqlite3 -lnettle -o "$binary" >"$scratch-$target.log" 2>&1 \
    || { grep -v "Cannot export local symbol" "$scratch-$target.log" | tail -20 >&2; exit 1; }
  corpus="artifacts/fuzz/corpus-$target"
  mkdir -p "$corpus"
  seeds=("Tests/fuzz/seeds/$target" "Tests/fuzz/regressions/$target")
  # The shipped templates (the console's too) are the best template seeds; read them where they live.
  if [ "$target" = templates ]; then seeds+=(site/templates/pages site/templates/partials site/templates/email site/templates/admin); fi
  # Every regression whole (a directory seed is cut at -max_len), then the bounded run.
  for input in "Tests/fuzz/regressions/$target"/*; do
    [ -f "$input" ] || continue
    "$binary" "$input" >"artifacts/fuzz/$target-replay.log" 2>&1 \
      || { echo "fuzz-$target: regression $input fails again: see artifacts/fuzz/$target-replay.log" >&2; exit 1; }
  done
  echo "== fuzz-$target for ${seconds}s"
  status=0
  "$binary" -max_total_time="$seconds" -max_len=4096 -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/fuzz/$target-" "$corpus" "${seeds[@]}" \
    >"artifacts/fuzz/$target.log" 2>&1 || status=$?
  grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units|ERROR|SUMMARY|Test unit written" "artifacts/fuzz/$target.log" || true
  if [ "$status" != 0 ]; then echo "fuzz-$target found a crash: see artifacts/fuzz/$target.log" >&2; exit 1; fi
done
echo "fuzzing: no crash"
