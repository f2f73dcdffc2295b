#!/usr/bin/env python
"""The shared harness of labelsift's benchmarks (knows nothing of any method).

A case file (``bench_cl.py`` for confident learning) generates its data,
declares its cases and hands them to a :class:`Bench`::

    settings = settings_from_args(args, "cleanlab")    # after add_args(parser, "cleanlab")
    bench = Bench(settings, __file__, load_inputs, {"labels": ..., "probs": ...},
                  floor_input=probs_path, peers=("cleanlab",))
    bench.start(argv, vars(args), data_description)
    for case in cases:              # Case(name, desc, passes, impls, compare, comparisons)
        bench.run_case(case)
    bench.stages([(label, impl), ...])                  # --breakdown
    bench.finish()                  # bandwidth again, ratios
    bench.report([bench.case_table(columns), ...], headline)

What the harness does:

* **A fresh process per measurement** (the worker protocol). The parent runs
  ``python bench/harness.py --worker SPEC``. The worker imports the case file
  by its path, runs the implementation's ``setup`` (imports, so their cost is
  not timed), loads the inputs with the case's loader (mode ``"ram"``: in
  memory; ``"mmap"``: what the case gives for a file on disk), records its
  RSS, resets the kernel's peak-RSS counter (``/proc/self/clear_refs`` = 5),
  prints ``##BASELINE``, runs the call ``repeat`` times, saves the first
  result and prints ``##RESULT {json}`` (times, VmHWM, /proc status).
* **Memory.** ``extra_hwm`` = VmHWM - RSS after loading. The parent also
  samples the worker's anonymous RSS (RssAnon) every 5 ms after the baseline:
  ``extra_anon`` = peak RssAnon - RssAnon after loading, the meaningful
  number for memmap input (mapped file pages belong to the page cache).
* **Floor**, measured in the same run: the fastest of a few NumPy reductions
  over the case's floor input loaded in RAM (1, 2 and N threads, best of 3),
  at the start and at the end of the run; floor = passes x bytes / bandwidth.
* **Peers**, measured in the same run, on the same inputs. After the run
  every case gets ``ratios``: each peer's best time over each labelsift
  run's, and each labelsift run's over the floor.
* **Contention.** Every worker records how many cores other processes kept
  busy while it ran (``/proc/stat`` minus the worker's CPU time). With
  ``--wait-quiet S`` each labelsift measurement first waits (up to S s) for
  the machine to be idle and is repeated (up to 3 times in all, the least
  contended kept) when other processes used more than 0.3 cores during it.
* **Snapshot.** The workers import labelsift from a private copy of the
  package the parent would import (``PYTHONPATH=src/python`` for an in-place
  build, else the installed one), taken at the start under
  ``DATA_DIR/labelsift_snapshot_*``, so that a rebuild or an edit during the
  run can neither break the workers nor mix versions (``--no-snapshot``:
  import it where it lies). Its origin, version, backend and the git commit
  and dirty files of the repository are recorded.
* **Machine**: CPU model, core count, ISA flags (avx2, avx512f, ...), memory,
  versions; every table is captioned with the CPU.
* **Output**: JSON (rewritten after every measurement, so a partial run
  keeps what it measured) and Markdown tables.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA = HERE / "data"

QUIET_CORES = 0.3  # the machine is "quiet" while other processes keep fewer cores busy
MAX_TRIES = 3  # a contended labelsift measurement is taken up to this many times
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl")
STATUS_KEYS = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")


# ---------------------------------------------------------------------------
# Declarations
# ---------------------------------------------------------------------------
@dataclass
class Impl:
    """One implementation of a case, measured in its own worker process.

    ``call(*inputs, **kwargs)`` and ``setup()`` must be module-level functions
    of the case file: the worker looks them up there by name. ``mode`` is
    passed to the case's loader. ``labelsift`` marks labelsift's own runs
    (best of ``--repeat``, quiet-machine waiting; the others are peers, run
    once, skipped by ``--skip-PEER``).
    """

    key: str
    call: Callable
    mode: str = "ram"
    kwargs: dict = field(default_factory=dict)
    setup: Callable | None = None
    labelsift: bool = False


@dataclass
class Case:
    """A measured function: its labelsift and peer implementations, how many
    passes over the floor input its floor counts, and how results compare:
    ``compare(saved_a, saved_b) -> dict`` (paths of the saved first results)
    is applied to every ``(JSON key, impl key a, impl key b)`` of
    ``comparisons`` whose two runs succeeded."""

    name: str
    desc: str
    passes: int
    impls: list[Impl]
    compare: Callable[[str, str], dict] | None = None
    comparisons: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class Settings:
    repeat: int = 3
    out: str | None = None
    data_dir: Path = DEFAULT_DATA
    wait_quiet: float = 0.0
    snapshot: bool = True
    breakdown: bool = False
    skip_peers: bool = False
    peer_timeout: float | None = None


def add_args(ap: argparse.ArgumentParser, peer: str) -> None:
    """The harness's command-line options; ``peer`` names ``--skip-PEER`` and ``--PEER-timeout``."""
    ap.add_argument("--repeat", type=int, default=3, help=f"labelsift runs per call, best is reported ({peer}: 1)")
    ap.add_argument(f"--skip-{peer}", action="store_true", help=f"measure labelsift only (no {peer} runs)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA))
    ap.add_argument(f"--{peer}-timeout", type=float, default=3600.0, help=f"seconds per {peer} call")
    ap.add_argument("--breakdown", action="store_true",
                    help="also time the stages labelsift's engines record (labelsift._common.trace) in its calls, "
                         "in RAM and memmap")
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                    help="before each labelsift/bandwidth measurement, wait up to this long for the machine to be "
                         f"idle (other processes < {QUIET_CORES} cores); useful when tests run beside the benchmark")
    ap.add_argument("--no-snapshot", action="store_true",
                    help="run labelsift where it is imported from instead of a private copy taken at the start")


def case_parser(doc: str, case_names: list[str], peer: str, sizes: dict) -> argparse.ArgumentParser:
    """A case file's parser: its integer sizes (``{"n": 200_000}`` gives ``--n``; ``n_datalab`` gives
    ``--n-datalab``), ``--seed``, ``--funcs`` (a comma-separated subset of ``case_names``) and the
    harness's own options."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    for name, default in sizes.items():
        ap.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--funcs", default=",".join(case_names),
                    help="comma-separated subset of: " + ",".join(case_names))
    add_args(ap, peer)
    return ap


def run_selected(bench: "Bench", ap: argparse.ArgumentParser, cases: dict, funcs: str) -> None:
    """Run the cases named in ``funcs`` (``--funcs``), in that order; an unknown name is a usage error."""
    for f in [f for f in funcs.split(",") if f]:
        if f not in cases:
            ap.error(f"unknown function {f!r}")
        bench.run_case(cases[f])


def settings_from_args(args: argparse.Namespace, peer: str) -> Settings:
    return Settings(repeat=args.repeat, out=args.out, data_dir=Path(args.data_dir), wait_quiet=args.wait_quiet,
                    snapshot=not args.no_snapshot, breakdown=args.breakdown,
                    skip_peers=getattr(args, f"skip_{peer}"), peer_timeout=getattr(args, f"{peer}_timeout"))


def _ref(fn: Callable | None) -> str | None:
    """The name under which a worker finds `fn` in the case file."""
    if fn is None:
        return None
    if getattr(sys.modules.get(fn.__module__), fn.__name__, None) is not fn:
        raise ValueError(f"{fn!r} is not a module-level function of its case file")
    return fn.__name__


# ---------------------------------------------------------------------------
# /proc readings
# ---------------------------------------------------------------------------
def proc_status(pid: int | str = "self") -> dict | None:
    """Memory fields of /proc/PID/status, in bytes (None once the process is gone)."""
    try:
        d = {}
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(STATUS_KEYS):
                    key, v = line.split(":")
                    d[key] = int(v.split()[0]) * 1024
        return d
    except (OSError, ValueError):
        return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _meminfo(key: str) -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _cpu_busy_s() -> float:
    """System-wide busy CPU seconds since boot (all cores)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def busy_cores(seconds: float = 2.0) -> float:
    """Average number of cores busy over `seconds` (this process sleeps)."""
    b0 = _cpu_busy_s()
    time.sleep(seconds)
    return (_cpu_busy_s() - b0) / seconds


def wait_quiet(max_wait: float, threshold: float = QUIET_CORES) -> float:
    """Wait up to max_wait seconds until other processes use < threshold cores; return the last reading."""
    t0 = time.perf_counter()
    load = busy_cores(1.0)
    while load >= threshold and time.perf_counter() - t0 < max_wait:
        load = busy_cores(2.0)
    return load


# ---------------------------------------------------------------------------
# Worker (runs in a fresh subprocess: python bench/harness.py --worker SPEC)
# ---------------------------------------------------------------------------
def _load_case_module(path: str):
    spec = importlib.util.spec_from_file_location("bench_case", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_case"] = mod
    spec.loader.exec_module(mod)
    return mod


def _save_result(res, stem: str) -> str:
    if isinstance(res, tuple):
        path = stem + ".npz"
        np.savez(path, *[np.asarray(r) for r in res])
    else:
        path = stem + ".npy"
        np.save(path, np.asarray(res))
    return path


def _bandwidth(arr: np.ndarray, repeat: int) -> dict:
    """Read bandwidth (bytes/s) of a few NumPy reductions over `arr`, 1, 2 and N threads."""
    flat = arr.reshape(-1)
    chunk = (32 << 20) // flat.itemsize
    bounds = [(a, min(len(flat), a + chunk)) for a in range(0, len(flat), chunk)]
    ops = {"max": np.max, "add.reduce": np.add.reduce, "maximum.reduce": np.maximum.reduce}
    res = {}
    for name, op in ops.items():
        for nt in sorted({1, 2, os.cpu_count() or 1}):
            def work(bs, op=op):
                for a, b in bs:
                    op(flat[a:b])

            best = float("inf")
            for _ in range(repeat):
                t0 = time.perf_counter()
                if nt == 1:
                    work(bounds)
                else:
                    with ThreadPoolExecutor(nt) as ex:
                        list(ex.map(work, [bounds[i::nt] for i in range(nt)]))
                best = min(best, time.perf_counter() - t0)
            res[f"{name}/{nt}t"] = arr.nbytes / best
    return res


def _timed_calls(fn: Callable, inputs: tuple, spec: dict) -> dict:
    times, saved = [], None
    for r in range(spec["repeat"]):
        t0 = time.perf_counter()
        res = fn(*inputs, **spec.get("kwargs", {}))
        times.append(time.perf_counter() - t0)
        if r == 0 and spec.get("save"):
            saved = _save_result(res, spec["save"])
        del res
    return {"times": times, "saved": saved}


def _stage_times(mod, inputs: tuple, calls: list, repeat: int) -> dict:
    """Each call's best-of-`repeat` time and the stages labelsift recorded in
    that same repetition (whatever their names; {} when none are recorded)."""
    from labelsift._common import trace

    out = {}
    for label, name, kwargs in calls:
        fn = getattr(mod, name)
        totals, best = [], None
        for _ in range(repeat):
            with trace.recording() as stages:
                t0 = time.perf_counter()
                res = fn(*inputs, **kwargs)
                total = time.perf_counter() - t0
            del res
            totals.append(total)
            if best is None or total < best[0]:
                best = (total, dict(stages))
        out[label] = {"total_s": best[0], "stages_s": best[1], "totals_s": totals}
    return out


def worker(spec: dict) -> None:
    kind = spec["kind"]
    mod = _load_case_module(spec["module"]) if spec.get("module") else None
    for name in spec.get("setup") or []:
        getattr(mod, name)()
    t0 = time.perf_counter()
    if kind == "bandwidth":
        inputs = (np.load(spec["floor_input"]),)
    else:
        inputs = tuple(getattr(mod, spec["load"])(spec["inputs"], spec["mode"]))
    out = {"load_s": time.perf_counter() - t0, "baseline": proc_status(), "reset_peak": _reset_peak()}
    print("##BASELINE", flush=True)
    if kind == "bandwidth":
        out["bandwidth"] = _bandwidth(inputs[0], spec["repeat"])
    elif kind == "stages":
        out["stages"] = _stage_times(mod, inputs, spec["calls"], spec["repeat"])
    else:
        out.update(_timed_calls(getattr(mod, spec["call"]), inputs, spec))
    out["end"] = proc_status()
    out["vmhwm"] = out["end"]["VmHWM"]
    out["ru_maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print("##RESULT " + json.dumps(out), flush=True)


# ---------------------------------------------------------------------------
# Parent side: spawn a worker, sample its memory, record the contention
# ---------------------------------------------------------------------------
class _Watch:
    """Threads that read a worker's output and sample its memory after ##BASELINE."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.after_base = False
        self.peak = {"peak_anon": 0, "peak_file": 0, "peak_rss": 0, "min_avail": _meminfo("MemAvailable")}
        self.out: list[str] = []
        self.err: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._sample, self._read, self._read_err)]
        for t in self._threads:
            t.start()

    def _sample(self):
        fields = (("peak_anon", "RssAnon"), ("peak_file", "RssFile"), ("peak_rss", "VmRSS"))
        while not self._stop.is_set():
            s = proc_status(self.proc.pid)
            if s and self.after_base:
                for key, fld in fields:
                    self.peak[key] = max(self.peak[key], s.get(fld, 0))
                self.peak["min_avail"] = min(self.peak["min_avail"], _meminfo("MemAvailable"))
            time.sleep(0.005)

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("##BASELINE"):
                self.after_base = True
            self.out.append(line)

    def _read_err(self):
        for line in self.proc.stderr:
            self.err.append(line)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)


def run_worker(spec: dict, labelsift_path: str | None, timeout: float | None = None) -> dict:
    """Run one measurement in a fresh process; return its result with memory and contention figures."""
    env = dict(os.environ)
    if labelsift_path:
        env["PYTHONPATH"] = labelsift_path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    t_start = time.perf_counter()
    busy0, child0, load0 = _cpu_busy_s(), _children_cpu_s(), os.getloadavg()[0]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    watch = _Watch(proc)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    watch.stop()
    wall = time.perf_counter() - t_start
    child_cpu = _children_cpu_s() - child0
    # average number of cores busy with something else than this worker
    # (other processes, e.g. a test suite running beside the benchmark)
    other = max(0.0, (_cpu_busy_s() - busy0 - child_cpu) / max(wall, 1e-9))
    contention = {"loadavg1_before": load0, "loadavg1_after": os.getloadavg()[0],
                  "worker_cpu_s": child_cpu, "other_cores_busy_avg": other}
    return _worker_result(watch, rc, wall, contention)


def _worker_result(watch: _Watch, rc: int, wall: float, contention: dict) -> dict:
    result = None
    for line in watch.out:
        if line.startswith("##RESULT "):
            result = json.loads(line[len("##RESULT "):])
    if result is None:
        return {"ok": False, "rc": rc, "error": f"worker rc={rc}" + (" (killed: OOM?)" if rc in (-9, 137) else ""),
                "stderr_tail": "".join(watch.err[-15:]), "wall_s": wall,
                "peak_anon_sampled_after_load": watch.peak["peak_anon"], "contention": contention}
    base = result["baseline"]
    result.update(ok=True, rc=rc, wall_s=wall, contention=contention, sampled=dict(watch.peak))
    # exact: kernel peak RSS after the reset minus the RSS after loading
    result["extra_hwm"] = result["vmhwm"] - base["VmRSS"]
    # sampled: peak anonymous memory minus anonymous memory after loading
    result["extra_anon"] = max(0, watch.peak["peak_anon"] - base["RssAnon"])
    warnings = [line for line in watch.err if line.strip()]
    if warnings:
        result["stderr_tail"] = "".join(warnings[-5:])
    return result


# ---------------------------------------------------------------------------
# The labelsift snapshot and the machine
# ---------------------------------------------------------------------------
_PROBE = ("import json, labelsift; print(json.dumps({'file': labelsift.__file__, "
          "'version': labelsift.__version__, 'backend': labelsift.backend_info()}))")


def _probe_labelsift(env: dict, cwd: Path) -> tuple[dict | None, str]:
    chk = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, cwd=str(cwd))
    if chk.returncode != 0:
        return None, chk.stderr.strip()[-300:]
    return json.loads(chk.stdout.strip().splitlines()[-1]), ""


def _copy_and_probe(origin: Path, dest: Path, cwd: Path) -> tuple[dict | None, str]:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(origin, dest / "labelsift", symlinks=False, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = dict(os.environ, PYTHONPATH=str(dest))
    found, err = _probe_labelsift(env, cwd)
    if found and not Path(found["file"]).resolve().is_relative_to(dest.resolve()):
        return None, f"the copy imported labelsift from {found['file']}"
    return found, err


def snapshot_labelsift(dest_root: Path, copy: bool = True) -> dict:
    """Find the labelsift this process's environment imports and, with `copy`,
    copy it (symlinked .so files resolved) to a private folder the workers
    import instead. Retried while an import fails (a rebuild in progress?)."""
    dest_root.mkdir(parents=True, exist_ok=True)
    dest = dest_root / f"labelsift_snapshot_{time.strftime('%Y%m%d-%H%M%S')}"
    for _ in range(10):
        found, err = _probe_labelsift(dict(os.environ), dest_root)
        origin = Path(found["file"]).resolve().parent if found else None
        if found and copy:
            found, err = _copy_and_probe(origin, dest, dest_root)
        if found:
            break
        print(f"[snapshot] importing labelsift failed, retrying in 15 s: {err}", flush=True)
        time.sleep(15)
    else:
        raise RuntimeError("could not import (and snapshot) labelsift")
    info = {"path": str(dest) if copy else str(origin.parent), "snapshot": copy, "origin": str(origin),
            "origin_in_repo": origin.is_relative_to(REPO), "version": found["version"], "backend": found["backend"]}
    info.update(_git_info(origin))
    return info


def _git_info(origin: Path) -> dict:
    def git(*a):
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()

    info = {}
    try:
        info["git_commit"] = git("rev-parse", "HEAD")
        info["git_log1"] = git("log", "-1", "--format=%h %s")
        info["git_dirty"] = git("status", "--porcelain", "--", "src", "CMakeLists.txt").splitlines()
        so = next(origin.glob("_core*.so"), None)
        if so is not None:
            mtime = so.resolve().stat().st_mtime
            info["core_so_mtime"] = _dt.datetime.fromtimestamp(mtime).isoformat(timespec="seconds")
    except Exception as exc:  # pragma: no cover
        info["git_error"] = str(exc)
    return info


def machine_info(packages: tuple[str, ...] = ()) -> dict:
    """CPU model, ISA flags, memory and versions (of Python, NumPy and `packages`)."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    info = {"nproc": os.cpu_count(), "cpu_model": model, "isa": {f: f in flags for f in ISA_FLAGS},
            "mem_total_gib": _meminfo("MemTotal") / 2**30, "python": platform.python_version(),
            "numpy": np.__version__, "platform": platform.platform()}
    for p in packages:
        try:
            info[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            info[p] = None
    return info


def cpu_caption(machine: dict) -> str:
    """The CPU a figure was measured on, in words."""
    isa = machine.get("isa", {})
    yn = lambda f: "yes" if isa.get(f) else "no"  # noqa: E731
    return (f"CPU: {machine.get('cpu_model') or 'unknown'}, {machine.get('nproc')} cores "
            f"(avx2: {yn('avx2')}, avx512f: {yn('avx512f')})")


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------
def best_time(run: dict | None) -> float | None:
    return min(run["times"]) if run and run.get("ok") and run.get("times") else None


def fmt_t(x: float | None) -> str:
    return "—" if x is None else (f"{x:.3f}" if x < 10 else f"{x:.1f}")


def fmt_mem(extra: float | None, nbytes: int) -> str:
    return "—" if extra is None else f"{extra / 1e9:.2f} GB ({100 * extra / nbytes:.1f}%)"


def md_table(header: list[str], rows: list[list[str]], caption: str = "") -> str:
    lines = ([caption, ""] if caption else []) + ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    cell = lambda x: str(x).replace("|", "\\|")  # noqa: E731  (a stage name may hold one)
    return "\n".join(lines + ["| " + " | ".join(cell(x) for x in r) + " |" for r in rows])


def _run_line(name: str, key: str, r: dict, nbytes: int) -> str:
    if not r.get("ok"):
        return f"[{name}] {key}: FAILED {r.get('error')}\n{r.get('stderr_tail', '')}"
    ts = ", ".join(f"{t:.3f}" for t in r["times"])
    return (f"[{name}] {key}: times [{ts}] s; extra (VmHWM) {fmt_mem(r['extra_hwm'], nbytes)}, "
            f"extra anon (sampled) {fmt_mem(r['extra_anon'], nbytes)}, min MemAvailable "
            f"{r['sampled']['min_avail'] / 2**30:.1f} GiB; "
            f"other load {r['contention']['other_cores_busy_avg']:.2f} cores")


def _least_contended(r: dict, r2: dict) -> dict:
    """Keep the less contended of two measurements; note the other in ``earlier_attempts``."""
    busy = lambda x: x.get("contention", {}).get("other_cores_busy_avg")  # noqa: E731
    if r2.get("ok") and busy(r2) < busy(r):
        earlier = {"times": r["times"], "other_cores_busy_avg": busy(r)}
        r2["earlier_attempts"] = r.pop("earlier_attempts", []) + [earlier]
        return r2
    r.setdefault("earlier_attempts", []).append({"times": r2.get("times"), "other_cores_busy_avg": busy(r2)})
    return r


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


# A table column: (header, cell(bench, case, runs of the case) -> str).
Column = tuple[str, Callable[["Bench", Case, dict], str]]


# ---------------------------------------------------------------------------
# A benchmark run
# ---------------------------------------------------------------------------
class Bench:
    """One run: the snapshot, the bandwidth, the workers and the results.

    ``loader(inputs, mode) -> tuple`` (a module-level function of the case
    file) turns ``inputs`` (JSON-able, typically paths) into the positional
    arguments of every call; ``floor_input`` is the ``.npy`` file the floor
    counts passes over; ``tag`` goes into the names of the saved results."""

    def __init__(self, settings: Settings, case_file: str, loader: Callable, inputs: dict, floor_input: str,
                 tag: str = "", peers: tuple[str, ...] = ()):
        self.settings = settings
        self.case_file = str(Path(case_file).resolve())
        self.loader = _ref(loader)
        self.inputs = dict(inputs)
        self.floor_input = str(floor_input)
        self.nbytes = int(np.load(floor_input, mmap_mode="r").nbytes)
        self.tag = tag
        self.peers = tuple(peers)
        self.res_dir = Path(settings.data_dir) / "results"
        self.labelsift_path: str | None = None
        self.cases: list[Case] = []
        self.results: dict = {}

    # -- the run ------------------------------------------------------------
    def start(self, argv: list[str], args: dict, data: dict) -> bool:
        """Snapshot labelsift, record the machine, measure the bandwidth; False if that fails."""
        s = self.settings
        self.res_dir.mkdir(parents=True, exist_ok=True)
        started = _now()
        snap = snapshot_labelsift(Path(s.data_dir), copy=s.snapshot)
        self.labelsift_path = snap["path"] if s.snapshot else None
        print(f"[labelsift] {json.dumps(snap)}", flush=True)
        machine = machine_info(self.peers)
        machine.update(labelsift=snap["version"], labelsift_backend=snap["backend"])
        print(f"[machine] {cpu_caption(machine)}", flush=True)
        self.results = {
            "started": started,
            "command": "python " + " ".join([os.path.relpath(self.case_file, REPO)] + list(argv)),
            "machine": machine, "labelsift_code": snap, "args": args, "data": data, "runs": {},
        }
        return self.measure_bandwidth("start")

    def measure_bandwidth(self, when: str) -> bool:
        if self.settings.wait_quiet:
            wait_quiet(self.settings.wait_quiet)
        print(f"[bandwidth] measuring read bandwidth ({when}) ...", flush=True)
        r = run_worker({"kind": "bandwidth", "floor_input": self.floor_input, "repeat": 3}, None)
        if not r.get("ok"):
            print(f"[bandwidth] failed: {r}", flush=True)
            return False
        other = r["contention"]["other_cores_busy_avg"]
        print("[bandwidth] " + ", ".join(f"{k}: {v / 1e9:.2f} GB/s" for k, v in r["bandwidth"].items())
              + f"; other load {other:.2f} cores", flush=True)
        bw = self.results.setdefault("bandwidth", {
            "measurements": [], "bytes": self.nbytes,
            "note": "fastest NumPy reduction over the in-RAM floor input (1, 2 or N threads), best of 3, "
                    "best over the measurements at the start and the end of the run"})
        bw["measurements"].append({"when": when, "by_method": r["bandwidth"], "other_cores_busy_avg": other})
        best = max(((m["when"], k, v) for m in bw["measurements"] for k, v in m["by_method"].items()),
                   key=lambda t: t[2])
        bw.update(best_method=f"{best[1]} ({best[0]})", best_bytes_per_s=best[2])
        self.write()
        return True

    def _spec(self, kind: str, mode: str, setups: list, **extra) -> dict:
        return {"kind": kind, "module": self.case_file, "setup": setups, "load": self.loader,
                "inputs": self.inputs, "mode": mode, **extra}

    def measure(self, name: str, impl: Impl, repeat: int | None = None) -> dict:
        """Run one implementation in a worker (labelsift's: after waiting for a
        quiet machine, and again while it was contended); return the run."""
        s = self.settings
        stem = str(self.res_dir / "_".join(p for p in (impl.key, name, self.tag) if p))
        spec = self._spec("call", impl.mode, [_ref(impl.setup)] if impl.setup else [], call=_ref(impl.call),
                          kwargs=impl.kwargs, repeat=repeat or (s.repeat if impl.labelsift else 1), save=stem)
        quiet = bool(impl.labelsift and s.wait_quiet)
        if quiet:
            wait_quiet(s.wait_quiet)
        print(f"[{name}] {impl.key} ... (MemAvailable {_meminfo('MemAvailable') / 2**30:.1f} GiB)", flush=True)
        r = run_worker(spec, self.labelsift_path, None if impl.labelsift else s.peer_timeout)
        tries = 1
        while quiet and r.get("ok") and tries < MAX_TRIES and r["contention"]["other_cores_busy_avg"] > QUIET_CORES:
            print(f"[{name}] {impl.key}: other processes used {r['contention']['other_cores_busy_avg']:.2f} cores; "
                  "measuring again", flush=True)
            wait_quiet(s.wait_quiet)
            r = _least_contended(r, run_worker(spec, self.labelsift_path))
            tries += 1
        r["attempts"] = tries
        r["save"] = r.pop("saved", None) if r.get("ok") else None
        print(_run_line(name, impl.key, r, self.nbytes), flush=True)
        return r

    def run_case(self, case: Case) -> dict:
        """Measure every implementation of `case` (peers unless skipped), then its comparisons."""
        self.cases.append(case)
        self.results["runs"].setdefault(case.name, {})
        for impl in case.impls:
            if impl.labelsift or not self.settings.skip_peers:
                self.record(case.name, impl.key, self.measure(case.name, impl))
        runs = self.results["runs"][case.name]
        for key, a, b in case.comparisons:
            if runs.get(a, {}).get("ok") and runs.get(b, {}).get("ok"):
                self.record(case.name, key, case.compare(runs[a]["save"], runs[b]["save"]))
                print(f"[{case.name}] {a} vs {b}: {runs[key]}", flush=True)
        return runs

    def stages(self, calls: list[tuple[str, Impl]], modes: tuple[str, ...] = ("ram", "mmap")) -> dict:
        """Time labelsift calls inside ``labelsift._common.trace.recording()``:
        per input mode, one worker runs each call best of ``--repeat`` and
        reports its whole time and whatever stages the engines recorded."""
        s = self.settings
        spec_calls = [[label, _ref(impl.call), impl.kwargs] for label, impl in calls]
        setups = sorted({_ref(impl.setup) for _, impl in calls if impl.setup})
        out = self.results["breakdown"] = {}
        for mode in modes:
            if s.wait_quiet:
                wait_quiet(s.wait_quiet)
            print(f"[breakdown] labelsift stages, input {mode} ...", flush=True)
            r = run_worker(self._spec("stages", mode, setups, calls=spec_calls, repeat=s.repeat), self.labelsift_path)
            if not r.get("ok"):
                print(f"[breakdown] failed: {r.get('error')}\n{r.get('stderr_tail', '')}", flush=True)
                out[mode] = {"error": r.get("error"), "stderr_tail": r.get("stderr_tail")}
                continue
            out[mode] = {"calls": r["stages"], "other_cores_busy_avg": r["contention"]["other_cores_busy_avg"]}
            for label, c in r["stages"].items():
                st = ", ".join(f"{k} {v:.3f} s" for k, v in c["stages_s"].items()) or "no stages recorded"
                print(f"[breakdown] {mode}: {label}: whole call {c['total_s']:.3f} s; {st}", flush=True)
        self.write()
        return out

    def finish(self) -> None:
        """Measure the bandwidth again, compute every case's ratios."""
        self.measure_bandwidth("end")
        for case in self.cases:
            self._ratios(case)
        self.results["finished"] = _now()
        self.write()

    def floor_s(self, case: Case) -> float:
        return case.passes * self.nbytes / self.results["bandwidth"]["best_bytes_per_s"]

    def _ratios(self, case: Case) -> None:
        runs = self.results["runs"].setdefault(case.name, {})
        rat = {"floor_s": self.floor_s(case), "floor_passes": case.passes}
        timed = {i.key: best_time(runs.get(i.key)) for i in case.impls}
        ours = [i.key for i in case.impls if i.labelsift and timed[i.key]]
        peers = [i.key for i in case.impls if not i.labelsift and timed[i.key]]
        for a in ours:
            rat[f"{a}_over_floor"] = timed[a] / rat["floor_s"]
            for b in peers:
                rat[f"speedup_{a}_vs_{b}"] = timed[b] / timed[a]
        runs["ratios"] = rat

    def record(self, name: str, key: str, value) -> None:
        self.results["runs"].setdefault(name, {})[key] = value
        self.write()

    def write(self) -> None:
        if self.settings.out:
            Path(self.settings.out).write_text(json.dumps(self.results, indent=1, default=str))

    # -- tables ---------------------------------------------------------------
    def caption(self) -> str:
        bw = self.results["bandwidth"]
        return (f"{cpu_caption(self.results['machine'])}; read bandwidth {bw['best_bytes_per_s'] / 1e9:.2f} GB/s "
                f"({bw['best_method']})")

    def case_table(self, columns: list[Column], cases: list[Case] | None = None) -> str:
        """One row per case (default: every case run), one cell per column."""
        rows = [[cell(self, c, self.results["runs"].get(c.name, {})) for _, cell in columns]
                for c in (self.cases if cases is None else cases)]
        return md_table([h for h, _ in columns], rows, self.caption())

    def pair_table(self, pairs: list[tuple[str, str, str, str]], diff: Callable[[dict], str]) -> str:
        """labelsift against other peers: a row per case and (labelsift run, peer run, comparison key,
        peer in words) where both runs succeeded; `diff` formats the comparison."""
        rows = []
        for c in self.cases:
            runs = self.results["runs"].get(c.name, {})
            for a_key, b_key, cmp_key, peer in pairs:
                ta, tb = best_time(runs.get(a_key)), best_time(runs.get(b_key))
                if ta and tb:
                    rows.append([c.desc, peer, f"{ta:.3f}", f"{tb:.2f}", f"{tb / ta:.1f}x",
                                 fmt_mem(runs[a_key]["extra_anon"], self.nbytes),
                                 fmt_mem(runs[b_key]["extra_anon"], self.nbytes), diff(runs.get(cmp_key) or {})])
        head = ["function", "peer", "labelsift (s)", "peer (s)", "speedup", "labelsift extra anon mem",
                "peer extra anon mem", "differing vs peer"]
        return md_table(head, rows, self.caption())

    def details_table(self) -> str:
        """Every worker run: all times, and how busy the machine was with other work."""
        rows = []
        for name, runs in self.results["runs"].items():
            for key, r in runs.items():
                if not isinstance(r, dict) or "ok" not in r:
                    continue
                if not r["ok"]:
                    rows.append([name, key, str(r.get("error")), "", "", ""])
                    continue
                rows.append([name, key, ", ".join(f"{t:.3f}" for t in r["times"]),
                             fmt_mem(r["extra_hwm"], self.nbytes), fmt_mem(r["extra_anon"], self.nbytes),
                             f"{r['contention']['other_cores_busy_avg']:.2f}"])
        head = ["function", "run", "times (s)", "extra mem (VmHWM)", "extra anon (sampled)",
                "other processes (avg cores busy)"]
        return md_table(head, rows, self.caption())

    def stages_table(self) -> str:
        """The --breakdown: per input and call, each recorded stage, the whole call and the time outside the stages."""
        rows = []
        for mode, b in self.results.get("breakdown", {}).items():
            for label, c in b.get("calls", {}).items():
                st = c["stages_s"]
                rows += [[mode, label, k, f"{v:.3f}"] for k, v in st.items()]
                if st:  # negative where the engines nest stages
                    rest = c["total_s"] - sum(st.values())
                    rows.append([mode, label, "whole call minus the stages' sum", f"{rest:.3f}"])
                rows.append([mode, label, "whole call" if st else "whole call (no stages recorded)",
                             f"{c['total_s']:.3f}"])
        return md_table(["input", "call", "stage", "s"], rows, self.caption())

    def report(self, tables: list[str], headline: str = "") -> None:
        """Store the tables (and the details and stage tables) in the results, print them, write the JSON."""
        r = self.results
        r["table_markdown"] = "\n\n".join(tables)
        r["details_markdown"] = self.details_table()
        parts = [r["table_markdown"], r["details_markdown"]]
        if "breakdown" in r:
            r["breakdown_markdown"] = self.stages_table()
            parts.append(r["breakdown_markdown"])
        print()
        if headline:
            print(headline + "\n")
        print("\n\n".join(parts))
        self.write()
        if self.settings.out:
            print(f"\nwrote {self.settings.out}")


# ---------------------------------------------------------------------------
# Column helpers for Bench.case_table
# ---------------------------------------------------------------------------
def col_desc(header: str = "function") -> Column:
    return header, lambda b, c, runs: c.desc


def col_time(key: str, header: str) -> Column:
    def cell(b, c, runs):
        r = runs.get(key)
        if not r:
            return "—"
        return fmt_t(best_time(r)) if r.get("ok") else str(r.get("error", "—"))
    return header, cell


def col_speedup(ours: str, peer: str, header: str) -> Column:
    def cell(b, c, runs):
        x = runs.get("ratios", {}).get(f"speedup_{ours}_vs_{peer}")
        return "—" if x is None else f"{x:.1f}x"
    return header, cell


def col_mem(key: str, fld: str, header: str) -> Column:
    """`fld`: "extra_hwm" (VmHWM) or "extra_anon" (sampled RssAnon)."""
    def cell(b, c, runs):
        r = runs.get(key) or {}
        return fmt_mem(r.get(fld), b.nbytes) if r.get("ok") else "—"
    return header, cell


def col_floor(header: str = "floor (s)") -> Column:
    return header, lambda b, c, runs: f"{b.floor_s(c):.3f} ({c.passes} pass{'es' if c.passes > 1 else ''})"


def col_over_floor(key: str, header: str) -> Column:
    def cell(b, c, runs):
        x = runs.get("ratios", {}).get(f"{key}_over_floor")
        return "—" if x is None else f"{x:.2f}x"
    return header, cell


def col_compare(key: str, header: str, fmt: Callable[[dict, Case], str]) -> Column:
    return header, lambda b, c, runs: fmt(runs.get(key) or {}, c)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.modules.setdefault("harness", sys.modules["__main__"])  # the case file's `import harness` is this module
        worker(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: harness.py --worker SPEC (run by a case file such as bench_cl.py)")
