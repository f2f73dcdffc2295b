"""Thread counts: n_jobs, LABELSIFT_NUM_THREADS and the CLI's --jobs."""
from adversarial.harness import cli_error, error, handled

_CALL = "y, p = good(60000, 10)\nr = labelsift.find_label_issues(y, p, n_jobs={v})\nref = labelsift.find_label_issues(y, p, n_jobs=1)"

CASES = []
for v in ["100000", "40000", "10**9", "10**10", "2**31", "2**63", "10000", "513"]:
    CASES.append(handled(f"n_jobs={v} is clamped to the CPUs, with a warning", _CALL.format(v=v),
                         "np.array_equal(r, ref)", warns=r"n_jobs=\d+ .*CPU", timeout=20))
for v, t in [("'x'", "TypeError"), ("'4'", "TypeError"), ("2.5", "TypeError"), ("True", "TypeError"),
             ("0", "ValueError"), ("-1", "ValueError"), ("-5", "ValueError"), ("[2]", "TypeError"),
             ("float('nan')", "TypeError"), ("np.array([2, 3])", "TypeError")]:
    CASES.append(error(f"n_jobs={v}", _CALL.format(v=v), t, r"n_jobs"))
CASES.append(handled("n_jobs=np.int64(2)", _CALL.format(v="np.int64(2)"), "np.array_equal(r, ref)"))
CASES.append(handled("n_jobs=None", _CALL.format(v="None"), "np.array_equal(r, ref)"))

_ENV = ("os.environ['LABELSIFT_NUM_THREADS'] = {v!r}\ny, p = good(60000, 10)\n"
        "r = labelsift.find_label_issues(y, p)\nref = labelsift.find_label_issues(y, p, n_jobs=1)")
for v in ["100000", "40000", "1000000000"]:
    CASES.append(handled(f"LABELSIFT_NUM_THREADS={v} is clamped", _ENV.format(v=v), "np.array_equal(r, ref)",
                         warns=r"LABELSIFT_NUM_THREADS=\d+ .*CPU", timeout=20))
for v in ["abc", "0", "-3", "2.5", "1e3", "0x10"]:
    CASES.append(error(f"LABELSIFT_NUM_THREADS={v!r}", _ENV.format(v=v), "ValueError", r"LABELSIFT_NUM_THREADS"))
CASES.append(handled("LABELSIFT_NUM_THREADS='' means the default", _ENV.format(v=""), "np.array_equal(r, ref)"))
CASES.append(handled("LABELSIFT_NUM_THREADS=' ' means the default", _ENV.format(v=" "), "np.array_equal(r, ref)"))
CASES.append(handled("LABELSIFT_NUM_THREADS=' 2 ' (spaces)", _ENV.format(v=" 2 "), "np.array_equal(r, ref)"))

_SETUP = "y, p = good(60000, 10)\nL = save('y.npy', y)\nP = save('p.npy', p)"
for v in ["abc", "0", "-2", "2.5"]:
    CASES.append(cli_error(f"cli --jobs {v}", f"'find-issues', '--labels', L, '--pred-probs', P, '--jobs', {v!r}",
                           r"--jobs", setup=_SETUP))
CASES.append(handled(
    "cli --jobs 100000 is clamped", _SETUP + "\nr = cli('find-issues', '--labels', L, '--pred-probs', P, '--jobs', '100000',"
    " '--out', 'o.csv')", "r.returncode == 0 and os.path.exists('o.csv')", timeout=30))

_OMP = ("import subprocess, sys\n"
        "r = subprocess.run([sys.executable, '-c', 'import numpy as np, labelsift, warnings;"
        "rng = np.random.default_rng(0); p = rng.dirichlet(np.ones(10), 60000); y = p.argmax(1);"
        "print(labelsift.find_label_issues(y, p).sum())'], capture_output=True, text=True, timeout=60,"
        " env={{**os.environ, {var!r}: {v!r}, 'LABELSIFT_MAX_THREADS': ''}})")
for var, v in [("OMP_NUM_THREADS", "100000"), ("OMP_NUM_THREADS", "40000"), ("LABELSIFT_NUM_THREADS", "100000"),
               ("LABELSIFT_MAX_THREADS", "100000")]:
    CASES.append(handled(f"{var}={v} in a fresh process", _OMP.format(var=var, v=v),
                         "r.returncode == 0 and r.stdout.strip().isdigit()", timeout=60))
for v in ["abc", "0", "-1"]:
    CASES.append(error(f"LABELSIFT_MAX_THREADS={v!r}",
                       f"os.environ['LABELSIFT_MAX_THREADS'] = {v!r}\ny, p = good(60000, 10)\n"
                       "labelsift.find_label_issues(y, p, n_jobs=2)", "ValueError", "LABELSIFT_MAX_THREADS"))
