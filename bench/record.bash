# shellcheck shell=bash
# How every benchmark scenario records what it measured (bench/lib.bash for
# the network-namespace scenarios, bench/plan.sh for planning), for
# bench/report.py to turn into RESULTS.md. Lines appended to $BENCH_OUT,
# tab-separated:
#   m  ITEM  MEASURE  VALUE  UNIT      one repetition's value (run.sh takes medians)
#   c  ITEM  LABEL    COMMAND          the exact command behind a measure (once)
#   n  ITEM  TEXT                      a note for the results (once)

BENCH_REPS=${BENCH_REPS:-5}
declare -A BENCH_SAID=() # ITEM LABEL -> 1 once its command or note is recorded

bench_record() { # ITEM MEASURE VALUE UNIT
  printf 'm\t%s\t%s\t%s\t%s\n' "$@" >>"$BENCH_OUT"
}

bench_command() { # ITEM LABEL COMMAND...: recorded once per ITEM and LABEL
  local item=$1 label=$2
  shift 2
  [[ -n ${BENCH_SAID["$item $label"]:-} ]] && return
  BENCH_SAID["$item $label"]=1
  printf 'c\t%s\t%s\t%s\n' "$item" "$label" "$*" >>"$BENCH_OUT"
}

bench_note() { # ITEM TEXT: recorded once
  [[ -n ${BENCH_SAID["$1 note $2"]:-} ]] && return
  BENCH_SAID["$1 note $2"]=1
  printf 'n\t%s\t%s\n' "$1" "$2" >>"$BENCH_OUT"
}

bench_py() { python3 "$(dirname "${BASH_SOURCE[0]}")/report.py" "$@"; }
