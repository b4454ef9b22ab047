#!/usr/bin/env bash
# Runs each fuzz target of the libFuzzer binary for SECONDS, starting from the committed seed corpus and the
# regression inputs; new interesting inputs go to .fuzz/corpus/<target> (not committed), crashes to
# .fuzz/artifacts/<target>/. Prints the inputs tried per target and fails if any target crashed.
# Usage: scripts/fuzz.sh SECONDS TARGET...   (`make fuzz`, `make fuzz-smoke`; the binary is built by make)
set -uo pipefail
SECONDS_PER_TARGET=$1
shift
BIN=${FUZZ_BIN:-.build-fuzzer/debug/AuditFuzz}
# The Swift runtime's backtracer would hold a crashing process for seconds; libFuzzer reports crashes itself.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}
failed=()
total=0
printf '%-14s %12s %10s %8s %s\n' target inputs exec/s corpus result
for target in "$@"; do
    mkdir -p ".fuzz/corpus/$target" ".fuzz/artifacts/$target"
    log=".fuzz/$target.log"
    seeds=()
    for d in "Tests/Fuzz/corpus/$target" "Tests/Fuzz/regressions/$target"; do [ -d "$d" ] && seeds+=("$d"); done
    FUZZ_TARGET=$target "$BIN" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix=".fuzz/artifacts/$target/" \
        ".fuzz/corpus/$target" "${seeds[@]}" >"$log" 2>&1
    status=$?
    runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
    speed=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log" | tail -1)
    corpus=$(ls ".fuzz/corpus/$target" | wc -l)
    if [ $status -eq 0 ]; then result=ok; else
        result="CRASH (exit $status): $(ls -t .fuzz/artifacts/$target/ | head -1) -- see $log"
        failed+=("$target")
    fi
    total=$((total + ${runs:-0}))
    printf '%-14s %12s %10s %8s %s\n' "$target" "${runs:-?}" "${speed:-?}" "$corpus" "$result"
done
echo "total inputs tried: $total"
if [ ${#failed[@]} -gt 0 ]; then
    echo "crashed: ${failed[*]}. Fix the parser, then keep the input: copy it into Tests/Fuzz/regressions/<target>/" >&2
    for t in "${failed[@]}"; do tail -40 ".fuzz/$t.log" >&2; done
    exit 1
fi
