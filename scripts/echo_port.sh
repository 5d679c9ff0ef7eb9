# Sourced by scripts/bench.sh and scripts/instructions.sh.
#
# echo_port OUT PID: waits up to 5 s for the echo server (process PID) to print
# "LISTENING <port>" to the file OUT, then prints the port. Fails (status 1, nothing
# printed) if the server exits first or never reports its port.
echo_port() {
    local out=$1 pid=$2 port=""
    for _ in $(seq 1 100); do
        port=$(awk '/^LISTENING /{print $2; exit}' "$out" 2>/dev/null || true)
        [ -n "$port" ] && { echo "$port"; return 0; }
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
