#!/usr/bin/env python3
"""Packs the build cache entries of the given sources into a gzip tar for a GPU machine.

Usage: scripts/pack_build_cache.py OUT.tar.gz tasks/<task>/baseline.cu tasks/<task>/candidates/v1.cu ...
       (a source written +path may be #included by what is packed but is not packed on its own:
       +tasks/<task>/candidates/v4.cu packs v5's library, which includes v4.cu, and not v4's)

An entry (.kpilot-cache/build/<hash>.so and its .deps.json) is packed when every project file
nvcc read for it still has the recorded sha256 and every .cu among them is one of the arguments,
so the tar holds exactly the libraries those sources build now (kernels/kpilot_support.cu for the
support kernels). The GPU machine then finds them by hash ("cached ... (hash match)") instead of
compiling; a stale or missing entry is simply compiled there.
"""
import glob
import hashlib
import json
import os
import re
import sys
import tarfile


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def included(src, by):
    """True when `by` has a quoted #include that resolves (relative to `by`'s folder) to src."""
    with open(by, errors="replace") as f:
        for line in f:
            m = INCLUDE.match(line)
            if m and os.path.normpath(os.path.join(os.path.dirname(by), m.group(1))) == os.path.normpath(src):
                return True
    return False


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out = sys.argv[1]
    include_only = {a[1:] for a in sys.argv[2:] if a.startswith("+")}
    want = {a for a in sys.argv[2:] if not a.startswith("+")} | include_only
    root = os.getcwd()
    picked = []
    for deps in sorted(glob.glob(".kpilot-cache/build/*.deps.json")):
        with open(deps) as f:
            entries = [e for e in json.load(f) if not e.get("system")]
        mains, ok = [], True
        for e in entries:
            rel = os.path.relpath(e["path"], root) if os.path.isabs(e["path"]) else e["path"]
            if not os.path.exists(rel) or sha256(rel) != e["sha256"]:
                ok = False
                break
            if rel.endswith(".cu"):
                mains.append(rel)
        so = deps[: -len(".deps.json")] + ".so"
        if not (ok and mains and all(m in want for m in mains) and os.path.exists(so)):
            continue
        # The library's own source: a .cu no other .cu of the build includes. Skip the entry when
        # that is unclear (none, or more than one) or when it is an include-only argument.
        top = [m for m in mains if not any(included(m, o) for o in mains if o != m)]
        if len(top) == 1 and top[0] not in include_only:
            picked += [so, deps]
            print(f"{so}: {', '.join(mains)}", file=sys.stderr)
    with tarfile.open(out, "w:gz") as t:
        for p in picked:
            t.add(p)
    print(f"{out}: {len(picked) // 2} libraries", file=sys.stderr)


if __name__ == "__main__":
    main()
