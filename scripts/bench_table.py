#!/usr/bin/env python3
"""Median table for scripts/bench.sh results (one JSON object per line).

usage: bench_table.py results.jsonl

For every row (scenario + size + conns) and client, prints the median of each
metric over the rounds, then the ratio of actix-ws-session to the best peer:
msgs/s for throughput (higher is better), p50 for latency, RSS/conn for
idle-conns (lower is better), GB/s for mask-kernel (higher is better).
A second ratio pairs the runs of the same round (ours / peer per round,
median over rounds) and reports it against the peer it is lowest (or, for
lower-is-better metrics, highest) against. Throughput rows also show CPU time
per message of the client and of the echo server, and the server's load
(1.00 = one core): at 1.00 the server is the bottleneck and every client meets
the same ceiling.
With BENCH_SELF_CHECK=1 the results also hold a second run of our binary per round
(client "actix-ws-session-again"). It is not a peer: each row then shows the
paired ratio of the binary to itself, whose distance from 1.00 is what that row
moves between two runs of one client on this machine.
"""
import json
import statistics
import sys

OURS = "actix-ws-session"
CONTROL = OURS + "-again"
CLIENT_ORDER = [OURS, CONTROL, "tokio-tungstenite", "tokio-websockets", "awc-raw", "fastwebsockets"]
SCEN_ORDER = ["echo-latency", "echo-throughput", "idle-conns", "mask-kernel"]
# scenario -> (metric used for the ratio, higher_is_better, columns shown)
SPEC = {
    "echo-latency": ("p50_us", False, ["msgs_per_s", "mb_per_s", "p50_us", "p99_us", "p999_us"]),
    "echo-throughput": ("msgs_per_s", True, ["msgs_per_s", "mb_per_s", "client_us", "server_us", "server_busy"]),
    "idle-conns": ("rss_kib_per_conn", False, ["rss_kib_per_conn", "conns_per_s"]),
    "mask-kernel": ("gb_per_s", True, ["gb_per_s"]),
}
HEAD = {
    "msgs_per_s": "msgs/s", "mb_per_s": "MB/s", "p50_us": "p50 us", "p99_us": "p99 us",
    "p999_us": "p99.9 us", "rss_kib_per_conn": "KiB/conn", "conns_per_s": "conns/s", "gb_per_s": "GB/s",
    "client_us": "client us/msg", "server_us": "server us/msg", "server_busy": "server load",
}


def read_results(path):
    """The JSON objects of a results file, one per line; other lines are skipped."""
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def add_costs(d):
    """CPU per message of the client and of the echo server, and the server's load.

    bench.sh adds client_cpu_s (the whole client process, connecting included),
    server_cpu_s and duration_s to each line."""
    rate, dur = d.get("msgs_per_s"), d.get("duration_s")
    if not isinstance(rate, (int, float)) or not rate or not dur:
        return
    messages = rate * dur
    if isinstance(d.get("client_cpu_s"), (int, float)):
        d["client_us"] = d["client_cpu_s"] * 1e6 / messages
    if isinstance(d.get("server_cpu_s"), (int, float)):
        d["server_us"] = d["server_cpu_s"] * 1e6 / messages
        d["server_busy"] = d["server_cpu_s"] / dur


def human_size(n):
    n = int(n)
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20}MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10}KiB"
    return f"{n}B"


def row_key(d):
    s = d.get("scenario")
    if s == "echo-latency":
        return (s, int(d.get("size") or 0), 1)
    if s == "echo-throughput":
        return (s, int(d.get("size") or 0), int(d.get("conns") or 0))
    if s == "idle-conns":
        return (s, 0, int(d.get("conns") or 0))
    return (s, 0, 0)


def row_label(k):
    s, size, conns = k
    if s == "echo-latency":
        return f"echo-latency {human_size(size)}"
    if s == "echo-throughput":
        return f"echo-throughput {conns}x{human_size(size)}"
    if s == "idle-conns":
        return f"idle-conns {conns}"
    return "mask-kernel 1MiB"


def fmt(v):
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def paired_ratios(per_client, metric):
    """(peer, median over rounds of ours/peer, the per-round ratios) for each peer, pairing
    runs of the same round.

    The clients of one round run back to back, so a same-round ratio cancels the slow
    drift of a shared machine that medians taken per client keep."""
    def by_round(runs):
        # Results from before the "round" field: the k-th run of a client is round k.
        return {d.get("round", k): d[metric] for k, d in enumerate(runs, 1)
                if isinstance(d.get(metric), (int, float))}
    ours = by_round(per_client.get(OURS, []))
    out = []
    for peer, runs in per_client.items():
        if peer == OURS:
            continue
        theirs = by_round(runs)
        ratios = [ours[r] / theirs[r] for r in ours if r in theirs and theirs[r]]
        if ratios:
            out.append((peer, statistics.median(ratios), ratios))
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rows = {}
    for d in read_results(sys.argv[1]):
        add_costs(d)
        rows.setdefault(row_key(d), {}).setdefault(d.get("client", "?"), []).append(d)

    def sort_key(k):
        s = SCEN_ORDER.index(k[0]) if k[0] in SCEN_ORDER else 99
        return (s, k[2] if k[0] == "echo-throughput" and k[2] > 4 else 0, k[1], k[2])

    for k in sorted(rows, key=sort_key):
        metric, higher, cols = SPEC.get(k[0], ("msgs_per_s", True, ["msgs_per_s"]))
        per_client = rows[k]
        clients = sorted(per_client, key=lambda c: (CLIENT_ORDER.index(c) if c in CLIENT_ORDER else 99, c))
        print(f"\n== {row_label(k)}")
        print(f"  {'client':<24}" + "".join(f"{HEAD[c]:>14}" for c in cols) + f"{'runs':>6}")
        med = {}
        for c in clients:
            vals = {}
            for col in cols:
                xs = [d[col] for d in per_client[c] if isinstance(d.get(col), (int, float))]
                vals[col] = statistics.median(xs) if xs else None
            med[c] = vals
            print(f"  {c:<24}" + "".join(f"{fmt(vals[col]):>14}" for col in cols) + f"{len(per_client[c]):>6}")
        peers = [(c, v[metric]) for c, v in med.items()
                 if c not in (OURS, CONTROL) and v[metric] is not None]
        if not peers:
            continue
        best = (max if higher else min)(peers, key=lambda t: t[1])
        better = "higher" if higher else "lower"
        ours = med.get(OURS, {}).get(metric)
        if ours is None or best[1] == 0:
            print(f"  ratio {OURS}/best peer ({best[0]}) on {HEAD[metric]}: n/a ({better} is better)")
        else:
            print(f"  ratio {OURS}/best peer ({best[0]}) on {HEAD[metric]}: {ours / best[1]:.2f}x ({better} is better)")
        paired = paired_ratios(per_client, metric)
        control = [(r, rounds) for peer, r, rounds in paired if peer == CONTROL]
        paired = [(peer, r) for peer, r, _ in paired if peer != CONTROL]
        if paired:
            strongest = (min if higher else max)(paired, key=lambda t: t[1])
            print(f"  paired ratio (median of same-round ratios) against the strongest peer "
                  f"({strongest[0]}): {strongest[1]:.2f}x")
        for median, rounds in control:
            print(f"  self-check: paired ratio of {OURS} to a second run of itself: "
                  f"{median:.2f}x (rounds {min(rounds):.2f}-{max(rounds):.2f}; this row's noise)")


if __name__ == "__main__":
    main()
