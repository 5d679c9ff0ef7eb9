#!/usr/bin/env bash
# Run the Autobahn|TestSuite fuzzing server against our WebSocket client and
# compare the verdicts with tests/autobahn/expected.json.
# See tests/autobahn/README.md for details.
#
#   scripts/autobahn.sh
#
# Environment:
#   AUTOBAHN_HARNESS          harness dir (default: <repo>/../shared/autobahn); if absent: skip, exit 0
#   AUTOBAHN_SPEC             full (default, 517 cases) | quick (421 cases, no slow 12.*/13.* sizes)
#   AUTOBAHN_CLIENT_CMD       client command; "--url ws://127.0.0.1:PORT --agent AGENT" is appended
#                             (default: cargo build --release --example autobahn_client, then run it)
#   AUTOBAHN_AGENT            agent name (default: actix-ws-session)
#   AUTOBAHN_CLIENT_TIMEOUT   seconds for the client run (default: 2400 full, 600 quick)
#   AUTOBAHN_UPDATE_EXPECTED  1: rewrite tests/autobahn/expected.json from the results instead of comparing
#   AUTOBAHN_FORCE_SETUP      1: re-run the harness's setup.sh even if the venv looks complete
#
# Work files (all under target/, i.e. not tracked):
#   target/autobahn/venv      Python venv with the fuzzing server (made by the harness's setup.sh)
#   target/autobahn/reports   reports (index.json, index.html, per-case files)
#   target/autobahn/server.log
#
# Exit status: 0 pass (or harness absent), 1 regression / FAILED case / error.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

log() { printf 'autobahn: %s\n' "$*"; }
die() { printf 'autobahn: ERROR: %s\n' "$*" >&2; exit 1; }

# --- 1. harness -------------------------------------------------------------
HARNESS=${AUTOBAHN_HARNESS:-$REPO_ROOT/../shared/autobahn}
if [ ! -d "$HARNESS" ] || [ ! -f "$HARNESS/setup.sh" ]; then
    log "Autobahn harness not found at $HARNESS (set AUTOBAHN_HARNESS); skipping the Autobahn test suite."
    if [ "${CI:-}" = true ]; then
        log "NOTICE: the Autobahn conformance suite was NOT run in this CI job (no harness)."
    fi
    exit 0
fi
HARNESS=$(cd "$HARNESS" && pwd)

# --- options ----------------------------------------------------------------
SPEC_NAME=${AUTOBAHN_SPEC:-full}
case "$SPEC_NAME" in
    full)  SPEC_FILE=$HARNESS/fuzzingserver.json;       DEFAULT_TIMEOUT=2400 ;;
    quick) SPEC_FILE=$HARNESS/fuzzingserver-quick.json; DEFAULT_TIMEOUT=600 ;;
    *) die "AUTOBAHN_SPEC must be 'full' or 'quick', not '$SPEC_NAME'" ;;
esac
[ -f "$SPEC_FILE" ] || die "spec file $SPEC_FILE not found in the harness"
AGENT=${AUTOBAHN_AGENT:-actix-ws-session}
CLIENT_TIMEOUT=${AUTOBAHN_CLIENT_TIMEOUT:-$DEFAULT_TIMEOUT}
case "$CLIENT_TIMEOUT" in ''|*[!0-9]*) die "AUTOBAHN_CLIENT_TIMEOUT must be a number of seconds" ;; esac
UPDATE=${AUTOBAHN_UPDATE_EXPECTED:-0}

WORK=$REPO_ROOT/target/autobahn
VENV=$WORK/venv
REPORTS=$WORK/reports
SERVER_LOG=$WORK/server.log
EXPECTED=$REPO_ROOT/tests/autobahn/expected.json
COMPARE=$REPO_ROOT/scripts/autobahn_compare.py
mkdir -p "$WORK"

command -v python3 >/dev/null 2>&1 || die "python3 is required (3.9-3.12; 3.11 tested)"
command -v timeout >/dev/null 2>&1 || die "timeout (coreutils) is required"

# --- cleanup on every exit path ----------------------------------------------
SERVER_PID=
CLIENT_PID=
stop_pid() { # PID NAME: TERM, wait up to 10 s, then KILL
    local pid=$1 name=$2 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) did not stop, killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$CLIENT_PID" ]; then stop_pid "$CLIENT_PID" client; CLIENT_PID=; fi
    if [ -n "$SERVER_PID" ]; then stop_pid "$SERVER_PID" "fuzzing server"; SERVER_PID=; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# One run at a time per checkout (shared venv and report directory).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$WORK/.lock"
    if ! flock -n 9; then
        log "another scripts/autobahn.sh run holds $WORK/.lock; waiting (max 45 min)"
        flock -w 2700 9 || die "timed out waiting for $WORK/.lock"
    fi
fi

# --- 2. venv with the fuzzing server ---------------------------------------------
ensure_python_venv() {
    # Debian/Ubuntu split ensurepip (needed by `python3 -m venv`) into python3-venv.
    if python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        return 0
    fi
    log "python3 cannot create venvs (no ensurepip); installing python3-venv"
    command -v apt-get >/dev/null 2>&1 || die "python3 has no venv/ensurepip module and apt-get is unavailable; install the venv module for $(python3 --version 2>&1)"
    local SUDO=
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "installing python3-venv needs root (or sudo)"
        SUDO="sudo -n"
    fi
    local pyver pkgs
    pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    pkgs="python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine often has no package lists; only update when the install fails.
    local APT="timeout 600 $SUDO apt-get"
    if ! $APT install -y -q --no-install-recommends $pkgs "python$pyver-venv" </dev/null; then
        $APT update -q </dev/null || true
        $APT install -y -q --no-install-recommends $pkgs "python$pyver-venv" </dev/null \
            || $APT install -y -q --no-install-recommends $pkgs </dev/null \
            || die "apt-get install python3-venv failed"
    fi
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || die "python3 still cannot create venvs after installing python3-venv"
}

harness_stamp() { # identifies the harness version the venv was made from
    python3 - "$HARNESS/requirements.txt" "$HARNESS/py3.patch" "$HARNESS/setup.sh" <<'EOF'
import hashlib, sys
h = hashlib.sha256()
for p in sys.argv[1:]:
    with open(p, "rb") as f:
        h.update(hashlib.sha256(f.read()).digest())
print(h.hexdigest())
EOF
}

venv_ok() {
    [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/wstest" ] || return 1
    [ "$(cat "$VENV/.autobahn-harness-stamp" 2>/dev/null)" = "$STAMP" ] || return 1
    # marker written by the harness's apply_patch.py: sha256 of the applied py3.patch
    "$VENV/bin/python" - "$HARNESS/py3.patch" <<'EOF' >/dev/null 2>&1
import hashlib, os, sys, sysconfig
want = hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()
marker = os.path.join(sysconfig.get_paths()["purelib"], "autobahntestsuite", ".py3port")
assert open(marker).read().strip() == want
import autobahntestsuite.fuzzing, websockets  # noqa: F401  (server + reference client)
EOF
}

STAMP=$(harness_stamp)
if [ "${AUTOBAHN_FORCE_SETUP:-0}" != 1 ] && venv_ok; then
    log "venv $VENV is up to date"
else
    ensure_python_venv
    if [ -d "$VENV" ] && ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
        log "removing broken venv $VENV"
        rm -rf "$VENV"
    fi
    log "installing the harness into $VENV"
    t0=$SECONDS
    rm -f "$VENV/.autobahn-harness-stamp"
    # bounded: pip retries against an unreachable index can otherwise take very long
    timeout -k 30 900 "$HARNESS/setup.sh" "$VENV" </dev/null || die "harness setup ($HARNESS/setup.sh $VENV) failed or took over 15 min"
    printf '%s\n' "$STAMP" >"$VENV/.autobahn-harness-stamp"
    venv_ok || die "venv $VENV is incomplete after setup.sh"
    log "harness installed in $((SECONDS - t0)) s"
fi

# --- 3. cases selected by the spec (the suite's own selection logic) ----------
SPEC_CASES=$WORK/spec-cases.json
"$VENV/bin/python" - "$SPEC_FILE" "$SPEC_CASES" <<'EOF'
import json, sys
from autobahntestsuite.case import Cases, CaseCategories, CaseSubCategories, CaseSetname, CaseBasename
from autobahntestsuite.caseset import CaseSet
spec = json.load(open(sys.argv[1]))
cases = CaseSet(CaseSetname, CaseBasename, Cases, CaseCategories, CaseSubCategories).parseSpecCases(spec)
json.dump(cases, open(sys.argv[2], "w"))
EOF

# --- 4. client under test (built before the server starts) ------------------------
if [ -n "${AUTOBAHN_CLIENT_CMD:-}" ]; then
    CLIENT_CMD=$AUTOBAHN_CLIENT_CMD
else
    log "building the client: cargo build --release --example autobahn_client"
    cargo build --release --example autobahn_client </dev/null || die "cargo build --release --example autobahn_client failed"
    TARGET_DIR=$(cargo metadata --format-version 1 --no-deps </dev/null \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    CLIENT_CMD=$(printf '%q' "$TARGET_DIR/release/examples/autobahn_client")
fi

# --- 5. fuzzing server, then the client ---------------------------------------------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
URL=ws://127.0.0.1:$PORT
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
log "starting fuzzing server on $URL (spec: $SPEC_NAME, $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$SPEC_CASES") cases), log: $SERVER_LOG"
VENV=$VENV "$HARNESS/run-fuzzingserver.sh" "$PORT" "$REPORTS" "$SPEC_FILE" </dev/null >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
deadline=$((SECONDS + 60))
until port_open; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID" 2>/dev/null && rc=0 || rc=$?
        SERVER_PID=
        tail -n 30 "$SERVER_LOG" >&2 || true
        die "fuzzing server exited (status $rc) before accepting connections; see $SERVER_LOG"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        tail -n 30 "$SERVER_LOG" >&2 || true
        die "fuzzing server did not accept connections on 127.0.0.1:$PORT within 60 s; see $SERVER_LOG"
    fi
    sleep 0.2
done
log "fuzzing server up (pid $SERVER_PID)"

log "running client ($CLIENT_TIMEOUT s max): $CLIENT_CMD --url $URL --agent $AGENT"
t0=$SECONDS
# In the background + `wait`, so that INT/TERM traps run at once.
timeout -k 30 "$CLIENT_TIMEOUT" bash -c "$CLIENT_CMD"' "$@"' autobahn-client --url "$URL" --agent "$AGENT" </dev/null &
CLIENT_PID=$!
wait "$CLIENT_PID" && CLIENT_RC=0 || CLIENT_RC=$?
CLIENT_PID=
log "client finished in $((SECONDS - t0)) s (exit status $CLIENT_RC)"
CLIENT_PROBLEM=
if [ "$CLIENT_RC" -ne 0 ]; then
    if [ "$CLIENT_RC" -eq 124 ] || [ "$CLIENT_RC" -eq 137 ]; then
        CLIENT_PROBLEM="client timed out after $CLIENT_TIMEOUT s"
    else
        CLIENT_PROBLEM="client exited with status $CLIENT_RC"
    fi
    log "$CLIENT_PROBLEM; asking the server for the reports of the cases run so far"
    # Partial reports make the comparison list the missing cases.
    timeout 300 "$VENV/bin/python" - "$URL" "$AGENT" <<'EOF' || log "could not fetch partial reports"
import sys, urllib.parse
from websockets.sync.client import connect
url, agent = sys.argv[1:3]
with connect("%s/updateReports?agent=%s" % (url, urllib.parse.quote(agent)), open_timeout=290) as ws:
    try:
        for _ in ws:
            pass
    except Exception:
        pass
EOF
fi

# --- 6. stop the server, summarise, compare -----------------------------------------
stop_pid "$SERVER_PID" "fuzzing server"
SERVER_PID=

echo
"$VENV/bin/python" "$HARNESS/summarize.py" "$REPORTS" --agent "$AGENT"
log "HTML report: $REPORTS/index.html"

COMPARE_ARGS=(--index "$REPORTS/index.json" --agent "$AGENT" --expected "$EXPECTED" --spec-cases "$SPEC_CASES")
if [ "$UPDATE" = 1 ]; then
    if [ -n "$CLIENT_PROBLEM" ]; then
        die "$CLIENT_PROBLEM; not updating $EXPECTED"
    fi
    python3 "$COMPARE" "${COMPARE_ARGS[@]}" --update
    exit $?
fi
python3 "$COMPARE" "${COMPARE_ARGS[@]}" && RC=0 || RC=$?
if [ -n "$CLIENT_PROBLEM" ]; then
    log "RESULT: FAIL ($CLIENT_PROBLEM)"
    exit 1
fi
exit "$RC"
