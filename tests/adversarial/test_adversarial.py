"""Every adversarial case (cases_*.py) in its own process, classified
(harness.py): each must end as the outcome it expects -- a clear error or a
correct result; a crash, a hang, a silent result or an unclear error fails."""
from __future__ import annotations

import importlib
import pkgutil

import signal

import pytest

from adversarial import harness


def _all_cases():
    import adversarial
    cases = []
    for m in sorted(pkgutil.iter_modules(adversarial.__path__), key=lambda m: m.name):
        if m.name.startswith("cases_"):
            cases += importlib.import_module(f"adversarial.{m.name}").CASES
    ids = [c.id for c in cases]
    dup = {i for i in ids if ids.count(i) > 1}
    assert not dup, f"duplicate case ids: {sorted(dup)}"
    return cases


CASES = _all_cases()


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in CASES])
def test_case(case):
    if "SIGHUP" in case.id and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        pytest.skip("SIGHUP is ignored in this process (started under nohup): the CLI rightly keeps it ignored")
    outcome, details = harness.run(case)
    assert outcome == case.expected, f"{case.id}: {outcome} (expected {case.expected}): {details}"


def test_enough_cases():
    assert len(CASES) >= 300, len(CASES)
