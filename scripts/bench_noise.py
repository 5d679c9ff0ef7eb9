#!/usr/bin/env python3
"""Can one run of scripts/bench.sh tell two equal clients apart? The self-check's answer.

usage: bench_noise.py results.jsonl [results.jsonl ...]

Reads bench.sh results files made with BENCH_SELF_CHECK=1 (files without the second copy
of our binary, "actix-ws-session-again", are skipped) and treats that copy as a peer
exactly as fast as this crate. Per run, it prints how many throughput rows had a paired
ratio (bench_table.py's: the median of same-round ratios) below 1.00x, the binary against
its copy and the copy against the binary. Then it counts the (run, direction) pairs in
which a client that leads its equal by a margin m (every paired ratio times 1 + m) would
have every throughput row at 1.00x or more: what "at least 1.00x the best peer on every
row of one run" demands, in margin over a peer, on this machine.
"""
import sys

from bench_table import CONTROL, OURS, paired_ratios, read_results, row_key

MARGINS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.10)


def self_check_ratios(path):
    """Per throughput row, (binary / copy, copy / binary) paired ratios; None without a copy."""
    rows = {}
    for d in read_results(path):
        if d.get("scenario") == "echo-throughput":
            rows.setdefault(row_key(d), {}).setdefault(d.get("client", "?"), []).append(d)
    pairs = []
    for per_client in rows.values():
        if OURS not in per_client or CONTROL not in per_client:
            return None
        pair = {OURS: per_client[OURS], CONTROL: per_client[CONTROL]}
        forward = [r for peer, r, _ in paired_ratios(pair, "msgs_per_s") if peer == CONTROL]
        pair = {OURS: per_client[CONTROL], "copy": per_client[OURS]}
        backward = [r for _, r, _ in paired_ratios(pair, "msgs_per_s")]
        if not forward or not backward:
            return None
        pairs.append((forward[0], backward[0]))
    return pairs or None


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    runs = []
    for path in sys.argv[1:]:
        pairs = self_check_ratios(path)
        if pairs is None:
            print(f"{path}: no self-check on every throughput row, skipped")
            continue
        below = [sum(r < 1.0 for r in side) for side in zip(*pairs)]
        print(f"{path}: {len(pairs)} rows; below 1.00x: {below[0]} (binary/copy), "
              f"{below[1]} (copy/binary)")
        runs.append(pairs)
    if not runs:
        return
    chances = 2 * len(runs)
    print(f"\n{len(runs)} runs, {chances} (run, direction) pairs. A client leading its equal by m "
          "would have every throughput row at 1.00x or more in:")
    for margin in MARGINS:
        passing = sum(all(r * (1 + margin) >= 1.0 for r in side)
                      for pairs in runs for side in zip(*pairs))
        print(f"  m = {margin:4.0%}: {passing:3} of {chances}")


if __name__ == "__main__":
    main()
