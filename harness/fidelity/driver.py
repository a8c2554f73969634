"""kpilot fidelity driver (written out and run by `kpilot fidelity`; not meant to be run by hand).

Times the pinned upstream implementation and the task's baseline the same way, in one process,
on the same card: the same buffers (inputs filled by kpilot's own seeded fill kernel, so the
float64 reference regenerates them on the CPU), a CUDA graph of N launches replayed between two
events (warm L2 where a row fits, as upstream's own benchmarks time it), replays of the two sides
interleaved (AB, BA, ...). For the output check it runs each side once on poisoned outputs and
dumps what it wrote; kpilot compares the dumps with the task's float64 reference.

Upstream runs either through a Python adapter (a Triton kernel called through torch, the way the
production caller calls it) or through a CUDA shim: the wheel's own .cuh compiled standalone
behind kpilot's C ABI, called exactly like the baseline.

argv: plan.json. Writes one JSON line per row to plan["results"]; progress goes to stderr.
"""

import ctypes
import importlib.util
import json
import os
import statistics
import sys
import traceback

KP_DTYPES = {1: "bfloat16", 2: "float16", 3: "float32", 4: "int32", 5: "int64"}
KP_OK, KP_NOT_SUPPORTED = 0, 1


class KpTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("dtype", ctypes.c_int32),
        ("rank", ctypes.c_int32),
        ("shape", ctypes.c_int64 * 8),
        ("stride", ctypes.c_int64 * 8),
    ]


class KpCall(ctypes.Structure):
    _fields_ = [
        ("abi_version", ctypes.c_uint32),
        ("n_tensors", ctypes.c_uint32),
        ("n_scalars", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
        ("tensors", KpTensor * 16),
        ("scalars", ctypes.c_double * 8),
        ("path", ctypes.c_char * 64),
    ]


def say(msg):
    print(f"fidelity: {msg}", file=sys.stderr, flush=True)


class Sides:
    """The two implementations: 'upstream' and 'baseline'."""

    def __init__(self, plan, torch):
        self.torch = torch
        self.plan = plan
        self.support = ctypes.CDLL(plan["support_so"])
        self.support.kps_fill_random.argtypes = [
            ctypes.c_void_p, ctypes.c_int32, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint32,
            ctypes.c_int32, ctypes.c_double, ctypes.c_double, ctypes.c_double, ctypes.c_double, ctypes.c_void_p,
        ]
        self.support.kps_fill_random.restype = ctypes.c_int32
        self.support.kps_fill_pattern.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_void_p]
        self.support.kps_fill_pattern.restype = ctypes.c_int32
        self.libs = {"baseline": ctypes.CDLL(plan["baseline_so"])}
        up = plan["upstream"]
        self.adapter = None
        if up.get("shim_so"):
            self.libs["upstream"] = ctypes.CDLL(up["shim_so"])
        else:
            spec = importlib.util.spec_from_file_location("kpilot_upstream_adapter", up["adapter"])
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            mod.load(up["root"])
            self.adapter = mod

    def stream(self):
        return ctypes.c_void_p(self.torch.cuda.current_stream().cuda_stream)

    def launcher(self, side, row, views):
        """A zero-argument callable that launches `side` once on torch's current stream and
        returns {output name: tensor} for adapter sides (None for ABI sides, which write into the
        row's own outputs), plus a function that reads the dispatch path."""
        entry = row["entry"]
        if side in self.libs:
            fn = getattr(self.libs[side], "kp_" + entry)
            fn.argtypes = [ctypes.POINTER(KpCall), ctypes.c_void_p]
            fn.restype = ctypes.c_int32
            call = KpCall()
            call.abi_version = 1
            call.n_tensors = len(row["tensors"])
            call.n_scalars = len(row["scalars"])
            for i, t in enumerate(row["tensors"]):
                d = call.tensors[i]
                v = views.get(t["name"]) if t["present"] else None
                if v is None:
                    d.data, d.dtype = None, 0
                    continue
                d.data = v.data_ptr() if v.numel() > 0 else None
                d.dtype = t["code"]
                d.rank = len(t["shape"])
                for k, (n, s) in enumerate(zip(t["shape"], t["stride"])):
                    d.shape[k], d.stride[k] = n, s
            for i, s in enumerate(row["scalars"]):
                call.scalars[i] = s["value"]
            ref = ctypes.byref(call)

            def run():
                rc = fn(ref, self.stream())
                if rc != KP_OK:
                    raise Refused(rc)
                return None

            return run, lambda: call.path.decode(errors="replace")
        scalars = {s["name"]: s["value"] for s in row["scalars"]}
        try:
            run = self.adapter.launcher(entry, dict(views), scalars)
        except NotImplementedError as e:
            raise Refused(KP_NOT_SUPPORTED, str(e))
        return run, lambda: "upstream:" + entry


class Refused(Exception):
    def __init__(self, rc, why=""):
        super().__init__(f"returned {rc}" + (f": {why}" if why else ""))
        self.rc = rc


def allocate(torch, row):
    """Storage per present tensor and its strided view, as kpilot's worker lays them out."""
    bases, views = {}, {}
    for t in row["tensors"]:
        if not t["present"]:
            views[t["name"]] = None
            continue
        dt = getattr(torch, KP_DTYPES[t["code"]])
        base = torch.empty(max(t["storage_elems"], 1), dtype=dt, device="cuda")
        bases[t["name"]] = base
        views[t["name"]] = torch.as_strided(base, t["shape"], t["stride"]) if t["storage_elems"] else base[:0]
    return bases, views


def prepare(sides, row, bases, seed, stream, what):
    """Fills inputs (what='all') or only in-place tensors (what='inout'); poisons outputs."""
    for i, t in enumerate(row["tensors"]):
        if not t["present"]:
            continue
        base = bases[t["name"]]
        if t["role"] == "output":
            rc = sides.support.kps_fill_pattern(base.data_ptr(), base.numel() * base.element_size(), row["poison"], stream)
        elif what == "all" or t["role"] == "inout":
            code, a, b, c, d = t["dist"]
            rc = sides.support.kps_fill_random(base.data_ptr(), t["code"], t["storage_elems"], seed, i, code, a, b, c, d, stream)
        else:
            continue
        if rc != KP_OK:
            raise RuntimeError(f"support fill of {t['name']} returned {rc}")


def dump(torch, row, bases, dump_dir, side):
    """Writes every written tensor's storage (the bytes kpilot's checks read) to a file."""
    paths = []
    for t in row["tensors"]:
        if not t["present"] or t["role"] == "input":
            continue
        base = bases[t["name"]][: t["storage_elems"]]
        raw = base.view(torch.uint8) if base.numel() else torch.empty(0, dtype=torch.uint8)
        p = os.path.join(dump_dir, f"r{row['index']}.{side}.{t['name']}.bin")
        with open(p, "wb") as f:
            f.write(raw.cpu().numpy().tobytes())
        paths.append(p)
    return paths


def graph_of(torch, run, n):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        run()
        run()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(n):
            run()
    torch.cuda.synchronize()
    return g


def run_row(torch, sides, plan, row):
    res = {"row": row["index"], "name": row["name"], "error": None}
    bases, views = allocate(torch, row)
    stream = sides.stream()
    seed = plan["seed"]
    prepare(sides, row, bases, seed, stream, "all")
    torch.cuda.synchronize()
    runs = {}
    for side in ("upstream", "baseline"):
        r = {"status": "ok", "us": None, "samples_us": [], "dumps": [], "path": ""}
        res[side] = r
        try:
            run, path = sides.launcher(side, row, views)
            prepare(sides, row, bases, seed, stream, "inout")
            outs = run()
            if outs is not None:
                for name, v in outs.items():
                    views[name].copy_(v)
            torch.cuda.synchronize()
            r["path"] = path()
            r["dumps"] = dump(torch, row, bases, plan["dump_dir"], side)
            runs[side] = run
        except Refused as e:
            r["status"] = "not_supported" if e.rc == KP_NOT_SUPPORTED else f"error: {e}"
        except Exception as e:  # upstream raising is a result, not a crash of the driver
            r["status"] = f"error: {type(e).__name__}: {e}"
            say(traceback.format_exc())
            torch.cuda.synchronize()
    if len(runs) == 2:
        n = plan["launches"]
        graphs = {side: graph_of(torch, runs[side], n) for side in runs}
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        for g in graphs.values():  # one untimed replay each
            g.replay()
        torch.cuda.synchronize()
        for k in range(plan["replays"]):
            order = ("upstream", "baseline") if k % 2 == 0 else ("baseline", "upstream")
            for side in order:
                start.record()
                graphs[side].replay()
                end.record()
                end.synchronize()
                res[side]["samples_us"].append(start.elapsed_time(end) * 1000.0 / n)
        for side in runs:
            res[side]["us"] = statistics.median(res[side]["samples_us"])
        del graphs
    del bases, views, runs
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    return res


def main():
    plan = json.load(open(sys.argv[1]))
    import torch

    torch.cuda.set_device(plan["device"])
    sides = Sides(plan, torch)
    env = {
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "python": sys.version.split()[0],
        "device_name": torch.cuda.get_device_name(),
    }
    try:
        import triton

        env["triton"] = triton.__version__
    except ImportError:
        env["triton"] = None
    with open(plan["results"], "w") as out:
        out.write(json.dumps({"env": env}) + "\n")
        out.flush()  # kpilot's watchdog counts results lines as progress
        for row in plan["rows"]:
            say(f"row {row['name']}")
            try:
                res = run_row(torch, sides, plan, row)
            except Exception as e:
                res = {"row": row["index"], "name": row["name"], "error": f"{type(e).__name__}: {e}"}
                say(traceback.format_exc())
            out.write(json.dumps(res) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
