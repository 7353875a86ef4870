#!/usr/bin/env bash
# bench/report.sh RESULTS_DIR: turns RESULTS_DIR/latest.jsonl into summary.md (also printed)
# and plot.png. Called by scripts/bench; can be rerun on its own.
#
# Ratios are remoteable divided by the baseline, for every metric: above 1 means remoteable
# takes longer (latency, round trips) or does more (calls_per_s).
set -euo pipefail

results=${1:?usage: bench/report.sh RESULTS_DIR}
jsonl=$results/latest.jsonl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One row per number: sort key, measurement, metric, peer, value. Our JSON lines are flat and
# hold no commas inside strings, so splitting on commas is enough.
awk '
  {
    gsub(/[{}"]/, ""); n = split($0, kv, ",")
    delete f
    for (i = 1; i <= n; i++) { split(kv[i], p, ":"); f[p[1]] = p[2] }
    m = f["workload"]; key = m
    if ("depth" in f)       { m = m " depth " f["depth"]; key = key sprintf(" %04d", f["depth"]) }
    if (m == "CONN") { m = "idle connections, " f["connections"] }
    else if ("connections" in f) {
      m = m " " f["connections"] "x" f["in_flight"] " in flight"
      key = key sprintf(" %04d %04d", 9999 - f["in_flight"], f["connections"])
    }
    if ("actors" in f) { m = m " over " f["actors"] " actor(s)"; key = key sprintf(" A%05d", f["actors"]) }
    if ("handles" in f) { m = "live handles, " f["handles"]; key = key sprintf(" %08d", f["handles"]) }
    if (m == "W7") m = "W7 callback round trip"
    if (m == "ITER") m = "ITER " f["elements"] " ints, batch " f["batch"]
    if ("events" in f) m = m " push, " f["events"] " events per publish"
    if (m == "STREAM") m = m " " f["bytes"] / 1048576 " MiB in " f["chunk_bytes"] / 1024 " KiB writes, " f["window_bytes"] / 1024 " KiB window"
    split("median_us p99_us mean_us calls_per_s median_ms round_trips bytes_per_handle bytes_per_connection events_per_s mb_per_s get_median_ms ratio_to_get item_per_element_us item_extrapolated_ms", metrics, " ")
    for (j = 1; j <= 14; j++)
      if (metrics[j] in f) printf "%s %02d\t%s\t%s\t%s\t%s\n", key, j, m, metrics[j], f["peer"], f[metrics[j]]
  }' "$jsonl" | sort -t$'\t' -k1,1 >"$work/rows.tsv"

# A measurement taken in several rounds (scripts/bench interleaves the peers round by round, so
# that a slow moment of a shared machine hits every peer alike) counts with its median.
sort -t$'\t' -k1,1 -k4,4 -k5,5g "$work/rows.tsv" | awk -F'\t' '
  function flush(   m) {
    if (k == "") return
    m = (n % 2) ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2
    printf "%s\t%s\t%s\t%s\t%s\n", r1, r2, r3, r4, m
  }
  $1 "\t" $4 != k { flush(); k = $1 "\t" $4; r1 = $1; r2 = $2; r3 = $3; r4 = $4; n = 0 }
  { x[++n] = $5 }
  END { flush() }' >"$work/median.tsv"
rounds=$(awk -F'\t' '$3 == "median_us" && $2 == "W1" { n[$4]++ } END { m = 0; for (p in n) if (n[p] > m) m = n[p]; print m }' "$work/rows.tsv")

{
  echo "# Benchmark results"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), commit $(git -C "$results" rev-parse --short HEAD 2>/dev/null || echo unknown), 1-minute load average before the run ${BENCH_LOAD_BEFORE:-unknown}."
  echo "W4 runs through a proxy holding each chunk 5 ms each way; round_trips = median / measured proxy ping."
  echo "Ratios are remoteable / baseline. W1, W2 and W3 (W7 and W8 too) are the median of ${rounds:-1} interleaved rounds."
  echo "W7: a call whose server calls back a client object once (targets: remoteable / raw_capnp at most 1.0 in latency); W8: server-to-client pushes, events_per_s (at least 1.0)."
  echo "STREAM: a client writes to a server's sink with a window of bytes unanswered, mb_per_s (target: remoteable / raw_capnp at least 1.0)."
  echo
  echo "remoteable_tls is remoteable over TLS (1.3, P-256 certificate); its last column is remoteable_tls / remoteable."
  echo
  echo "| measurement | metric | raw_asio | raw_capnp | remoteable | remoteable / raw_capnp | remoteable / raw_asio | remoteable_tls | tls / plain |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
  awk -F'\t' '
    function cell(v) { return v == "" ? "-" : (v + 0 >= 1000 ? sprintf("%.0f", v) : v) }
    function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "-" : sprintf("%.3g", a / b) }
    function flush() {
      if (row == "") return
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", meas, metric, cell(v["raw_asio"]), cell(v["raw_capnp"]),
             cell(v["remoteable"]), ratio(v["remoteable"], v["raw_capnp"]), ratio(v["remoteable"], v["raw_asio"]),
             cell(v["remoteable_tls"]), ratio(v["remoteable_tls"], v["remoteable"])
    }
    $1 != row { flush(); row = $1; meas = $2; metric = $3; delete v }
    { v[$4] = $5 }
    END { flush() }' "$work/median.tsv"
  # W6: each run against the one actor, one connection run of the same set.
  if grep -q '^W6 ' "$work/median.tsv"; then
    echo
    echo "W6: spin(200 µs of CPU) per call, 2 in flight per connection; ratio to 1 actor over 1 connection."
    echo
    echo "| connections | actors | calls/s | ratio |"
    echo "|---:|---:|---:|---:|"
    awk -F'\t' '$2 ~ /^W6 / && $3 == "calls_per_s" && $4 == "remoteable" {
        split($2, w, " "); split(w[2], c, "x"); a = w[6]
        v[c[1] " " a] = $5; if (c[1] == 1 && a == 1) base = $5; order[++n] = c[1] " " a
      }
      END {
        for (i = 1; i <= n; i++) { split(order[i], k, " ")
          printf "| %s | %s | %.0f | %s |\n", k[1], k[2], v[order[i]], base ? sprintf("%.2f", v[order[i]] / base) : "-" }
      }' "$work/median.tsv"
  fi
  # ITER: iterating a list of 1,000,000 ints against one get() of it and against item(i) per element.
  if grep -q '^ITER ' "$work/median.tsv"; then
    echo
    echo "ITER: iterating \`ints\` (1,000,000 int64) against one get() of it (target: iterate / get at most 1.5) and against one item(i) round trip per element (measured over a prefix, extrapolated)."
    echo
    echo "| measurement | iterate, ms | get(), ms | iterate / get | item(i), µs per element | item(i) extrapolated, ms | item(i) / iterate |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' '$2 ~ /^ITER / && $4 == "remoteable" { v[$3] = $5; m = $2 }
      END { if (m != "") printf "| %s | %.1f | %.1f | %.2f | %.1f | %.0f | %.0f |\n", m, v["median_ms"], v["get_median_ms"],
              v["ratio_to_get"], v["item_per_element_us"], v["item_extrapolated_ms"],
              (v["median_ms"] > 0 ? v["item_extrapolated_ms"] / v["median_ms"] : 0) }' "$work/median.tsv"
  fi
  # A/B: the current code against the code before issue 11 (scripts/bench's remoteable_before).
  if grep -q $'\tremoteable_before\t' "$work/median.tsv"; then
    echo
    echo "A/B: W2 against remoteable_before (the bench programs of ${BENCH_BEFORE:-37447a5}, before issue 11), each on a fresh server, median of the rounds."
    echo
    echo "| measurement | before, calls/s | now, calls/s | now / before |"
    echo "|---|---:|---:|---:|"
    awk -F'\t' '$3 == "calls_per_s" && $2 ~ /^W2 / && ($4 == "remoteable_before" || $4 == "remoteable") && $2 !~ /actor/ {
        v[$2, $4] = $5; if ($4 == "remoteable_before") order[++n] = $2 }
      END { for (i = 1; i <= n; i++) { m = order[i]; b = v[m, "remoteable_before"]; a = v[m, "remoteable"]
          printf "| %s | %.0f | %.0f | %s |\n", m, b, a, (a != "" && b > 0) ? sprintf("%.2f", a / b) : "-" } }' "$work/median.tsv"
  fi
} >"$results/summary.md"
cat "$results/summary.md"

# The plot: W4 round trips against chain depth, and throughput against connections.
if ! command -v gnuplot >/dev/null; then
  echo "report: gnuplot not installed, no plot" >&2
  exit 0
fi
depth_peers="" conn_peers=""
for peer in raw_asio raw_capnp remoteable; do
  awk -F'\t' -v p="$peer" '$4 == p && $3 == "round_trips" { split($2, w, " "); print w[3], $5 }' \
    "$work/median.tsv" | sort -n >"$work/depth_$peer.dat"
  awk -F'\t' -v p="$peer" '$4 == p && $2 ~ /x32 in flight$/ { split($2, w, " "); split(w[2], c, "x"); print c[1], $5 }' \
    "$work/median.tsv" | sort -n >"$work/conns_$peer.dat"
  [[ -s $work/depth_$peer.dat ]] && depth_peers="$depth_peers $peer"
  [[ -s $work/conns_$peer.dat ]] && conn_peers="$conn_peers $peer"
done
gnuplot <<EOF
set terminal pngcairo noenhanced size 1200,480 font ",10"
set output "$results/plot.png"
set multiplot layout 1,2
set logscale x 2
set grid
set key top left
# One colour per peer in both panels.
set style line 1 lc rgb "#1b9e77" lw 2 pt 7
set style line 2 lc rgb "#7570b3" lw 2 pt 5
set style line 3 lc rgb "#d95f02" lw 2 pt 9
style(p) = p eq "raw_asio" ? 1 : p eq "raw_capnp" ? 2 : 3
set title "W4: round trips vs chain depth (5 ms proxy)"
set xlabel "chain depth k"
set ylabel "round trips"
set yrange [0:*]
plot for [p in "$depth_peers"] "$work/depth_".p.".dat" using 1:2 with linespoints ls style(p) title p
set title "Throughput vs client connections (32 calls in flight each)"
set xlabel "connections"
set ylabel "calls/s"
set logscale y 10
set yrange [*:*]
plot for [p in "$conn_peers"] "$work/conns_".p.".dat" using 1:2 with linespoints ls style(p) title p
unset multiplot
EOF
echo "report: wrote $results/summary.md and $results/plot.png" >&2
