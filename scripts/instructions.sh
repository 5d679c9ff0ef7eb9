#!/usr/bin/env bash
# User-space instructions per echoed message, per client, counted by callgrind.
#
#   scripts/instructions.sh            # after scripts/bench.sh has built the binaries
#
# Instruction counts do not move with machine noise the way msgs/s does, so this is the
# measure for "did this change make the client cheaper". Each client runs twice under
# valgrind against the fastwebsockets echo server (not under valgrind), with 2,000 and
# 12,000 messages per connection; the difference divided by the extra messages removes
# connecting and start-up. Two shapes:
#   echo-throughput 4 conns x window 64, 16 B: the client is slowed by valgrind, so reads
#                  and writes carry many messages: the per-message part of the cost;
#   echo-latency    1 message at a time, 16 B: every message pays every wake-up and
#                  syscall path: the per-batch part as well.
# Kernel time is not counted (callgrind sees user space only). Loopback only; the echo
# server is stopped by PID on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/echo_port.sh
source "$ROOT/scripts/echo_port.sh"
PEER_BIN="$ROOT/target/bench-peers/release"
OURS_BIN="$ROOT/target/release/examples/loadgen"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
for bin in "$PEER_BIN/echo_server" "$PEER_BIN/loadgen_peer" "$OURS_BIN"; do
    [ -x "$bin" ] || { echo "missing $bin: run scripts/bench.sh first" >&2; exit 1; }
done

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

"$PEER_BIN/echo_server" --port 0 --threads 1 >"$WORK/server.out" 2>/dev/null &
SERVER_PID=$!
PORT=$(echo_port "$WORK/server.out" "$SERVER_PID") || { echo "echo server did not report its port" >&2; exit 1; }

# instructions CLIENT SCENARIO CONNS WINDOW MESSAGES -> total user-space instructions
instructions() {
    local client=$1 scenario=$2 conns=$3 window=$4 messages=$5
    local -a cmd
    if [ "$client" = actix-ws-session ]; then
        cmd=("$OURS_BIN")
    else
        cmd=("$PEER_BIN/loadgen_peer" --client "$client" --threads 1)
    fi
    timeout -k 5 300 valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" \
        "${cmd[@]}" --url "ws://127.0.0.1:$PORT/" --scenario "$scenario" --size 16 \
        --conns "$conns" --window "$window" --messages "$messages" --duration-s 240 \
        2>&1 >/dev/null | awk '/Collected/ {print $4}'
}

printf '%-20s %22s %22s\n' client "throughput 4x64, 16 B" "latency, 16 B"
for client in actix-ws-session tokio-tungstenite tokio-websockets awc-raw; do
    row=()
    for shape in "echo-throughput 4 64" "echo-latency 1 1"; do
        read -r scenario conns window <<<"$shape"
        small=$(instructions "$client" "$scenario" "$conns" "$window" 2000)
        large=$(instructions "$client" "$scenario" "$conns" "$window" 12000)
        row+=("$(((large - small) / (10000 * conns)))")
    done
    printf '%-20s %22s %22s\n' "$client" "${row[0]} instr/msg" "${row[1]} instr/msg"
done
