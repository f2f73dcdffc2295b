"""Streaming accumulator checkpoints (a trust boundary: every field checked, by name) and
thread safety (one accumulator fed, merged, refined and checkpointed from several threads)."""
from adversarial.harness import error, handled

# A valid top-m checkpoint (format 1): K = 6, top_m = 3, 300 examples with ids 11, 18, ..., 5 of them refined.
# (The adaptive sketch's format-2 checkpoints are tampered with in tests/cl/test_stream_adaptive.py.)
_S = ("from labelsift.stream import ConfidentJointAccumulator as A\n"
      "y, p = good(300, 6, 1)\nids = np.arange(300) * 7 + 11\n"
      "acc = A(6, top_m=3, sketch='top_m').update(ids, y, p)\nacc.refine(ids[:5], p[:5])\nst = acc.state_dict()\n"
      "st = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items()}\n"
      "in_top = (st['top_classes'] == st['labels'][:, None]).any(1)\n"
      "r_in = int(np.flatnonzero(in_top)[0])\nr_out = int(np.flatnonzero(~in_top)[0])\n")
_LOAD = "\nA.from_state_dict(st)"
_LOAD_INTO = "\nA(6, top_m=3, sketch='top_m').load_state_dict(st)"

_TAMPER = [
    # (id, code, exception type(s), message regex)
    ("given 5.0", "st['given'][3] = 5.0", "ValueError", r"'given'.*outside the probability range"),
    ("given negative", "st['given'][3] = -0.25", "ValueError", r"'given'.*outside"),
    ("given -1e-5 (below the validation floor)", "st['given'][3] = -1e-5", "ValueError", r"'given'"),
    ("given NaN", "st['given'][3] = np.nan", "ValueError", r"'given'.*non-finite"),
    ("given inf", "st['given'][3] = np.inf", "ValueError", r"'given'.*non-finite"),
    ("given -inf", "st['given'][3] = -np.inf", "ValueError", r"'given'.*non-finite"),
    ("given differs from the label's top value", "st['given'][r_in] *= 0.5", "ValueError", r"'given'.*contradicts the top value"),
    ("given above left_out_max for a left-out label", "st['given'][r_out] = st['top_values'][r_out, -1]",
     "ValueError", r"'given'.*contradicts its left_out_max"),
    ("given float32 in a float64 state", "st['given'] = st['given'].astype(np.float32)", "ValueError", r"'given'.*dtype float32"),
    ("given an object array", "st['given'] = st['given'].astype(object)", "TypeError", r"'given'.*dtype object"),
    ("given a string", "st['given'] = 'abc'", "TypeError", r"'given'.*must be an array"),
    ("given None", "st['given'] = None", "TypeError", r"'given'.*must be an array"),
    ("given ragged list", "st['given'] = [[0.5], [0.5, 0.5]]", "TypeError", r"'given'"),
    ("given 2-D", "st['given'] = st['given'][:, None]", "ValueError", r"'given'.*1-D"),
    ("given too short", "st['given'] = st['given'][:-1]", "ValueError", r"'given'.*shape"),
    ("given integers", "st['given'] = np.zeros(300, np.int64)", "TypeError", r"'given'.*floating-point"),
    ("top_values NaN", "st['top_values'][7, 0] = np.nan", "ValueError", r"'top_values'.*non-finite"),
    ("top_values unsorted", "st['top_values'][7] = st['top_values'][7, ::-1]", "ValueError", r"'top_values'.*descending"),
    ("top_values 2.0", "st['top_values'][7, 0] = 2.0", "ValueError", r"'top_values'.*outside"),
    ("top_values negative", "st['top_values'][7, 2] = -0.3", "ValueError", r"'top_values'.*outside"),
    ("top_values sum above 1", "st['top_values'][7] = [0.9, 0.8, 0.7]\nst['left_out_max'][7] = 0.0",
     "ValueError", r"'top_values'/'left_out_max' cannot be a probability row"),
    ("top_values and left_out_max too small to sum to 1", "st['top_values'][7] = [0.03, 0.02, 0.01]\n"
     "st['left_out_max'][7] = 0.005\nhit = st['top_classes'][7] == st['labels'][7]\n"
     "st['given'][7] = st['top_values'][7][hit][0] if hit.any() else 0.005",
     "ValueError", r"cannot be a probability row"),
    ("top_values ties not by the lower class", "r = 9\nst['top_values'][r, 1] = st['top_values'][r, 0]\n"
     "c = st['top_classes'][r].copy()\nst['top_classes'][r, 0], st['top_classes'][r, 1] = max(c[0], c[1]), min(c[0], c[1])",
     "ValueError", r"lower class first|contradicts|cannot be"),
    ("top_values wrong width", "st['top_values'] = np.hstack([st['top_values'], st['top_values'][:, :1]])",
     "ValueError", r"'top_values'.*shape"),
    ("top_values float16 in a float64 state", "st['top_values'] = st['top_values'].astype(np.float16)",
     "ValueError", r"'top_values'.*dtype"),
    ("top_classes repeats a class", "st['top_classes'][4, 1] = st['top_classes'][4, 0]", "ValueError",
     r"'top_classes' repeats class"),
    ("top_classes class K", "st['top_classes'][4, 2] = 6", "ValueError", r"'top_classes'.*outside 0\.\.5"),
    ("top_classes negative", "st['top_classes'] = st['top_classes'].astype(np.int64)\nst['top_classes'][4, 2] = -1",
     "ValueError", r"'top_classes'.*outside"),
    ("top_classes float", "st['top_classes'] = st['top_classes'].astype(np.float64)", "TypeError", r"'top_classes'.*integer"),
    ("top_classes 1-D", "st['top_classes'] = st['top_classes'][:, 0]", "ValueError", r"'top_classes'.*2-D"),
    ("labels 5.0 (floats)", "st['labels'] = st['labels'].astype(np.float64)", "TypeError", r"'labels'.*integer"),
    ("labels K", "st['labels'][8] = 6", "ValueError", r"'labels'.*outside 0\.\.5"),
    ("labels negative", "st['labels'][8] = -1", "ValueError", r"'labels'.*outside"),
    ("labels changed (contradicts given)", "st['labels'][r_in] = (st['labels'][r_in] + 1) % 6", "ValueError", r"'given'.*contradicts"),
    ("labels too long", "st['labels'] = np.append(st['labels'], 0)", "ValueError", r"'labels'.*shape"),
    ("left_out_max NaN", "st['left_out_max'][2] = np.nan", "ValueError", r"'left_out_max'.*non-finite"),
    ("left_out_max 1.5", "st['left_out_max'][2] = 1.5", "ValueError", r"'left_out_max'.*outside"),
    ("left_out_max above the smallest top value", "st['left_out_max'][2] = st['top_values'][2, -1] + 1e-3",
     "ValueError", r"'left_out_max'.*exceeds"),
    ("left_out_max -inf with top_m < K", "st['left_out_max'][2] = -np.inf", "ValueError", r"'left_out_max' is -inf"),
    ("left_out_max +inf", "st['left_out_max'][2] = np.inf", "ValueError", r"'left_out_max'.*non-finite"),
    ("refined_rows NaN", "st['refined_rows'][1, 2] = np.nan", "ValueError", r"'refined_rows'.*non-finite"),
    ("refined_rows another example's row", "st['refined_rows'][0] = p[100]", "ValueError", r"'refined_rows'.*contradicts the sketch"),
    ("refined_rows scaled (sums to 2)", "st['refined_rows'][0] *= 2", "ValueError", r"'refined_rows'.*(sums to|contradicts|outside)"),
    ("refined_rows negative entry", "st['refined_rows'][0, np.argmin(st['refined_rows'][0])] = -0.5", "ValueError", r"'refined_rows'"),
    ("refined_rows wrong width", "st['refined_rows'] = st['refined_rows'][:, :5]", "ValueError", r"'refined_rows'.*shape"),
    ("refined_rows one row too few", "st['refined_rows'] = st['refined_rows'][:4]", "ValueError", r"'refined_rows'.*shape"),
    ("refined_rows a list of strings", "st['refined_rows'] = [['a'] * 6] * 5", "TypeError", r"'refined_rows'"),
    ("refined_ids not among the ids", "st['refined_ids'][0] = 12", "ValueError", r"'refined_ids'.*not among its ids"),
    ("refined_ids repeated", "st['refined_ids'][1] = st['refined_ids'][0]", "ValueError", r"'refined_ids' repeats"),
    ("refined_ids 2-D", "st['refined_ids'] = st['refined_ids'][:, None]", "ValueError", r"'refined_ids'.*1-D"),
    ("refined_ids float", "st['refined_ids'] = st['refined_ids'].astype(float)", "TypeError", r"'refined_ids'.*integer"),
    ("ids 2-D", "st['ids'] = st['ids'].reshape(150, 2)", "ValueError", r"'ids'.*1-D"),
    ("ids repeated", "st['ids'][5] = st['ids'][4]", "ValueError", r"'ids' repeats example id"),
    ("ids float", "st['ids'] = st['ids'].astype(np.float64)", "TypeError", r"'ids'.*integer"),
    ("ids uint64 beyond int64", "st['ids'] = st['ids'].astype(np.uint64)\nst['ids'][0] = 2**63 + 5", "ValueError",
     r"'ids'.*does not fit in int64"),
    ("ids bool", "st['ids'] = np.ones(300, bool)", "TypeError", r"'ids'"),
    ("format_version 'x'", "st['format_version'] = 'x'", "TypeError", r"'format_version'.*integer"),
    ("format_version 3", "st['format_version'] = 3", "ValueError", r"format_version 3"),
    ("format_version 0", "st['format_version'] = 0", "ValueError", r"format_version 0"),
    ("format_version 1.0", "st['format_version'] = 1.0", "TypeError", r"'format_version'.*integer"),
    ("format_version True", "st['format_version'] = True", "TypeError", r"'format_version'.*integer"),
    ("format_version None", "st['format_version'] = None", "TypeError", r"'format_version'"),
    ("format_version array [1]", "st['format_version'] = np.array([1])", "TypeError", r"'format_version'"),
    ("no format_version", "del st['format_version']", "ValueError", r"no 'format_version'"),
    ("no left_out_max", "del st['left_out_max']", "ValueError", r"no 'left_out_max'"),
    ("no refined_rows", "del st['refined_rows']", "ValueError", r"no 'refined_rows'"),
    ("an unknown field", "st['evil'] = np.zeros(3)", "ValueError", r"unknown field.*'evil'"),
    ("dtype_bits 8", "st['dtype_bits'] = 8", "ValueError", r"dtype_bits=8"),
    ("dtype_bits 32 on float64 arrays", "st['dtype_bits'] = 32", "ValueError", r"'given'.*dtype float64, expected float32"),
    ("dtype_bits 0 with examples", "st['dtype_bits'] = 0", "ValueError", r"dtype_bits=0"),
    ("dtype_bits '64'", "st['dtype_bits'] = '64'", "TypeError", r"'dtype_bits'"),
    ("top_m 0", "st['top_m'] = 0", "ValueError", r"'top_m'.*>= 1"),
    ("top_m 4 (arrays of width 3)", "st['top_m'] = 4", "ValueError", r"'top_values'.*shape|'top_classes'.*shape"),
    ("top_m 2.5", "st['top_m'] = 2.5", "TypeError", r"'top_m'"),
    ("num_classes 1", "st['num_classes'] = 1", "ValueError", r"'num_classes'.*>= 2"),
    ("num_classes 'six'", "st['num_classes'] = 'six'", "TypeError", r"'num_classes'"),
    ("num_classes 7 (shapes for 6)", "st['num_classes'] = 7", "ValueError", r"'refined_rows'.*shape"),
    ("num_classes 10**30", "st['num_classes'] = 10**30", "ValueError", r"'num_classes'"),
]
CASES = []
for name, code, types, match in _TAMPER:
    CASES.append(error(f"checkpoint from_state_dict: {name}", _S + code + _LOAD, types, match))
# the same through load_state_dict into an existing accumulator, for a sample
for name, code, types, match in _TAMPER[::4]:
    if "num_classes" in name or "top_m" in name:
        continue
    CASES.append(error(f"checkpoint load_state_dict: {name}", _S + code + _LOAD_INTO, types, match))
CASES += [
    error("checkpoint from_state_dict(None)", _S + "A.from_state_dict(None)", "TypeError", r"state must be a mapping"),
    error("checkpoint load_state_dict(None)", _S + "A(6).load_state_dict(None)", "TypeError", r"state must be a mapping"),
    error("checkpoint from_state_dict(a list)", _S + "A.from_state_dict(list(st.items()))", "TypeError", r"mapping"),
    error("checkpoint from_state_dict(a path)", _S + "np.savez('c.npz', **st)\nA.from_state_dict('c.npz')", "TypeError",
          r"mapping"),
    error("checkpoint from_state_dict(an accumulator)", _S + "A.from_state_dict(acc)", "TypeError", r"mapping"),
    error("checkpoint load into another num_classes", _S + "A(7, top_m=3, sketch='top_m').load_state_dict(st)", "ValueError",
          r"num_classes=6.*num_classes=7"),
    error("checkpoint load into another top_m", _S + "A(6, top_m=4, sketch='top_m').load_state_dict(st)", "ValueError", r"top_m=3.*top_m=4"),
    error("checkpoint empty state with refined ids", _S + "e = A(6, top_m=3, sketch='top_m').state_dict()\ne['refined_ids'] = np.array([1])\n"
          "e['refined_rows'] = np.full((1, 6), 1 / 6)\nA.from_state_dict(e)", "ValueError", r"'refined_ids'"),
    error("checkpoint empty state with dtype_bits 32", _S + "e = A(6, top_m=3, sketch='top_m').state_dict()\ne['dtype_bits'] = 32\n"
          "A.from_state_dict(e)", "ValueError", r"dtype_bits=32"),
    error("checkpoint top_m >= K with a finite left_out_max", _S +
          "f = A(6, top_m=8, sketch='top_m').update(ids, y, p).state_dict()\nf['left_out_max'] = f['left_out_max'].copy()\n"
          "f['left_out_max'][0] = 0.0\nA.from_state_dict(f)", "ValueError", r"'left_out_max' must be -inf"),
    error("checkpoint float32: given NaN", _S + "f = A(6, top_m=3, sketch='top_m').update(ids, y, p.astype(np.float32)).state_dict()\n"
          "f['given'] = f['given'].copy()\nf['given'][0] = np.nan\nA.from_state_dict(f)", "ValueError", r"'given'.*non-finite"),
    error("checkpoint float16: top values unsorted", _S + "f = A(6, top_m=3, sketch='top_m').update(ids, y, p.astype(np.float16)).state_dict()\n"
          "f['top_values'] = f['top_values'][:, ::-1].copy()\nA.from_state_dict(f)", "ValueError", r"descending"),
    error("checkpoint npz tampered on disk", _S + "st['given'][0] = 5.0\nnp.savez('c.npz', **st)\n"
          "A.from_state_dict(np.load('c.npz'))", "ValueError", r"'given'"),
    handled("checkpoint a refused load leaves the accumulator as it was", _S +
            "ref = acc.result()\nbad = dict(st)\nbad['given'] = st['given'].copy()\nbad['given'][0] = np.nan\n"
            "try:\n    acc.load_state_dict(bad)\nexcept ValueError:\n    pass\nres = acc.result()",
            "len(acc) == 300 and np.array_equal(res.label_issues, ref.label_issues)"),
    handled("checkpoint round trip through a dict", _S + "b = A.from_state_dict(st)",
            "np.array_equal(b.result().label_issues, acc.result().label_issues) and len(b) == 300"),
    handled("checkpoint round trip through np.savez", _S + "np.savez('c.npz', **st)\nb = A.from_state_dict(np.load('c.npz'))",
            "np.array_equal(b.result().confident_joint, acc.result().confident_joint)"),
    handled("checkpoint python ints for the scalars", _S + "st = {k: (int(v) if np.ndim(v) == 0 else v) for k, v in st.items()}\n"
            "b = A.from_state_dict(st)", "len(b) == 300"),
    handled("checkpoint big-endian arrays are accepted", _S +
            "st = {k: (v.astype(v.dtype.newbyteorder('>')) if isinstance(v, np.ndarray) and v.dtype.itemsize > 1 else v)"
            " for k, v in st.items()}\nb = A.from_state_dict(st)",
            "np.array_equal(b.result().label_issues, acc.result().label_issues)"),
    handled("checkpoint rows in another order are accepted", _S + "o = np.random.default_rng(3).permutation(300)\n"
            "for k in ('ids', 'labels', 'given', 'top_classes', 'top_values', 'left_out_max'):\n    st[k] = st[k][o]\n"
            "b = A.from_state_dict(st)", "np.array_equal(b.result().label_issues, acc.result().label_issues)"),
    handled("checkpoint negative ids round trip", "from labelsift.stream import ConfidentJointAccumulator as A\n"
            "y, p = good(100, 4)\nacc = A(4, top_m=2, sketch='top_m').update(-np.arange(100) - 5, y, p)\nb = A.from_state_dict(acc.state_dict())",
            "len(b) == 100 and np.array_equal(b.result().label_issues, acc.result().label_issues)"),
    handled("checkpoint float16 and float32 round trips", "from labelsift.stream import ConfidentJointAccumulator as A\n"
            "y, p = good(400, 7, 2)\nok = []\nfor dt in (np.float16, np.float32):\n"
            "    a = A(7, top_m=2, sketch='top_m').update(np.arange(400), y, p.astype(dt))\n    b = A.from_state_dict(a.state_dict())\n"
            "    ok.append(b.dtype == dt and np.array_equal(a.result().label_issues, b.result().label_issues))",
            "all(ok) and len(ok) == 2"),
    handled("checkpoint of an empty accumulator", "from labelsift.stream import ConfidentJointAccumulator as A\n"
            "b = A.from_state_dict(A(5).state_dict())", "len(b) == 0 and b.dtype is None"),
    handled("checkpoint top_m >= K round trip", _S + "f = A(6, top_m=8, sketch='top_m').update(ids, y, p)\nb = A.from_state_dict(f.state_dict())",
            "np.array_equal(b.result().label_issues, f.result().label_issues)"),
    handled("checkpoint pickled accumulator keeps working (lock recreated)", _S +
            "import pickle\nb = pickle.loads(pickle.dumps(acc))\ny2, p2 = good(50, 6, 9)\nb.update(np.arange(50) * 7 + 12, y2, p2)",
            "len(b) == 350 and len(acc) == 300"),
    handled("checkpoint deepcopy of an accumulator", _S + "import copy\nb = copy.deepcopy(acc)\nb.update([5], y[:1], p[:1])",
            "len(b) == 301 and len(acc) == 300 and b._lock is not acc._lock"),
]

# ---------------------------------------------------------------------------
# threads
# ---------------------------------------------------------------------------
_T = ("import threading\nfrom labelsift.stream import ConfidentJointAccumulator as A\n"
      "y, p = good(40000, 10, 4)\nids = np.arange(40000)\nerrs = []\n"
      "def run(n, f):\n"
      "    def wrap(i):\n        try:\n            f(i)\n        except Exception as e:\n            errs.append(e)\n"
      "    ts = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]\n"
      "    [t.start() for t in ts]\n    [t.join() for t in ts]\n")
CASES += [
    handled("threads: the same 40,000 ids from 4 threads are caught as duplicates", _T +
            "acc = A(10)\nrun(4, lambda i: acc.update(ids, y, p))",
            "len(acc) == 40000 and len(errs) == 3 and all('already added' in str(e) for e in errs)"
            " and len(A.from_state_dict(acc.state_dict())) == 40000", timeout=60),
    handled("threads: 8 threads, overlapping halves", _T +
            "acc = A(10)\nrun(8, lambda i: acc.update(ids[i * 5000: i * 5000 + 10000], y[i * 5000: i * 5000 + 10000],"
            " p[i * 5000: i * 5000 + 10000]))\nst = acc.state_dict()",
            "len(np.unique(st['ids'])) == len(st['ids']) == len(acc) and len(errs) >= 3 and len(acc) <= 40000"
            " and all('already added' in str(e) for e in errs)", timeout=60),
    handled("threads: disjoint ids from 4 threads equal one sequential accumulator", _T +
            "acc = A(10)\nrun(4, lambda i: acc.update(ids[i::4], y[i::4], p[i::4]))\nref = A(10).update(ids, y, p)",
            "not errs and len(acc) == 40000 and np.array_equal(acc.result().label_issues, ref.result().label_issues)",
            timeout=60),
    handled("threads: 4 accumulators with the same ids merged concurrently into one", _T +
            "parts = [A(10).update(ids[:10000], y[:10000], p[:10000]) for _ in range(4)]\ntot = A(10)\n"
            "run(4, lambda i: tot.merge(parts[i]))",
            "len(tot) == 10000 and len(errs) == 3 and all('in both' in str(e) for e in errs)", timeout=60),
    handled("threads: a.merge(b) and b.merge(a) at once do not deadlock", _T +
            "a = A(10).update(ids[:20000], y[:20000], p[:20000])\nb = A(10).update(ids[20000:], y[20000:], p[20000:])\n"
            "run(2, lambda i: (a.merge(b) if i == 0 else b.merge(a)))",
            "len(errs) <= 1 and max(len(a), len(b)) == 40000", timeout=30),
    handled("threads: state_dict while 4 threads update gives loadable snapshots", _T +
            "acc = A(10)\nsnaps = []\n"
            "run(5, lambda i: [acc.update(ids[i * 10000 + j: i * 10000 + j + 1000], y[i * 10000 + j: i * 10000 + j + 1000],"
            " p[i * 10000 + j: i * 10000 + j + 1000]) for j in range(0, 10000, 1000)] if i < 4 else "
            "[snaps.append(acc.state_dict()) for _ in range(20)])\n"
            "sizes = [len(A.from_state_dict(s)) for s in snaps]",
            "not errs and len(acc) == 40000 and sizes == sorted(sizes) and all(s % 1000 == 0 for s in sizes)", timeout=90),
    handled("threads: result() while updating never fails", _T +
            "acc = A(10).update(ids[:1000], y[:1000], p[:1000])\nres = []\n"
            "run(3, lambda i: [acc.update(ids[1000 + i * 13000 + j: 1000 + i * 13000 + j + 1000],"
            " y[1000 + i * 13000 + j: 1000 + i * 13000 + j + 1000], p[1000 + i * 13000 + j: 1000 + i * 13000 + j + 1000])"
            " for j in range(0, 13000, 1000)] if i < 2 else [res.append(len(acc.result().label_issues)) for _ in range(10)])",
            "not errs and len(res) == 10 and all(r >= 1000 for r in res) and len(acc) == 27000", timeout=90),
    handled("threads: the same rows refined from 4 threads once", _T +
            "acc = A(10, top_m=2).update(ids, y, p)\nrun(4, lambda i: acc.refine(ids[:500], p[:500]))",
            "len(errs) == 3 and all('already refined' in str(e) for e in errs) and len(acc.state_dict()['refined_ids']) == 500",
            timeout=60),
    handled("threads: first batches of two dtypes at once: one dtype wins", _T +
            "acc = A(10)\nrun(2, lambda i: acc.update(ids[i::2], y[i::2], p[i::2].astype(np.float32 if i else np.float64)))",
            "len(errs) == 1 and 'dtype' in str(errs[0]) and len(acc) == 20000", timeout=60),
    handled("threads: pickling while updating", _T +
            "import pickle\nacc = A(10)\nblobs = []\n"
            "run(3, lambda i: [acc.update(ids[i * 10000 + j: i * 10000 + j + 2000], y[i * 10000 + j: i * 10000 + j + 2000],"
            " p[i * 10000 + j: i * 10000 + j + 2000]) for j in range(0, 10000, 2000)] if i < 2 else "
            "[blobs.append(pickle.dumps(acc)) for _ in range(10)])\nn = [len(pickle.loads(b)) for b in blobs]",
            "not errs and len(acc) == 20000 and all(k % 2000 == 0 for k in n)", timeout=90),
]
