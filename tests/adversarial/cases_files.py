"""Files: unreadable .npy files as pred_probs, as a shard and as labels (API
and CLI), and memory-mapped files that change under the reader."""
from adversarial.harness import cli_error, error, handled

_RAW = '''
def raw_npy(name, header, data=b""):
    h = header.encode("latin1")
    h += b" " * (63 - (10 + len(h)) % 64) + b"\\n"
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(b"\\x93NUMPY\\x01\\x00" + len(h).to_bytes(2, "little") + h + data)
    return path
'''

# name -> code that makes `bad` (a path) for a pred_probs-shaped input
_BAD_FILES = {
    "an empty file": "bad = os.path.join(tmp, 'bad.npy'); open(bad, 'wb').close()",
    "a header syntax error": "bad = raw_npy('bad.npy', \"{'descr': '<f8', 'fortran_order': False, 'shape': (300, 5), \")",
    "a header shape (300, -5)": "bad = raw_npy('bad.npy', \"{'descr': '<f8', 'fortran_order': False, 'shape': (300, -5), }\")",
    "a header shape too large": "bad = raw_npy('bad.npy', \"{'descr': '<f8', 'fortran_order': False, 'shape': (2**62, 2**62), }\")",
    "a header that is not a dict": "bad = raw_npy('bad.npy', '[1, 2, 3]')",
    "a header missing its shape": "bad = raw_npy('bad.npy', \"{'descr': '<f8', 'fortran_order': False, }\")",
    "a header with a bad dtype": "bad = raw_npy('bad.npy', \"{'descr': 'zz9', 'fortran_order': False, 'shape': (3, 5), }\")",
    "a directory": "bad = os.path.join(tmp, 'bad.npy'); os.mkdir(bad)",
    "a text file": "bad = os.path.join(tmp, 'bad.npy'); open(bad, 'w').write('0.5,0.5\\n' * 10)",
    "an .npz archive": "bad = os.path.join(tmp, 'bad.npz'); np.savez(bad, p=p)",
    "a pickled object array": "bad = os.path.join(tmp, 'bad.npy'); np.save(bad, np.array([{'a': 1}] * 3, dtype=object), allow_pickle=True)",
    "truncated data": "bad = save('bad.npy', p); os.truncate(bad, os.path.getsize(bad) - 100)",
    "only a magic string": "bad = os.path.join(tmp, 'bad.npy'); open(bad, 'wb').write(b'\\x93NUMPY')",
    "a wrong version": "bad = os.path.join(tmp, 'bad.npy'); open(bad, 'wb').write(b'\\x93NUMPY\\x09\\x00' + b'x' * 200)",
}
_WHERE = {
    "as pred_probs": ("labelsift.find_label_issues(y, bad)", r"pred_probs: .*bad\.np[yz]"),
    "as a shard": ("labelsift.find_label_issues(y[:len(y)], [save('ok.npy', p[:100]), bad])",
                   r"pred_probs shard 1: .*bad\.np[yz]"),
    "as labels": ("labelsift.find_label_issues(bad, p)", r"labels: .*bad\.np[yz]"),
    "scores, as pred_probs": ("labelsift.get_label_quality_scores(y, bad)", r"pred_probs: .*bad\.np[yz]"),
}

CASES = []
for fname, make in _BAD_FILES.items():
    for where, (call, pat) in _WHERE.items():
        CASES.append(error(f"{fname} {where}", f"{_RAW}\ny, p = good()\n{make}\n{call}", "ValueError", pat))
    for opt in ("--pred-probs", "--labels"):
        other = "--labels" if opt == "--pred-probs" else "--pred-probs"
        CASES.append(cli_error(
            f"cli find-issues: {fname} {opt}", f"'find-issues', {opt!r}, bad, {other!r}, OTHER",
            r"labelsift: error: .*bad\.np[yz]",
            setup=f"{_RAW}\ny, p = good()\n{make}\nOTHER = save('y.npy', y) if {other!r} == '--labels' else save('p.npy', p)"))

CASES += [
    error("a missing file as pred_probs", "y, p = good()\nlabelsift.find_label_issues(y, 'nope.npy')",
          "FileNotFoundError", r"pred_probs: no such file: nope\.npy"),
    error("a missing shard", "y, p = good()\nlabelsift.find_label_issues(y, [save('a.npy', p[:100]), 'nope.npy'])",
          "FileNotFoundError", r"pred_probs shard 1: no such file"),
    error("a header declaring integers", f"{_RAW}\ny, p = good()\n"
          "bad = raw_npy('bad.npy', \"{'descr': '<i8', 'fortran_order': False, 'shape': (200, 5), }\", b'\\0' * 8000)\n"
          "labelsift.find_label_issues(y, bad)", "TypeError", r"pred_probs.*floating"),
    error("a structured dtype file", "y, p = good()\n"
          "bad = save('bad.npy', np.zeros(200, dtype=[('a', 'f8'), ('b', 'f8')]))\n"
          "labelsift.find_label_issues(y, bad)", "TypeError|ValueError", r"pred_probs"),
    error("a file of 0 rows", "y, p = good()\nbad = save('bad.npy', p[:0])\nlabelsift.find_label_issues(y[:0], bad)",
          "ValueError", r"pred_probs is empty"),
    error("a 1-D file", "y, p = good()\nbad = save('bad.npy', p[:, 0])\nlabelsift.find_label_issues(y, bad)",
          "ValueError", r"pred_probs must be 2-D"),
    error("shards of different K", "y, p = good()\n"
          "labelsift.find_label_issues(y, [save('a.npy', p[:100]), save('b.npy', good(100, 4)[1])])",
          "ValueError", r"shard 1 has 4 columns"),
    error("shards of different dtypes", "y, p = good()\n"
          "labelsift.find_label_issues(y, [save('a.npy', p[:100]), save('b.npy', p[100:].astype(np.float32))])",
          "TypeError", r"shard 1 has dtype float32"),
    error("a shard list with an int", "y, p = good()\nlabelsift.find_label_issues(y, [save('a.npy', p), 3])",
          "TypeError", r"pred_probs shard 1 must be a \.npy path or a 2-D array"),
    error("a shard list with a 1-D array", "y, p = good()\n"
          "labelsift.find_label_issues(y, [save('a.npy', p[:100]), p[100:, 0]])",
          "TypeError", r"pred_probs shard 1 must be a \.npy path or a 2-D array"),
    error("shards shorter than labels", "y, p = good()\n"
          "labelsift.find_label_issues(y, [save('a.npy', p[:100]), save('b.npy', p[100:150])])",
          "ValueError", r"labels has 200 entries but pred_probs has 150"),
    error("a NaN in shard 2 is named by its global row", "y, p = good()\nq = p.copy(); q[170, 2] = np.nan\n"
          "labelsift.find_label_issues(y, [save('a.npy', q[:100]), save('b.npy', q[100:150]), save('c.npy', q[150:])])",
          "ValueError", r"pred_probs\[170, 2\]"),
    error("labels file of floats", "y, p = good()\nlabelsift.find_label_issues(save('y.npy', y.astype(float)), p)",
          "TypeError", r"labels.*integer"),
]
_OK = [
    ("a Fortran-ordered file", "save('f.npy', np.asfortranarray(p))"),
    ("a big-endian file", "save('f.npy', p.astype('>f8'))"),
    ("a float32 file", "save('f.npy', p.astype(np.float32))"),
    ("a version 2.0 file", "(lambda path: (np.lib.format.write_array(open(path, 'wb'), p, version=(2, 0)), path)[1])"
                           "(os.path.join(tmp, 'f.npy'))"),
    ("a shard list mixing a path and an array", "[save('a.npy', p[:120]), p[120:]]"),
    ("a shard list of arrays", "[p[:50], p[50:]]"),
    ("a tuple of shard paths", "(save('a.npy', p[:50]), save('b.npy', p[50:]))"),
    ("a pathlib path", "__import__('pathlib').Path(save('f.npy', p))"),
    ("a bytes path", "os.fsencode(save('f.npy', p))"),
    ("a labels .npy path", None),
]
for name, arg in _OK:
    if arg is None:
        code = ("y, p = good()\nr = labelsift.find_label_issues(save('y.npy', y), p)\n"
                "ref = labelsift.find_label_issues(y, p)")
    else:
        dt = "np.float32" if "float32" in name else "np.float64"
        code = (f"y, p = good()\nr = labelsift.find_label_issues(y, {arg})\n"
                f"ref = labelsift.find_label_issues(y, p.astype({dt}))")
    CASES.append(handled(name, code, "np.array_equal(r, ref)"))

# ---- memory-mapped files that change while labelsift holds them ----
_MM = "y, p = good()\npath = save('p.npy', p)\n"
CASES += [
    error("a memmap truncated after np.load", _MM + "m = np.load(path, mmap_mode='r')\nos.truncate(path, 1000)\n"
          "labelsift.find_label_issues(y, m)", "ValueError", r"p\.npy shrank to 1000 bytes"),
    error("a memmap truncated to 0", _MM + "m = np.load(path, mmap_mode='r')\nos.truncate(path, 0)\n"
          "labelsift.get_label_quality_scores(y, m)", "ValueError", r"p\.npy shrank to 0 bytes"),
    error("a view of a truncated memmap", _MM + "m = np.load(path, mmap_mode='r')[::2]\nos.truncate(path, 500)\n"
          "labelsift.get_label_quality_scores(y[::2], m)", "ValueError", r"p\.npy shrank"),
    error("a np.memmap truncated", _MM + "m = np.memmap(path, dtype=np.float64, mode='r', offset=128, shape=p.shape)\n"
          "os.truncate(path, 2000)\nlabelsift.compute_confident_joint(y, m)", "ValueError", r"p\.npy shrank"),
    error("a shard truncated after as_probs", "y, p = good()\na, b = save('a.npy', p[:100]), save('b.npy', p[100:])\n"
          "from labelsift._common.arrays import as_probs\nprobs = as_probs([a, b])\nos.truncate(b, 300)\n"
          "labelsift.find_label_issues(y, probs)", "ValueError", r"pred_probs shard 1: .*b\.npy shrank"),
    error("a file truncated between two blocks", "rng = np.random.default_rng(0)\n"
          "p = rng.dirichlet(np.ones(10), 1_000_000); y = p.argmax(1)\npath = save('big.npy', p)\ndel p\n"
          "from labelsift._common.arrays import as_probs\nprobs = as_probs(path)\n"
          "probs.on_block = lambda n: os.truncate(path, 4096)\nlabelsift.get_label_quality_scores(y, probs)",
          "ValueError", r"big\.npy shrank to 4096 bytes", timeout=120, slow=True),
    error("a file truncated between two blocks (find_label_issues)", "rng = np.random.default_rng(1)\n"
          "p = rng.dirichlet(np.ones(10), 1_000_000); y = p.argmax(1)\npath = save('big.npy', p)\ndel p\n"
          "from labelsift._common.arrays import as_probs\nprobs = as_probs(path)\n"
          "probs.on_block = lambda n: os.truncate(path, 100_000)\nlabelsift.find_label_issues(y, probs)",
          "ValueError", r"big\.npy shrank", timeout=120, slow=True),
    handled("a memmap whose file is replaced (new inode) keeps its data", _MM +
            "m = np.load(path, mmap_mode='r')\nnp.save(os.path.join(tmp, 'q.npy'), p[:5])\n"
            "os.replace(os.path.join(tmp, 'q.npy'), path)\nr = labelsift.find_label_issues(y, m)\n"
            "ref = labelsift.find_label_issues(y, p)", "np.array_equal(r, ref)"),
    handled("a memmap whose file is deleted keeps its data", _MM +
            "m = np.load(path, mmap_mode='r')\nos.remove(path)\nr = labelsift.find_label_issues(y, m)\n"
            "ref = labelsift.find_label_issues(y, p)", "np.array_equal(r, ref)"),
    handled("a memmap whose file grows", _MM +
            "m = np.load(path, mmap_mode='r')\nopen(path, 'ab').write(b'x' * 10000)\n"
            "r = labelsift.find_label_issues(y, m)\nref = labelsift.find_label_issues(y, p)", "np.array_equal(r, ref)"),
    error("a file truncated before the call (path)", _MM + "os.truncate(path, 1000)\nlabelsift.find_label_issues(y, path)",
          "ValueError", r"p\.npy is truncated"),
]
