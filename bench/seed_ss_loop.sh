#!/usr/bin/env bash
# The seed's polling watcher, re-created in bash for the watcher benchmark (bench/watcher_bench.ts): every
# SCAN_INTERVAL seconds, BURST_SCANS runs of `ss -Htlnup` BURST_DELAY seconds apart; each run is diffed against
# the previous run's set of local ports with sort/comm, and every new (closed) port is POSTed to the listener
# with curl, one request per port, as
#   {"event":"open","port":P,"pids":"123,456","container_id":...,"container_name":...,"source":"polling"}
#   {"event":"close","port":P,"last_pids":"123","container_id":...,"container_name":...,"source":"polling"}
# Settings: SCAN_INTERVAL (default 1), BURST_SCANS (1), BURST_DELAY (0.02), LISTENER_URL
# (http://127.0.0.1:8080; /ingest is added), CONTAINER_ID, CONTAINER_NAME (JSON null when unset).
# SIGTERM/SIGINT end it at once (sleeps run in the background and are killed).
set -u
export LC_ALL=C

SCAN_INTERVAL="${SCAN_INTERVAL:-1}"
BURST_SCANS="${BURST_SCANS:-1}"
BURST_DELAY="${BURST_DELAY:-0.02}"
INGEST="${LISTENER_URL:-http://127.0.0.1:8080}"
INGEST="${INGEST%/}"
[[ "$INGEST" == */ingest ]] || INGEST="$INGEST/ingest"

json_or_null() { if [[ -n "${1:-}" ]]; then printf '"%s"' "$1"; else printf 'null'; fi; }
CID=$(json_or_null "${CONTAINER_ID:-}")
CNAME=$(json_or_null "${CONTAINER_NAME:-}")

work=$(mktemp -d)
cleanup() {
  local p
  for p in $(jobs -p); do kill "$p" 2>/dev/null; done
  rm -rf "$work"
  exit 0
}
trap cleanup TERM INT
: >"$work/prev"       # "port pids" per line, sorted by port
: >"$work/prev.ports" # the ports alone

pause() {
  sleep "$1" &
  wait $!
}

post() {
  curl -s -o /dev/null -m 2 -X POST "$INGEST" -H 'content-type: application/json' -d "$1"
}

# One scan: "port pid,pid" per local port (TCP listening and bound UDP), sorted by port.
scan() {
  ss -Htlnup | awk '
    {
      n = split($5, a, ":"); port = a[n]
      s = $0; pids = ""
      while (match(s, /pid=[0-9]+/)) {
        p = substr(s, RSTART + 4, RLENGTH - 4)
        if (index("," pids ",", "," p ",") == 0) pids = pids (pids == "" ? "" : ",") p
        s = substr(s, RSTART + RLENGTH)
      }
      if (port in m) { if (pids != "") m[port] = m[port] (m[port] == "" ? "" : ",") pids }
      else m[port] = pids
    }
    END { for (port in m) print port, m[port] }' | sort -k1,1 >"$work/cur"
  cut -d' ' -f1 "$work/cur" >"$work/cur.ports"
}

pids_of() { awk -v p="$1" '$1 == p { print $2; exit }' "$2"; }

scan_and_report() {
  scan
  local port
  for port in $(comm -13 "$work/prev.ports" "$work/cur.ports"); do
    post "{\"event\":\"open\",\"port\":$port,\"pids\":\"$(pids_of "$port" "$work/cur")\",\"container_id\":$CID,\"container_name\":$CNAME,\"source\":\"polling\"}"
  done
  for port in $(comm -23 "$work/prev.ports" "$work/cur.ports"); do
    post "{\"event\":\"close\",\"port\":$port,\"last_pids\":\"$(pids_of "$port" "$work/prev")\",\"container_id\":$CID,\"container_name\":$CNAME,\"source\":\"polling\"}"
  done
  mv "$work/cur" "$work/prev"
  mv "$work/cur.ports" "$work/prev.ports"
}

while :; do
  for ((i = 0; i < BURST_SCANS; i++)); do
    scan_and_report
    if ((i < BURST_SCANS - 1)); then pause "$BURST_DELAY"; fi
  done
  pause "$SCAN_INTERVAL"
done
