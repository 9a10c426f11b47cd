# Sourced by the benchmarks: each prints its figures as a Markdown table for
# docs/performance.md, under one line that says when, on which machine, at which commit and with
# which command they were measured, so the page is pasted from a run and never typed.
#
#   source loadtest/report.sh
#   report_table "title" "DURATION=5 loadtest/bench" "phase|req/s|p99"
#   report_row "GET /health|53,700|3.1 ms"
#   report_print
#
# A run prints its table at its end, after a line `--- docs/performance.md ---`.

report_lines=()

# The commit the binaries were built from, marked when their sources differed from it (the
# docs, scripts and load scripts do not go into the binaries).
report_commit() {
  local sha
  sha=$(git rev-parse --short=9 HEAD 2>/dev/null || echo unknown)
  if ! git diff --quiet HEAD -- crates api workers lua migrations Cargo.toml Cargo.lock 2>/dev/null; then sha="$sha+changes"; fi
  echo "$sha"
}

# This machine, as a reader needs it to compare: cores, processor, memory.
report_machine() {
  local cpu mem
  cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | xargs)
  mem=$(awk '/^MemTotal/{printf "%.0f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null)
  echo "$(nproc) cores (${cpu:-unknown CPU}), $mem"
}

# A table: its title, the command that produced it, and its columns separated by `|`.
report_table() { # title command columns
  local cols=$3 sep
  sep=$(sed 's/[^|]*/---/g' <<<"$cols")
  report_lines+=("" "**$1** — $(date -u +%Y-%m-%d) · commit \`$(report_commit)\` · $(report_machine) · \`$2\`" ""
    "| ${cols//|/ | } |" "|${sep//|/|}|")
}

# One row, its cells separated by `|`.
report_row() {
  report_lines+=("| ${1//|/ | } |")
}

# A note printed under the tables (a target, what was checked).
report_note() {
  report_lines+=("" "$1")
}

report_print() {
  echo
  echo "--- docs/performance.md ---"
  printf '%s\n' "${report_lines[@]}"
}

# 12345.6 -> 12,346 (figures read better grouped).
report_int() {
  LC_ALL=C printf "%.0f" "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'
}
