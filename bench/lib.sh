# bench/lib.sh: the one table `make bench` prints. Every benchmark script
# sources this file and records its figures with `row`; bench/all.sh prints
# the rows of all scripts together at the end.
#
#   row FIGURE VALUE UNIT REFERENCE REF_VALUE GOAL
#
# REFERENCE names the limit or peer measured in the same run (e.g.
# "openssl sha256"), REF_VALUE is its figure in the same UNIT, GOAL the
# target as text (e.g. "<= 1.3x"). The ratio VALUE/REF_VALUE is computed
# here. Rows go to $BENCH_ROWS when set (a TSV file), else to stdout.

row() {
  local figure=$1 value=$2 unit=$3 ref=${4:--} refv=${5:--} goal=${6:--} ratio=-
  if [[ $refv != - && $value != - ]]; then
    ratio=$(awk -v a="$value" -v b="$refv" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$figure" "$value" "$unit" "$ref" "$refv" "$ratio" "$goal" >>"${BENCH_ROWS:-/dev/stdout}"
}

# print_rows FILE: the rows as a table for people.
print_rows() {
  { printf 'figure\tvalue\tunit\tlimit or peer (same run)\tits value\tratio\tgoal\n'; cat "$1"; } | column -t -s $'\t'
}
