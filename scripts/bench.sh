#!/usr/bin/env bash
# Side-by-side WebSocket client load measurements against ONE fixed echo server.
#
#   scripts/bench.sh            # full matrix, 3 rounds, A B C D interleaved
#
# Clients: actix-ws-session (target/release/examples/loadgen, skipped with a
# warning while examples/loadgen.rs does not exist or does not build) and the
# peers from bench/peers (tokio-tungstenite, tokio-websockets, awc-raw).
# Results: target/bench/results-<timestamp>.jsonl (one JSON line per run, the
# client's line plus client_cpu_s, server_cpu_s, duration_s, round), stderr of every run:
# target/bench/logs-<timestamp>/, then a median table.
#
# Knobs (environment):
#   BENCH_DURATION_S   seconds per run (default 2)
#   BENCH_ROUNDS       rounds per row (default 3)
#   BENCH_IDLE_CONNS   connections for idle-conns (default 10000)
#   BENCH_SERVER_THREADS / BENCH_CLIENT_THREADS  (default 1 / 1: one core each
#                      on a 2-core box; our client is a single actix System)
#   BENCH_SERVER_IMPL  the echo server's `--impl` (default fastwebsockets; `reflect`
#                      echoes a read's frames in one write and costs far less per
#                      small message than any client, so the clients set the rate)
#   BENCH_ROWS         only rows whose label matches this grep -E pattern
#   BENCH_SKIP_OURS=1  do not build/run actix-ws-session
#   BENCH_SELF_CHECK=1 also run actix-ws-session a second time in every round, as
#                      client "actix-ws-session-again" (after the peers): the table then
#                      gives, per row, the paired ratio of the same binary to itself,
#                      which is the row's noise on this machine (about 7 minutes)
#   BENCH_PARK_SPIN_US=N run every client's runtime with a spin of N µs before its
#                      thread parks (`--park-spin-us`, actix_ws_session::runtime::
#                      spinning_runtime; default 0: each client's usual runtime)
#
# Only 127.0.0.1 is ever contacted. Every run is bounded by --duration-s and
# by timeout(1); the echo server is stopped by PID on exit.
set -euo pipefail

T0=$SECONDS
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/echo_port.sh
source "$ROOT/scripts/echo_port.sh"
cd "$ROOT"

DUR=${BENCH_DURATION_S:-2}
ROUNDS=${BENCH_ROUNDS:-3}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
SERVER_THREADS=${BENCH_SERVER_THREADS:-1}
CLIENT_THREADS=${BENCH_CLIENT_THREADS:-1}
PARK_SPIN_US=${BENCH_PARK_SPIN_US:-0}
SERVER_IMPL=${BENCH_SERVER_IMPL:-fastwebsockets}
case "$SERVER_IMPL" in
    fastwebsockets | tokio-websockets | reflect) ;;
    *) echo "BENCH_SERVER_IMPL must be fastwebsockets, tokio-websockets or reflect" >&2; exit 2 ;;
esac
[[ "$PARK_SPIN_US" =~ ^[0-9]+$ ]] || { echo "BENCH_PARK_SPIN_US must be a number of microseconds" >&2; exit 2; }
ROW_FILTER=${BENCH_ROWS:-}
PEER_TARGET="$ROOT/target/bench-peers"
PEER_BIN="$PEER_TARGET/release"
OURS_BIN="$ROOT/target/release/examples/loadgen"
STAMP=$(date +%Y%m%d-%H%M%S)
OUT_DIR="$ROOT/target/bench"
RESULTS="$OUT_DIR/results-$STAMP.jsonl"
LOGS="$OUT_DIR/logs-$STAMP"
mkdir -p "$OUT_DIR" "$LOGS"
: >"$RESULTS"

log() { printf '[bench %4ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }

# Both our processes raise their soft RLIMIT_NOFILE to the hard limit
# themselves; do it here too so anything else started inherits it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt $((IDLE_CONNS + 64)) ]; then
    log "warning: hard RLIMIT_NOFILE $(ulimit -Hn) < idle conns $IDLE_CONNS; idle-conns will fall short"
fi

# ---------------------------------------------------------------- build
B0=$SECONDS
log "building bench/peers (release, CARGO_TARGET_DIR=target/bench-peers)"
CARGO_TARGET_DIR="$PEER_TARGET" cargo build --release --quiet \
    --manifest-path "$ROOT/bench/peers/Cargo.toml" --bins

CLIENTS=()
if [ "${BENCH_SKIP_OURS:-0}" = 1 ]; then
    log "BENCH_SKIP_OURS=1: skipping actix-ws-session"
elif [ ! -f "$ROOT/examples/loadgen.rs" ] && [ ! -f "$ROOT/examples/loadgen/main.rs" ]; then
    log "warning: examples/loadgen.rs does not exist yet: skipping actix-ws-session"
elif ! (env -u CARGO_TARGET_DIR cargo build --release --quiet --example loadgen) >"$LOGS/build-ours.log" 2>&1; then
    log "warning: 'cargo build --release --example loadgen' failed (see $LOGS/build-ours.log): skipping actix-ws-session"
else
    CLIENTS+=(actix-ws-session)
fi
CLIENTS+=(tokio-tungstenite tokio-websockets awc-raw)
if [ "${BENCH_SELF_CHECK:-0}" = 1 ] && [ "${CLIENTS[0]}" = actix-ws-session ]; then
    CLIENTS+=(actix-ws-session-again)
fi
log "build done in $((SECONDS - B0)) s; clients: ${CLIENTS[*]}"

# ---------------------------------------------------------------- server
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SERVER_OUT="$LOGS/echo_server.out"
"$PEER_BIN/echo_server" --port 0 --threads "$SERVER_THREADS" --impl "$SERVER_IMPL" >"$SERVER_OUT" 2>"$LOGS/echo_server.err" &
SERVER_PID=$!
PORT=$(echo_port "$SERVER_OUT" "$SERVER_PID") || { log "echo server did not report its port (see $LOGS/echo_server.err)"; exit 1; }
URL="ws://127.0.0.1:$PORT/"
log "echo server ($SERVER_IMPL, $SERVER_THREADS thread(s)) pid $SERVER_PID on $URL"
[ "$PARK_SPIN_US" -eq 0 ] || log "every client's runtime spins $PARK_SPIN_US µs before its thread parks"

# CPU accounting: /usr/bin/time for each client process (optional), /proc for the server.
TIME_BIN=""
[ -x /usr/bin/time ] && TIME_BIN=/usr/bin/time
[ -n "$TIME_BIN" ] || log "note: /usr/bin/time not found: no client CPU column"
CLK_TCK=$(getconf CLK_TCK)
server_cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }

# ---------------------------------------------------------------- rows
# label scenario size conns window messages(per conn)
BIG=1000000000
ROWS=(
    "lat-16B       echo-latency    16      1   1  $BIG"
    "lat-1KiB      echo-latency    1024    1   1  $BIG"
    "lat-64KiB     echo-latency    65536   1   1  $BIG"
    "lat-1MiB      echo-latency    1048576 1   1  $BIG"
    "tput-4x16B    echo-throughput 16      4   64 $BIG"
    "tput-4x1KiB   echo-throughput 1024    4   64 $BIG"
    "tput-4x64KiB  echo-throughput 65536   4   16 $BIG"
    "tput-4x1MiB   echo-throughput 1048576 4   4  $BIG"
    "load-100x20B  echo-throughput 20      100 16 $BIG"
    "load-10x1KiB  echo-throughput 1024    10  16 $BIG"
    "load-10x16KiB echo-throughput 16384   10  16 $BIG"
    "load-200x16KiB echo-throughput 16384  200 4  $BIG"
    "idle-${IDLE_CONNS}    idle-conns      16      $IDLE_CONNS 1 1"
    "mask-1MiB     mask-kernel     1048576 1   1  1"
)

run_one() { # client scenario size conns window messages dur round -> appends one JSON line
    local client=$1 scenario=$2 size=$3 conns=$4 window=$5 messages=$6 dur=$7 round=$8
    local -a cmd
    if [ "$client" = actix-ws-session ] || [ "$client" = actix-ws-session-again ]; then
        cmd=("$OURS_BIN")
    else
        cmd=("$PEER_BIN/loadgen_peer" --client "$client" --threads "$CLIENT_THREADS")
    fi
    cmd+=(--url "$URL" --scenario "$scenario" --size "$size" --messages "$messages"
        --conns "$conns" --window "$window" --duration-s "$dur")
    if [ "$PARK_SPIN_US" -gt 0 ]; then
        cmd+=(--park-spin-us "$PARK_SPIN_US")
    fi
    local limit=$((dur * 3 + 30)) out rc=0 cpu_file="$LOGS/cpu.tmp"
    local -a timed=()
    [ -n "$TIME_BIN" ] && timed=("$TIME_BIN" -f '%U %S' -o "$cpu_file")
    local server0
    server0=$(server_cpu_ticks)
    out=$(timeout -k 5 "$limit" "${timed[@]}" "${cmd[@]}" 2>>"$LOGS/$client.err") || rc=$?
    local server1 line
    server1=$(server_cpu_ticks)
    line=$(printf '%s\n' "$out" | grep -E '^\{' | tail -n 1 || true)
    # The self-check's second run of our binary is told apart by its client name.
    if [ "$client" = actix-ws-session-again ]; then
        line=${line/'"client":"actix-ws-session"'/'"client":"actix-ws-session-again"'}
    fi
    if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
        log "warning: $client $scenario size=$size conns=$conns failed (rc=$rc); see $LOGS/$client.err"
        return 0
    fi
    # CPU seconds of the client process and of the echo server during the run, added to
    # the line for the table's cost-per-message columns.
    local client_cpu=null
    [ -n "$TIME_BIN" ] && client_cpu=$(awk 'NF == 2 {print $1 + $2}' "$cpu_file" | tail -n 1)
    local server_cpu
    server_cpu=$(awk -v a="$server0" -v b="$server1" -v hz="$CLK_TCK" 'BEGIN {print (b - a) / hz}')
    printf '%s\n' "${line%\}},\"client_cpu_s\":${client_cpu:-null},\"server_cpu_s\":$server_cpu,\"duration_s\":$dur,\"round\":$round}" >>"$RESULTS"
}

RUN0=$SECONDS
for row in "${ROWS[@]}"; do
    read -r label scenario size conns window messages <<<"$row"
    if [ -n "$ROW_FILTER" ] && ! grep -qE -- "$ROW_FILTER" <<<"$label"; then
        continue
    fi
    row_clients=("${CLIENTS[@]}")
    dur=$DUR
    if [ "$scenario" = mask-kernel ]; then
        row_clients+=(fastwebsockets) # reference: the only public masking fn among the peers
        dur=1
    fi
    for round in $(seq 1 "$ROUNDS"); do
        for client in "${row_clients[@]}"; do
            kill -0 "$SERVER_PID" 2>/dev/null || { log "echo server died (see $LOGS/echo_server.err)"; exit 1; }
            run_one "$client" "$scenario" "$size" "$conns" "$window" "$messages" "$dur" "$round"
        done
    done
    log "row $label done"
done
log "runs done in $((SECONDS - RUN0)) s"

cleanup
SERVER_PID=""

python3 "$ROOT/scripts/bench_table.py" "$RESULTS"
echo
echo "results: $RESULTS"
echo "total wall time: $((SECONDS - T0)) s (build $((RUN0 - B0)) s, runs $((SECONDS - RUN0)) s)"
