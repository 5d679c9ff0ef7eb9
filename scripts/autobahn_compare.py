#!/usr/bin/env python3
"""
Compare Autobahn|TestSuite results (index.json) with the checked-in
expectation file, or rewrite that file from the results.

  autobahn_compare.py --index REPORTS/index.json --agent NAME
                      --expected tests/autobahn/expected.json
                      [--spec-cases CASES.json] [--update]

--spec-cases: JSON list of the case ids selected by the spec in use (made by
scripts/autobahn.sh with the suite's own case selection). Without it, the
cases of the results are taken as the spec's cases.

Comparison rules (exit 1 on any of them, else 0):
  * any case whose verdict ("behavior") is FAILED;
  * any case worse than expected, ranking
      OK = INFORMATIONAL (0) < NON-STRICT (1) < UNIMPLEMENTED (2) < FAILED (3)
    (an unknown verdict counts as FAILED);
  * a case of the spec missing from the results, or missing from the
    expectation file. Cases outside the spec (quick spec) are not compared.
Improvements (better than expected) are printed as a hint only.

--update writes the expectation file from the results instead (one case per
line, case ids in numeric order). Cases outside the spec keep their current
entry, so updating from the quick spec does not drop the slow cases.
Stdlib only.
"""

import argparse
import json
import os
import sys
import tempfile
import textwrap

RANK = {"OK": 0, "INFORMATIONAL": 0, "NON-STRICT": 1, "UNIMPLEMENTED": 2, "FAILED": 3}


def case_key(case_id):
    return tuple(int(x) if x.isdigit() else 0 for x in case_id.split("."))


def rank(verdict):
    return RANK.get(verdict, 3)


def load_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print("autobahn: cannot read %s %s: %s" % (what, path, e))
        return None


def write_expected(path, verdicts):
    lines = ["{"]
    ids = sorted(verdicts, key=case_key)
    for i, cid in enumerate(ids):
        sep = "," if i + 1 < len(ids) else ""
        lines.append("  %s: %s%s" % (json.dumps(cid), json.dumps(verdicts[cid]), sep))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".expected.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", required=True, help="report index.json (or the report directory)")
    ap.add_argument("--agent", required=True)
    ap.add_argument("--expected", required=True, help="expectation file (JSON object case id -> verdict)")
    ap.add_argument("--spec-cases", help="JSON list of the case ids selected by the spec in use")
    ap.add_argument("--update", action="store_true", help="write the expectation file from the results")
    args = ap.parse_args()

    index_path = args.index
    if os.path.isdir(index_path):
        index_path = os.path.join(index_path, "index.json")
    index = load_json(index_path, "report")
    if index is None:
        print("autobahn: RESULT: FAIL (no report; did the client call /updateReports?)")
        return 1
    if args.agent not in index:
        print("autobahn: no results for agent %r in %s (agents: %s)"
              % (args.agent, index_path, ", ".join(sorted(index)) or "none"))
        print("autobahn: RESULT: FAIL (no results for agent %s)" % args.agent)
        return 1
    results = index[args.agent]
    got = {cid: r.get("behavior", "?") for cid, r in results.items()}
    close = {cid: r.get("behaviorClose", "?") for cid, r in results.items()}

    if args.spec_cases:
        spec_cases = load_json(args.spec_cases, "spec case list")
        if not isinstance(spec_cases, list):
            print("autobahn: RESULT: FAIL (bad spec case list %s)" % args.spec_cases)
            return 1
    else:
        spec_cases = list(got)
    spec_set = set(spec_cases)
    spec_cases = sorted(spec_set, key=case_key)

    missing_results = [c for c in spec_cases if c not in got]
    extra_results = sorted((c for c in got if c not in spec_set), key=case_key)

    if args.update:
        if missing_results:
            print("autobahn: %d case(s) of the spec have no result, e.g. %s"
                  % (len(missing_results), " ".join(missing_results[:10])))
            print("autobahn: RESULT: FAIL (not updating %s from incomplete results)" % args.expected)
            return 1
        old = {}
        if os.path.exists(args.expected):
            old = load_json(args.expected, "expectation file")
            if not isinstance(old, dict):
                old = {}
        new = {c: v for c, v in old.items() if c not in spec_set}
        kept = len(new)
        for c in spec_cases:
            new[c] = got[c]
        changed = sorted((c for c in spec_cases if old.get(c) != got[c]), key=case_key)
        for c in changed:
            print("%s: %s -> %s" % (c, old.get(c, "(none)"), got[c]))
        write_expected(args.expected, new)
        print("autobahn: wrote %s: %d cases (%d from this run, %d kept from the old file), %d changed"
              % (args.expected, len(new), len(spec_cases), kept, len(changed)))
        return 0

    expected = load_json(args.expected, "expectation file")
    if not isinstance(expected, dict):
        print("autobahn: RESULT: FAIL (no usable expectation file %s; "
              "create it with AUTOBAHN_UPDATE_EXPECTED=1)" % args.expected)
        return 1

    problems = []     # lines that make the run fail
    improvements = []
    notes = []
    for c in spec_cases:
        if c not in got:
            if len(missing_results) <= 20:
                problems.append("%s: expected %s, got no result (case missing from the report)"
                                % (c, expected.get(c, "?")))
            continue
        g = got[c]
        cl = close.get(c)
        suffix = "" if cl in ("OK", "INFORMATIONAL", "?") or g == "UNIMPLEMENTED" else " (close: %s)" % cl
        if c not in expected:
            problems.append("%s: not in the expectation file, got %s%s" % (c, g, suffix))
            continue
        e = expected[c]
        if g == "FAILED" or rank(g) > rank(e) or g not in RANK:
            problems.append("%s: expected %s, got %s%s" % (c, e, g, suffix))
        elif rank(g) < rank(e):
            improvements.append((c, e, g))
        elif g != e:
            notes.append("%s: expected %s, got %s (same rank)" % (c, e, g))
    for c in extra_results:
        notes.append("%s: result for a case outside the spec in use (%s), not compared" % (c, got[c]))

    for line in problems:
        print(line)
    if len(missing_results) > 20:
        print(textwrap.fill(" ".join(missing_results), width=100,
                            initial_indent="%d cases of the spec have no result (client stopped early?): "
                            % len(missing_results),
                            subsequent_indent="  ", break_on_hyphens=False))
    if improvements:
        print("autobahn: %d improvement(s); consider updating %s (AUTOBAHN_UPDATE_EXPECTED=1):"
              % (len(improvements), os.path.basename(args.expected)))
        by_change = {}
        for c, e, g in improvements:
            by_change.setdefault((e, g), []).append(c)
        for (e, g), ids in sorted(by_change.items()):
            print(textwrap.fill(" ".join(ids), width=100,
                                initial_indent="  expected %s, now %s (%d): " % (e, g, len(ids)),
                                subsequent_indent="      ", break_on_hyphens=False))
    for line in notes:
        print("note: " + line)

    n_failed = sum(1 for c in spec_cases if got.get(c) == "FAILED")
    compared = len(spec_cases) - len(missing_results)
    if problems or missing_results:
        print("autobahn: RESULT: FAIL: %d problem(s) (%d FAILED, %d missing) in %d cases of agent %s"
              % (len(problems) + len(missing_results) * (len(missing_results) > 20), n_failed, len(missing_results), len(spec_cases), args.agent))
        return 1
    print("autobahn: RESULT: PASS: %d cases of agent %s match %s (%d improvement(s))"
          % (compared, args.agent, os.path.basename(args.expected), len(improvements)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
