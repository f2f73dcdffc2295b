"""Signals to a running CLI (real subprocesses on a 2M x 10 float32 dump): SIGTERM exits 143,
SIGINT 130, SIGHUP 129, with one line on stderr, no traceback, no temporary file and no partial
output; kill -9 leaves a temporary file that the next run removes."""
from adversarial.harness import handled

_S = ("from adversarial.clihelp import big_dump, popen_cli, wait_until, mapped, writing, temps, finish, one_line\n"
      "L, P = big_dump(tmp)\n")
_SCORES = "'scores', '--labels', L, '--pred-probs', P, '--out', 'o.csv'"
_FIND = "'find-issues', '--labels', L, '--pred-probs', P, '--out', 'o.csv'"
_NOISE = "'noise-matrix', '--labels', L, '--pred-probs', P, '--out', 'o.json', '--plot', 'o.png'"
_WHEN = {"reading": "lambda: mapped(proc, P)", "writing": "lambda: writing(tmp)",
         "writing in t/": "lambda: writing('t')"}
_NOTHING_LEFT = "temps(tmp) == [] and sorted(os.listdir(tmp)) == ['p.npy', 'y.npy']"


def _sig_case(name, args, sig, when, rc, extra_setup="", check=_NOTHING_LEFT):
    code = (_S + extra_setup + f"proc = popen_cli(tmp, {args})\nwait_until(proc, {_WHEN[when]})\n"
            f"proc.send_signal(signal.{sig})\nrc, err = finish(proc)")
    return handled(name, code, f"rc == {rc} and one_line(err) and '{sig}' in err and {check}", slow=True, timeout=90)


CASES = [
    _sig_case("signal SIGTERM while scores writes its CSV", _SCORES, "SIGTERM", "writing", 143),
    _sig_case("signal SIGINT while scores writes its CSV", _SCORES, "SIGINT", "writing", 130),
    _sig_case("signal SIGTERM while scores reads its inputs", _SCORES, "SIGTERM", "reading", 143),
    _sig_case("signal SIGINT while find-issues reads its inputs", _FIND, "SIGINT", "reading", 130),
    _sig_case("signal SIGTERM while find-issues writes its CSV", _FIND, "SIGTERM", "writing", 143),
    _sig_case("signal SIGHUP while scores writes its CSV", _SCORES, "SIGHUP", "writing", 129),
    _sig_case("signal SIGTERM during noise-matrix --out --plot: neither written", _NOISE, "SIGTERM", "reading", 143),
    _sig_case("signal SIGTERM while writing over an existing output keeps it", _SCORES, "SIGTERM", "writing", 143,
              extra_setup="open('o.csv', 'w').write('old')\n",
              check="open('o.csv').read() == 'old' and temps(tmp) == []"),
    _sig_case("signal SIGTERM while writing through a symlink: link and target intact", _SCORES.replace("'o.csv'", "'ln.csv'"),
              "SIGTERM", "writing in t/", 143,
              extra_setup="os.mkdir('t')\nopen('t/real.csv', 'w').write('old')\nos.symlink('t/real.csv', 'ln.csv')\n",
              check="os.path.islink('ln.csv') and open('t/real.csv').read() == 'old' and os.listdir('t') == ['real.csv']"
                    " and temps(tmp) == []"),
    handled("signal SIGTERM twice: still one line and exit 143", _S +
            f"proc = popen_cli(tmp, {_SCORES})\nwait_until(proc, lambda: writing(tmp))\n"
            "proc.send_signal(signal.SIGTERM)\nproc.send_signal(signal.SIGTERM)\nrc, err = finish(proc)",
            f"rc == 143 and one_line(err) and {_NOTHING_LEFT}", slow=True, timeout=90),
    handled("signal SIGINT then SIGTERM: the first one decides", _S +
            f"proc = popen_cli(tmp, {_SCORES})\nwait_until(proc, lambda: writing(tmp))\n"
            "proc.send_signal(signal.SIGINT)\nproc.send_signal(signal.SIGTERM)\nrc, err = finish(proc)",
            f"rc in (130, 143) and one_line(err) and {_NOTHING_LEFT}", slow=True, timeout=90),
    handled("signal SIGTERM to find-issues writing CSV to a pipe: one line on stderr", _S +
            "proc = popen_cli(tmp, 'find-issues', '--labels', L, '--pred-probs', P, stdout=subprocess.PIPE)\n"
            "first = proc.stdout.readline()\nproc.send_signal(signal.SIGTERM)\nout, err = proc.communicate(timeout=60)\n"
            "rc = proc.returncode",
            "first.startswith('index,') and rc == 143 and one_line(err) and 'Traceback' not in err",
            slow=True, timeout=90),
    handled("signal SIGKILL leaves a temp file; the next run removes it", _S +
            f"proc = popen_cli(tmp, {_SCORES})\nwait_until(proc, lambda: writing(tmp))\n"
            "proc.kill()\nproc.wait()\nleft = temps(tmp)\n"
            "r = subprocess.run([sys.executable, '-m', 'labelsift', 'scores', '--labels', L, '--pred-probs', P,"
            " '--out', 'o.csv'], capture_output=True, text=True, cwd=tmp)",
            "len(left) == 1 and r.returncode == 0 and temps(tmp) == [] and os.path.getsize('o.csv') > 0",
            slow=True, timeout=120),
]
