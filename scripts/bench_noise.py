#!/usr/bin/env python3
"""Can one run of scripts/bench.sh tell two equal clients apart? The self-check's answer.

usage: bench_noise.py results.jsonl [results.jsonl ...]

Two questions, asked of every results file given:

1. Which clients met the throughput target in that run: every throughput row at 1.00x or
   more, paired (bench_table.py's ratio: the median of same-round ratios), against each
   of the other clients. The self-check's second copy of our binary is not counted as a
   client here.
2. For files made with BENCH_SELF_CHECK=1, where that copy, "actix-ws-session-again", is a
   peer exactly as fast as this crate: how many throughput rows had the binary below its
   copy and the copy below the binary. Then, over those runs, the number of (run,
   direction) pairs in which a client leading its equal by a margin m (every paired ratio
   times 1 + m) would have had every row at 1.00x or more. That is what the target demands,
   in margin over a peer, on this machine.

Keep the files of one echo server together: the answers differ between servers.
"""
import sys

from bench_table import CONTROL, OURS, paired_ratios, read_results, row_key

MARGINS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.10)
METRIC = "msgs_per_s"


def throughput_rows(path):
    """Row key -> client -> that client's results for the row, throughput rows only."""
    rows = {}
    for d in read_results(path):
        if d.get("scenario") == "echo-throughput":
            rows.setdefault(row_key(d), {}).setdefault(d.get("client", "?"), []).append(d)
    return rows


def worst_paired_ratio(per_client, client, others):
    """`client`'s lowest paired ratio against any of `others`; None if none shares a round."""
    # paired_ratios takes the client under OURS' name, so this crate as a peer is renamed.
    pair = {f"{other} (peer)" if other == OURS else other: per_client[other] for other in others}
    pair[OURS] = per_client[client]
    ratios = [r for _, r, _ in paired_ratios(pair, METRIC)]
    return min(ratios) if ratios else None


def target_met_by(rows):
    """The clients (the self-check's copy aside) whose every row is at 1.00x or more
    against every other client that ran it."""
    clients = {c for per_client in rows.values() for c in per_client if c != CONTROL}
    met = []
    for client in sorted(clients):
        worst = []
        for per_client in rows.values():
            others = [c for c in per_client if c not in (client, CONTROL)]
            if client not in per_client or not others:
                break
            worst.append(worst_paired_ratio(per_client, client, others))
        else:
            if worst and all(w is not None and w >= 1.0 for w in worst):
                met.append(client)
    return met


def self_check_ratios(rows):
    """Per throughput row, (binary / copy, copy / binary) paired ratios; None without a copy."""
    pairs = []
    for per_client in rows.values():
        if OURS not in per_client or CONTROL not in per_client:
            return None
        forward = worst_paired_ratio(per_client, OURS, [CONTROL])
        backward = worst_paired_ratio(per_client, CONTROL, [OURS])
        if forward is None or backward is None:
            return None
        pairs.append((forward, backward))
    return pairs or None


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    runs = 0
    runs_met = 0
    self_checks = []
    for path in sys.argv[1:]:
        rows = throughput_rows(path)
        if not rows:
            print(f"{path}: no throughput rows, skipped")
            continue
        runs += 1
        met = target_met_by(rows)
        runs_met += bool(met)
        line = f"{path}: {len(rows)} rows; target met by: {', '.join(met) or 'no client'}"
        pairs = self_check_ratios(rows)
        if pairs is not None:
            below = [sum(r < 1.0 for r in side) for side in zip(*pairs)]
            line += f"; self-check rows below 1.00x: {below[0]} (binary/copy), {below[1]} (copy/binary)"
            self_checks.append(pairs)
        print(line)
    if not runs:
        return
    print(f"\nSome client met the target in {runs_met} of {runs} runs.")
    if not self_checks:
        return
    chances = 2 * len(self_checks)
    print(f"{len(self_checks)} runs with the self-check, {chances} (run, direction) pairs. "
          "A client leading its equal by m would have had every throughput row at 1.00x or "
          "more in:")
    for margin in MARGINS:
        passing = sum(all(r * (1 + margin) >= 1.0 for r in side)
                      for pairs in self_checks for side in zip(*pairs))
        print(f"  m = {margin:4.0%}: {passing:3} of {chances}")


if __name__ == "__main__":
    main()
