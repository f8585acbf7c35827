#!/usr/bin/env python3
"""Finds sanitizer reports in the logs under a directory and summarises them.

Usage: sanitizer_report.py DIR [DIR...]

Used by `make test-asan` and `make test-tsan` after the integration suite:
the nodes write their stderr into node.log files under pytest's base
directory, where a report fails no test by itself (a node that reports a
race keeps running; one that aborts may do so after its test passed).
This script makes those reports fail the run.

Reports (AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer,
ThreadSanitizer) are grouped by their SUMMARY line, so a race hit in fifty
tests is listed once, with its count, the logs it appeared in, and one full
report trimmed to its stack frames.  Exit status: 0 when no log holds a
report, 1 otherwise.
"""

import os
import re
import sys

# Start of a report, and the line that ends it.
START = re.compile(r"^(WARNING: ThreadSanitizer:|==\d+==ERROR: (Address|Leak|Thread)Sanitizer"
                   r"|.*: runtime error: )")
END = re.compile(r"^SUMMARY: (Address|Leak|Thread|UndefinedBehavior)Sanitizer")
MAX_LINES = 45          # of one example report
MAX_GROUPS_SHOWN = 40   # full examples printed; the rest only counted


def reports(path):
    """Yields (summary, text) for every report in the file at path."""
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError:
        return
    cur = None
    for line in lines:
        if cur is None:
            if START.match(line):
                cur = [line]
            continue
        cur.append(line)
        if END.match(line):
            yield line, cur
            cur = None
    if cur:  # a report cut short (the process was killed while writing it)
        yield "(report without SUMMARY) " + cur[0], cur


def trim(report):
    """Keeps the headline, access lines and stack frames; drops noise."""
    out = []
    for line in report:
        s = line.strip()
        if not s or s.startswith("=") and "ERROR" not in s:
            continue
        out.append(line)
        if len(out) >= MAX_LINES:
            out.append("    ...")
            break
    return out


def main(dirs):
    groups = {}
    for d in dirs:
        for root, _, files in os.walk(d):
            for name in sorted(files):
                if not name.endswith(".log"):
                    continue
                path = os.path.join(root, name)
                for summary, text in reports(path):
                    key = re.sub(r"\(pid=\d+\)|==\d+==", "", summary).strip()
                    g = groups.setdefault(key, {"count": 0, "files": [], "example": text})
                    g["count"] += 1
                    if path not in g["files"]:
                        g["files"].append(path)
    if not groups:
        print("sanitizer reports in node logs: none")
        return 0
    total = sum(g["count"] for g in groups.values())
    print(f"== sanitizer reports in node logs: {total} in {len(groups)} kinds")
    ranked = sorted(groups.items(), key=lambda kv: -kv[1]["count"])
    for key, g in ranked:
        print(f"  {g['count']:5d}x  {key}")
    for i, (key, g) in enumerate(ranked[:MAX_GROUPS_SHOWN]):
        files = g["files"]
        more = f" (+{len(files) - 3} more)" if len(files) > 3 else ""
        print(f"\n--- [{i + 1}] {key}\n    in {', '.join(files[:3])}{more}")
        print("\n".join(trim(g["example"])))
    if len(ranked) > MAX_GROUPS_SHOWN:
        print(f"\n({len(ranked) - MAX_GROUPS_SHOWN} more kinds not shown)")
    return 1


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
