"""The CLI's outputs and inputs: outputs that are inputs, missing/read-only folders, full disks,
modes, symbolic links, stale temporary files, all-or-none outputs, damaged input files."""
from adversarial.harness import cli_error, error, handled

_S = ("y, p = good(300, 5)\nL = save('y.npy', y)\nP = save('p.npy', p)\n"
      "from adversarial.clihelp import cli_as_user, temps, dead_pid, devnode\n")
# the null and full devices (private device nodes when we are root: see clihelp.devnode)
_SD = _S + "os.mkdir('dev')\nFULL = devnode('dev', 'full')\nNULL = devnode('dev', 'null')\n"
# labels that would fail validation: an output error reported instead proves outputs are checked first
_BADLAB = _S + "save('bad.npy', np.full(300, 99))\n"
_CMDS = {"scores": "'scores', '--labels', L, '--pred-probs', P",
         "find-issues": "'find-issues', '--labels', L, '--pred-probs', P",
         "noise-matrix": "'noise-matrix', '--labels', L, '--pred-probs', P"}
_OUT = {"scores": "s.csv", "find-issues": "f.csv", "noise-matrix": "n.json"}

CASES = []

# ---------------------------------------------------------------------------
# an output that is an input: refused, the input untouched
# ---------------------------------------------------------------------------
_KEEP = "\ntry:\n    cli({args})\nfinally:\n    assert np.array_equal(np.load(P), p) and np.array_equal(np.load(L), y)"
for cmd, a in _CMDS.items():
    for what, target in [("pred-probs", "P"), ("labels", "L")]:
        CASES.append(error(f"cli {cmd} --out = the {what} file", _S + _KEEP.format(args=f"{a}, '--out', {target}"),
                           "CLIError", r"^exit 2: labelsift: error: --out \S+ is the input --(pred-probs|labels)"))
CASES += [
    error("cli --out = the pred-probs via a relative './' path", _S + _KEEP.format(
        args="'scores', '--labels', L, '--pred-probs', P, '--out', './p.npy'"), "CLIError", r"^exit 2: .*is the input"),
    error("cli --out = the pred-probs via '..' path", _S + "os.mkdir('sub')\n" + _KEEP.format(
        args="'scores', '--labels', L, '--pred-probs', P, '--out', 'sub/../p.npy'"), "CLIError", r"^exit 2: .*is the input"),
    error("cli --out = a hard link to the pred-probs", _S + "os.link(P, 'hard.csv')\n" + _KEEP.format(
        args="'scores', '--labels', L, '--pred-probs', P, '--out', 'hard.csv'"), "CLIError",
        r"^exit 2: .*hard\.csv is the input --pred-probs"),
    error("cli --out = a symlink to the labels", _S + "os.symlink(L, 'ln.csv')\n" + _KEEP.format(
        args="'scores', '--labels', L, '--pred-probs', P, '--out', 'ln.csv'"), "CLIError",
        r"^exit 2: .*ln\.csv is the input --labels"),
    error("cli --out = the second pred-probs shard", _S + "Q = save('q.npy', p[:100])\nR = save('r.npy', p[100:])\n"
          "try:\n    cli('scores', '--labels', L, '--pred-probs', Q, R, '--out', R)\n"
          "finally:\n    assert np.array_equal(np.load(R), p[100:])", "CLIError", r"^exit 2: .*r\.npy is the input --pred-probs"),
    error("cli --out = the class-names file", _S + "open('names.txt', 'w').write('a\\nb\\nc\\nd\\ne\\n')\n"
          "try:\n    cli('scores', '--labels', L, '--pred-probs', P, '--class-names', 'names.txt', '--out', 'names.txt')\n"
          "finally:\n    assert open('names.txt').read() == 'a\\nb\\nc\\nd\\ne\\n'", "CLIError",
          r"^exit 2: .*names\.txt is the input --class-names"),
    error("cli --out = the labels .csv", _S + "np.savetxt('y.csv', y, fmt='%d')\nt = open('y.csv').read()\n"
          "try:\n    cli('find-issues', '--labels', 'y.csv', '--pred-probs', P, '--out', 'y.csv')\n"
          "finally:\n    assert open('y.csv').read() == t", "CLIError", r"^exit 2: .*y\.csv is the input --labels"),
    error("cli noise-matrix --plot = the pred-probs", _S + _KEEP.format(
        args="'noise-matrix', '--labels', L, '--pred-probs', P, '--plot', P"), "CLIError",
        r"^exit 2: .*--plot \S+ is the input --pred-probs"),
    cli_error("cli noise-matrix --out and --plot the same file",
              "'noise-matrix', '--labels', L, '--pred-probs', P, '--out', 'x.out', '--plot', 'x.out'",
              r"--out and --plot are the same file", setup=_S),
    cli_error("cli noise-matrix --out and --plot: a link and its target",
              "'noise-matrix', '--labels', L, '--pred-probs', P, '--out', 'x.json', '--plot', 'lnk.png'",
              r"--out and --plot are the same file", setup=_S + "os.symlink('x.json', 'lnk.png')"),
    handled("cli --out = a *copy* of an input is fine (not the same file)", _S +
            "import shutil\nshutil.copy(P, 'copy.npy')\nr = cli('scores', '--labels', L, '--pred-probs', P, '--out', 'copy.npy')",
            "open('copy.npy').readline().startswith('index,')"),
]

# ---------------------------------------------------------------------------
# missing, read-only or wrong folders: fail before reading any input, naming the target
# ---------------------------------------------------------------------------
for cmd, a in _CMDS.items():
    bad = a.replace("'--labels', L", "'--labels', 'bad.npy'")
    CASES.append(cli_error(f"cli {cmd} --out into a missing folder (checked before the inputs)",
                           f"{bad}, '--out', 'nope/x.out'", r"--out: cannot write nope/x\.out: the folder \S*nope does not exist",
                           setup=_BADLAB))
    CASES.append(error(f"cli {cmd} --out into a read-only folder (checked before the inputs)",
                       _BADLAB + f"os.mkdir('ro')\nos.chmod('ro', 0o555)\nos.chmod('bad.npy', 0o644)\n"
                       f"try:\n    cli_as_user(tmp, {bad}, '--out', 'ro/x.out')\nfinally:\n    assert os.listdir('ro') == []",
                       "CLIError", r"^exit 2: labelsift: error: --out: cannot write ro/x\.out: Permission denied$"))
CASES += [
    cli_error("cli --plot into a missing folder (before the inputs)",
              "'noise-matrix', '--labels', 'bad.npy', '--pred-probs', P, '--plot', 'nope/x.png'",
              r"--plot: cannot write nope/x\.png: the folder", setup=_BADLAB),
    error("cli --plot into a read-only folder", _BADLAB + "os.mkdir('ro')\nos.chmod('ro', 0o555)\n"
          "cli_as_user(tmp, 'noise-matrix', '--labels', L, '--pred-probs', P, '--plot', 'ro/x.png')",
          "CLIError", r"^exit 2: labelsift: error: --plot: cannot write ro/x\.png: Permission denied$"),
    error("cli --out into a read-only folder, --plot fine: neither written", _S + "os.mkdir('ro')\nos.chmod('ro', 0o555)\n"
          "try:\n    cli_as_user(tmp, 'noise-matrix', '--labels', L, '--pred-probs', P, '--plot', 'a.png', '--out', 'ro/x.json')\n"
          "finally:\n    assert not os.path.exists('a.png') and temps(tmp) == []",
          "CLIError", r"^exit 2: .*--out: cannot write ro/x\.json"),
    cli_error("cli --out under a regular file (ENOTDIR)", "'scores', '--labels', L, '--pred-probs', P, '--out', 'y.npy/x.csv'",
              r"--out: cannot write y\.npy/x\.csv: Not a directory", setup=_S),
    cli_error("cli --out is a directory", "'scores', '--labels', L, '--pred-probs', P, '--out', 'adir'",
              r"--out: cannot write adir: it is a directory", setup=_S + "os.mkdir('adir')"),
    cli_error("cli --out is a symlink to a directory", "'scores', '--labels', L, '--pred-probs', P, '--out', 'ldir'",
              r"--out: cannot write ldir \(-> \S+adir\): it is a directory",
              setup=_S + "os.mkdir('adir')\nos.symlink('adir', 'ldir')"),
    cli_error("cli --out is a symlink loop", "'scores', '--labels', L, '--pred-probs', P, '--out', 'loop1'",
              r"--out: cannot write loop1.*symbolic links", setup=_S + "os.symlink('loop2', 'loop1')\nos.symlink('loop1', 'loop2')"),
    cli_error("cli --out is a dangling link into a missing folder", "'scores', '--labels', L, '--pred-probs', P, '--out', 'dl'",
              r"--out: cannot write dl \(-> \S+/gone/x\.csv\): the folder \S+gone does not exist",
              setup=_S + "os.symlink('gone/x.csv', 'dl')"),
    cli_error("cli --out ''", "'scores', '--labels', L, '--pred-probs', P, '--out', ''", r"--out: the output path is empty",
              setup=_S),
    cli_error("cli --out in a folder we cannot search (permissions enforced)", "", r"--out: cannot write locked/x\.csv: Permission denied",
              setup=_S + "os.mkdir('locked')\nos.chmod('locked', 0o600)\n"
              "cli_as_user(tmp, 'scores', '--labels', L, '--pred-probs', P, '--out', 'locked/x.csv')"),
    cli_error("cli --out over an existing file in a read-only folder (permissions enforced)", "",
              r"--out: cannot write ro/s\.csv: Permission denied",
              setup=_S + "os.mkdir('ro')\nopen('ro/s.csv', 'w').write('old')\nos.chmod('ro/s.csv', 0o666)\n"
              "os.chmod('ro', 0o555)\ntry:\n"
              "    cli_as_user(tmp, 'scores', '--labels', L, '--pred-probs', P, '--out', 'ro/s.csv')\n"
              "finally:\n    assert open('ro/s.csv').read() == 'old'"),
]

# ---------------------------------------------------------------------------
# full disks and file-size limits: the path named, nothing partial left
# ---------------------------------------------------------------------------
_FSIZE = ("import resource\ndef lim():\n    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
          "    resource.setrlimit(resource.RLIMIT_FSIZE, ({lim}, {lim}))\n"
          "r = subprocess.run([sys.executable, '-m', 'labelsift', {args}], preexec_fn=lim, capture_output=True,"
          " text=True, cwd=tmp)\n")
CASES += [
    cli_error("cli scores --out /dev/full (ENOSPC) names the path", "'scores', '--labels', L, '--pred-probs', P, '--out', FULL",
              r"--out: cannot write \S*dev[/-]full: No space left on device", setup=_SD),
    cli_error("cli find-issues --out /dev/full", "'find-issues', '--labels', L, '--pred-probs', P, '--out', FULL",
              r"--out: cannot write \S*dev[/-]full: No space left on device", setup=_SD),
    cli_error("cli noise-matrix --plot /dev/full", "'noise-matrix', '--labels', L, '--pred-probs', P, '--plot', FULL",
              r"--plot: cannot write \S*dev[/-]full: No space left on device", setup=_SD),
    error("cli noise-matrix --out ok, --plot /dev/full: the old --out is kept", _SD + "open('n.json', 'w').write('old')\n"
          "try:\n    cli('noise-matrix', '--labels', L, '--pred-probs', P, '--out', 'n.json', '--plot', FULL)\n"
          "finally:\n    assert open('n.json').read() == 'old' and temps(tmp) == []",
          "CLIError", r"^exit 2: .*--plot: cannot write \S*dev[/-]full: No space left on device"),
    cli_error("cli scores, stdout on a full disk names stdout", "", r"cannot write to stdout: No space left on device",
              setup=_SD + "r = subprocess.run([sys.executable, '-m', 'labelsift', 'scores', '--labels', L, '--pred-probs', P],"
              " stdout=open(FULL, 'w'), stderr=subprocess.PIPE, text=True)\n"
              "assert 'Traceback' not in r.stderr\nraise CLIError(f'exit {r.returncode}: {r.stderr.strip()}')"),
    cli_error("cli find-issues CSV to stdout on a full disk", "", r"cannot write to stdout: No space left on device",
              setup=_SD + "r = subprocess.run([sys.executable, '-m', 'labelsift', 'find-issues', '--labels', L, '--pred-probs', P],"
              " stdout=open(FULL, 'w'), stderr=subprocess.PIPE, text=True)\n"
              "assert 'Traceback' not in r.stderr\nraise CLIError(f'exit {r.returncode}: {r.stderr.strip()}')"),
    handled("cli scores --out over the file-size limit (EFBIG): path named, no output, no temp",
            _S + _FSIZE.format(lim=4000, args="'scores', '--labels', L, '--pred-probs', P, '--out', 's.csv'"),
            "r.returncode == 2 and r.stderr == 'labelsift: error: --out: cannot write s.csv: File too large\\n' "
            "and not os.path.exists('s.csv') and temps(tmp) == []"),
    handled("cli EFBIG on the PNG only: the JSON is not written either",
            _S + _FSIZE.format(lim=30000, args="'noise-matrix', '--labels', L, '--pred-probs', P, '--out', 'n.json',"
                                              " '--plot', 'n.png'"),
            "r.returncode == 2 and '--plot: cannot write n.png: File too large' in r.stderr "
            "and len(r.stderr.splitlines()) == 1 and not os.path.exists('n.json') and not os.path.exists('n.png')"
            " and temps(tmp) == []"),
    handled("cli EFBIG over an existing output keeps the old content",
            _S + "open('s.csv', 'w').write('old')\n" +
            _FSIZE.format(lim=4000, args="'scores', '--labels', L, '--pred-probs', P, '--out', 's.csv'"),
            "r.returncode == 2 and open('s.csv').read() == 'old' and temps(tmp) == []"),
    handled("cli --out /dev/null works and /dev/null stays a device", _SD +
            "import stat\nr = cli('scores', '--labels', L, '--pred-probs', P, '--out', NULL)",
            "r.returncode == 0 and stat.S_ISCHR(os.stat(NULL).st_mode)"),
    handled("cli --out a FIFO with a reader: written in place", _S +
            "import threading\nos.mkfifo('fifo')\ngot = []\n"
            "t = threading.Thread(target=lambda: got.append(open('fifo').read()))\nt.start()\n"
            "r = cli('scores', '--labels', L, '--pred-probs', P, '--out', 'fifo')\nt.join(30)",
            "r.returncode == 0 and got and got[0].startswith('index,self_confidence') and len(got[0].splitlines()) == 301"),
]

# ---------------------------------------------------------------------------
# modes and symbolic links
# ---------------------------------------------------------------------------
_MODE = _S + "import stat\nmode = lambda f: stat.S_IMODE(os.stat(f).st_mode)\n"
for cmd, a in _CMDS.items():
    for m in ("0o640", "0o600", "0o604", "0o444", "0o755"):
        CASES.append(handled(f"cli {cmd} keeps an existing output's mode {m}",
                             _MODE + f"open('o.out', 'w').write('old')\nos.chmod('o.out', {m})\n"
                             f"r = cli({a}, '--out', 'o.out')",
                             f"mode('o.out') == {m} and open('o.out').read() != 'old' and temps(tmp) == []"))
for um, want in (("0o022", "0o644"), ("0o027", "0o640"), ("0o077", "0o600"), ("0o000", "0o666"), ("0o002", "0o664")):
    CASES.append(handled(f"cli a new output gets 0666 & ~umask (umask {um})",
                         _MODE + f"r = subprocess.run([sys.executable, '-m', 'labelsift', 'scores', '--labels', L,"
                         f" '--pred-probs', P, '--out', 'n.csv'], preexec_fn=lambda: os.umask({um}), capture_output=True)",
                         f"r.returncode == 0 and mode('n.csv') == {want}"))
CASES += [
    handled("cli --plot keeps an existing PNG's mode", _MODE + "open('a.png', 'wb').write(b'x')\nos.chmod('a.png', 0o660)\n"
            "r = cli('noise-matrix', '--labels', L, '--pred-probs', P, '--plot', 'a.png')",
            "mode('a.png') == 0o660 and open('a.png', 'rb').read(4) == b'\\x89PNG'"),
    handled("cli keeps an existing output's owner (root writing a user's file)", _MODE +
            "open('o.csv', 'w').write('old')\nos.chown('o.csv', 65534, 65534) if os.geteuid() == 0 else None\n"
            "want = (os.stat('o.csv').st_uid, os.stat('o.csv').st_gid)\n"
            "r = cli('scores', '--labels', L, '--pred-probs', P, '--out', 'o.csv')",
            "(os.stat('o.csv').st_uid, os.stat('o.csv').st_gid) == want and open('o.csv').read() != 'old'"),
    handled("cli --out a symlink: the target is written, the link stays", _MODE +
            "open('real.csv', 'w').write('old')\nos.chmod('real.csv', 0o640)\nos.symlink('real.csv', 'ln.csv')\n"
            "r = cli('scores', '--labels', L, '--pred-probs', P, '--out', 'ln.csv')",
            "os.path.islink('ln.csv') and os.readlink('ln.csv') == 'real.csv' and open('real.csv').read().startswith('index')"
            " and mode('real.csv') == 0o640"),
    handled("cli --out a symlink into another folder: written there, no temp in either", _MODE +
            "os.mkdir('a')\nos.mkdir('b')\nopen('b/t.csv', 'w').write('old')\nos.symlink('../b/t.csv', 'a/l.csv')\n"
            "r = cli('find-issues', '--labels', L, '--pred-probs', P, '--out', 'a/l.csv')",
            "os.path.islink('a/l.csv') and sorted(os.listdir('a')) == ['l.csv'] and sorted(os.listdir('b')) == ['t.csv']"
            " and open('b/t.csv').read().startswith('index,given_label')"),
    handled("cli --out a dangling symlink creates its target", _MODE + "os.symlink('made.json', 'dl.json')\n"
            "r = cli('noise-matrix', '--labels', L, '--pred-probs', P, '--out', 'dl.json')",
            "os.path.islink('dl.json') and '\"noise_matrix\"' in open('made.json').read()"),
    handled("cli --out a chain of two symlinks", _MODE + "open('t.csv', 'w').write('old')\nos.symlink('t.csv', 'l1')\n"
            "os.symlink('l1', 'l2')\nr = cli('scores', '--labels', L, '--pred-probs', P, '--out', 'l2')",
            "os.path.islink('l1') and os.path.islink('l2') and open('t.csv').read().startswith('index')"),
    handled("cli --out an absolute symlink to a read-only file is replaced (folder writable)", _MODE +
            "open('t.csv', 'w').write('old')\nos.chmod('t.csv', 0o444)\nos.symlink(os.path.abspath('t.csv'), 'l')\n"
            "r = cli('scores', '--labels', L, '--pred-probs', P, '--out', 'l')",
            "open('t.csv').read().startswith('index') and mode('t.csv') == 0o444"),
]

# ---------------------------------------------------------------------------
# temporary files: stale ones of dead runs removed, others never touched
# ---------------------------------------------------------------------------
_STALE = _S + ("from labelsift._common.output import temp_name\n"
               "dead = temp_name(dead_pid())\nopen(dead, 'w').write('half')\n")
CASES += [
    handled("cli removes a stale temp file of a dead run", _STALE +
            "r = cli('scores', '--labels', L, '--pred-probs', P, '--out', 's.csv')", "temps(tmp) == []"),
    handled("cli removes a stale temp file even when its own write fails", _STALE +
            "try:\n    cli('scores', '--labels', 'missing.npy', '--pred-probs', P, '--out', 's.csv')\nexcept CLIError:\n    pass",
            "temps(tmp) == [] and not os.path.exists('s.csv')"),
    handled("cli keeps the temp file of a live process", _S +
            "from labelsift._common.output import temp_name\nlive = temp_name(os.getpid())\nopen(live, 'w').write('x')\n"
            "r = cli('scores', '--labels', L, '--pred-probs', P, '--out', 's.csv')", "temps(tmp) == [live]"),
    handled("cli keeps a temp file of another host", _S + "other = f'.labelsift-00000000-{dead_pid()}-abcd1234.tmp'\n"
            "open(other, 'w').write('x')\nr = cli('scores', '--labels', L, '--pred-probs', P, '--out', 's.csv')",
            "temps(tmp) == [other]"),
    handled("cli keeps files merely named like .labelsift-*", _S +
            "names = ['.labelsift-notes', '.labelsift-XXXXXXXX', '.labelsift-1-2-3.txt']\n"
            "[open(n, 'w').write('keep') for n in names]\nr = cli('scores', '--labels', L, '--pred-probs', P, '--out', 's.csv')",
            "temps(tmp) == sorted(names)"),
    handled("cli never removes a directory named like a stale temp", _S +
            "from labelsift._common.output import temp_name\nd = temp_name(dead_pid())\nos.mkdir(d)\n"
            "r = cli('scores', '--labels', L, '--pred-probs', P, '--out', 's.csv')", "os.path.isdir(d)"),
    handled("cli removes stale temps only in the output's folder", _S + "os.mkdir('o')\n"
            "from labelsift._common.output import temp_name\ndead = temp_name(dead_pid())\nopen(dead, 'w').write('x')\n"
            "open('o/' + dead, 'w').write('x')\nr = cli('scores', '--labels', L, '--pred-probs', P, '--out', 'o/s.csv')",
            "temps(tmp) == [dead] and temps('o') == []"),
    handled("cli: an error after the outputs were reserved leaves no temp", _S +
            "save('y2.npy', np.full(300, 99))\ntry:\n    cli('noise-matrix', '--labels', 'y2.npy', '--pred-probs', P,"
            " '--out', 'n.json', '--plot', 'n.png')\nexcept CLIError as e:\n    msg = str(e)",
            "'label' in msg and temps(tmp) == [] and sorted(os.listdir(tmp)) == ['p.npy', 'y.npy', 'y2.npy']"),
    handled("cli: a failed run keeps the old output", _S + "open('s.csv', 'w').write('old')\n"
            "save('y2.npy', np.full(300, 99))\ntry:\n    cli('scores', '--labels', 'y2.npy', '--pred-probs', P, '--out', 's.csv')\n"
            "except CLIError:\n    pass", "open('s.csv').read() == 'old' and temps(tmp) == []"),
    handled("cli noise-matrix writes --out and --plot together", _S +
            "r = cli('noise-matrix', '--labels', L, '--pred-probs', P, '--out', 'n.json', '--plot', 'n.png')",
            "os.path.getsize('n.json') > 0 and open('n.png', 'rb').read(4) == b'\\x89PNG' and temps(tmp) == []"),
]

# ---------------------------------------------------------------------------
# damaged or odd input files: one line naming the file, exit 2
# ---------------------------------------------------------------------------
_HDR = ("def raw(name, header, body=b''):\n"
        "    h = header.encode('latin1')\n"
        "    h = h + b' ' * ((64 - (10 + len(h) + 1) % 64) % 64) + b'\\n'\n"
        "    open(name, 'wb').write(b'\\x93NUMPY\\x01\\x00' + len(h).to_bytes(2, 'little') + h + body)\n")
_BADFILES = [
    ("an empty file", "open('x.npy', 'wb').close()"),
    ("only the magic", "open('x.npy', 'wb').write(b'\\x93NUMPY')"),
    ("a header syntax error", "raw('x.npy', \"{'descr': '<f8', 'fortran_order': False, 'shape': (300, 5\")"),
    ("a negative shape", "raw('x.npy', \"{'descr': '<f8', 'fortran_order': False, 'shape': (300, -5), }\")"),
    ("a header that is not a dict", "raw('x.npy', \"[1, 2, 3]\")"),
    ("an unknown descr", "raw('x.npy', \"{'descr': '<q9', 'fortran_order': False, 'shape': (300, 5), }\")"),
    ("a truncated body", "raw('x.npy', \"{'descr': '<f8', 'fortran_order': False, 'shape': (300, 5), }\", b'\\0' * 100)"),
    ("a huge shape", "raw('x.npy', \"{'descr': '<f8', 'fortran_order': False, 'shape': (10**30, 5), }\")"),
    ("a header length past the end", "open('x.npy', 'wb').write(b'\\x93NUMPY\\x01\\x00\\xff\\xff{')"),
    ("version 9.9", "open('x.npy', 'wb').write(b'\\x93NUMPY\\x09\\x09\\x10\\x00' + b' ' * 16)"),
    ("a directory", "os.mkdir('x.npy')"),
    ("a broken symlink", "os.symlink('gone.npy', 'x.npy')"),
    ("a pickled object array", "np.save('x.npy', np.array([{'a': 1}] * 300, dtype=object), allow_pickle=True)"),
]
for what, make in _BADFILES:
    for role in ("pred-probs", "labels"):
        args = ("'scores', '--labels', L, '--pred-probs', 'x.npy'" if role == "pred-probs"
                else "'scores', '--labels', 'x.npy', '--pred-probs', P")
        CASES.append(cli_error(f"cli --{role} is {what}", args, r"x\.npy", setup=_S + _HDR + make))
CASES += [
    cli_error("cli a damaged second shard", "'scores', '--labels', L, '--pred-probs', 'a.npy', 'x.npy'", r"x\.npy",
              setup=_S + _HDR + "save('a.npy', p[:100])\nraw('x.npy', \"{'descr': '<f8', 'fortran_order': False, 'shape': (200, -5), }\")"),
    cli_error("cli --class-names is a directory", "'scores', '--labels', L, '--pred-probs', P, '--class-names', 'cn'",
              r"class names: cn is a directory", setup=_S + "os.mkdir('cn')"),
    cli_error("cli --labels .csv is a directory", "'scores', '--labels', 'y.csv', '--pred-probs', P",
              r"labels: y\.csv is a directory", setup=_S + "os.mkdir('y.csv')"),
    cli_error("cli unreadable pred-probs (permissions enforced)", "", r"p\.npy.*Permission denied|Permission denied.*p\.npy",
              setup=_S + "os.chmod(P, 0o000)\ncli_as_user(tmp, 'scores', '--labels', L, '--pred-probs', P)"),
    cli_error("cli unreadable labels .csv (permissions enforced)", "", r"y\.csv.*Permission denied|Permission denied.*y\.csv",
              setup=_S + "np.savetxt('y.csv', y, fmt='%d')\nos.chmod('y.csv', 0o000)\n"
              "cli_as_user(tmp, 'scores', '--labels', 'y.csv', '--pred-probs', P)"),
    cli_error("cli labels out of range: one line, exit 2", "'find-issues', '--labels', 'y2.npy', '--pred-probs', P",
              r"label", setup=_S + "save('y2.npy', np.full(300, 7))"),
    cli_error("cli pred-probs with NaN: one line, exit 2", "'scores', '--labels', L, '--pred-probs', 'n.npy'",
              r"[Nn]a[Nn]|finite", setup=_S + "q = p.copy(); q[5, 2] = np.nan\nsave('n.npy', q)"),
]

# ---------------------------------------------------------------------------
# closed standard streams (`>&-`, `2>&-`)
# ---------------------------------------------------------------------------
_CLOSED = ("r = subprocess.run([sys.executable, '-m', 'labelsift', {args}], preexec_fn=lambda: os.close({fd}),"
           " stdout=subprocess.PIPE if {fd} == 2 else None, stderr=subprocess.PIPE if {fd} == 1 else None,"
           " text=True, cwd=tmp)\n")
for cmd, a in _CMDS.items():
    CASES.append(handled(f"cli {cmd} with stdout closed: one line, exit 2, nothing written",
                         _S + _CLOSED.format(args=a + ", '--out', 'o.out'", fd=1),
                         "r.returncode == 2 and r.stderr == 'labelsift: error: cannot write to stdout: it is closed\\n'"
                         " and not os.path.exists('o.out') and temps(tmp) == []"))
CASES += [
    handled("cli find-issues CSV to a closed stdout", _S + _CLOSED.format(args=_CMDS["find-issues"], fd=1),
            "r.returncode == 2 and r.stderr.count('\\n') == 1 and 'stdout' in r.stderr"),
    handled("cli an error with stderr closed: exit 2, nothing on stdout", _S +
            _CLOSED.format(args="'scores', '--labels', L, '--pred-probs', 'missing.npy'", fd=2),
            "r.returncode == 2 and r.stdout == ''"),
    handled("cli a good run with stderr closed", _S + _CLOSED.format(args=_CMDS["scores"] + ", '--out', 's.csv'", fd=2),
            "r.returncode == 0 and r.stdout.startswith('{') and os.path.exists('s.csv')"),
]

# ---------------------------------------------------------------------------
# self-label: the same output rules
# ---------------------------------------------------------------------------
_SL = _S + "S = save('s.npy', np.log(p))\n"
CASES += [
    error("cli self-label --out = --scores", _SL + "try:\n    cli('self-label', '--scores', S, '--out', S)\n"
          "finally:\n    assert np.array_equal(np.load(S), np.log(p))", "CLIError", r"^exit 2: .*--out \S+ is the input --scores"),
    error("cli self-label --out = --prior-from-labels", _SL + "try:\n    cli('self-label', '--scores', S,"
          " '--prior-from-labels', L, '--out', L)\nfinally:\n    assert np.array_equal(np.load(L), y)", "CLIError",
          r"^exit 2: .*is the input --prior-from-labels"),
    cli_error("cli self-label --out into a missing folder (before reading the scores)",
              "'self-label', '--scores', 'missing.npy', '--out', 'nope/l.npy'", r"--out: cannot write nope/l\.npy: the folder",
              setup=_SL),
    handled("cli self-label keeps an existing output's mode", _SL + "import stat\nopen('l.npy', 'w').write('old')\n"
            "os.chmod('l.npy', 0o640)\nr = cli('self-label', '--scores', S, '--out', 'l.npy')",
            "stat.S_IMODE(os.stat('l.npy').st_mode) == 0o640 and np.load('l.npy').shape == (300,) and temps(tmp) == []"),
]
