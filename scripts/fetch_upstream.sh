#!/usr/bin/env bash
# Fetches the pinned upstream release that the tasks' baselines port, for `kpilot fidelity`:
# `pip download --no-deps` of the wheel each task.toml's [upstream] names, its sha256 checked,
# and the wheel files the tasks pin ([upstream] files) unpacked into .upstream/<package>-<version>/.
# Upstream code is a dependency, never committed (.upstream/ is ignored).
# Usage: scripts/fetch_upstream.sh            -> prints the folder to pass as --upstream
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PY'
import hashlib, pathlib, subprocess, sys, tomllib, zipfile

pins = {}
for toml in sorted(pathlib.Path("tasks").glob("*/task.toml")):
    up = tomllib.loads(toml.read_text())["upstream"]
    key = (up["package"], up["version"], up["wheel"], up["wheel_sha256"])
    pins.setdefault(key, {}).update({f["path"]: f["sha256"] for f in up["files"]})
for (pkg, ver, wheel, sha), files in pins.items():
    dl = pathlib.Path(".upstream/wheels")
    dl.mkdir(parents=True, exist_ok=True)
    whl = dl / wheel
    if not whl.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check",
                        "-d", str(dl), f"{pkg}=={ver}"], check=True)
    have = hashlib.sha256(whl.read_bytes()).hexdigest()
    if have != sha:
        sys.exit(f"{whl}: sha256 {have}, but the tasks pin {sha}")
    out = pathlib.Path(f".upstream/{pkg}-{ver}")
    with zipfile.ZipFile(whl) as z:
        for path, want in sorted(files.items()):
            data = z.read(path)
            got = hashlib.sha256(data).hexdigest()
            if got != want:
                sys.exit(f"{wheel}!{path}: sha256 {got}, but a task.toml pins {want}")
            dst = out / path
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(data)
    print(out)
PY
