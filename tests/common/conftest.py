"""Fixtures of the common room."""
import pytest
from support.cuda_emu import Emu


@pytest.fixture
def emulated(monkeypatch):
    """The emulated ``labelsift._cuda`` (support.cuda_emu) as the device path's module, reporting a usable device."""
    from labelsift._cl import device
    monkeypatch.setattr(device, "backend_info", lambda: {"cuda_available": True, "cuda_reason": ""})
    monkeypatch.setattr(device, "cuda_module", lambda: Emu)
    Emu.calls = []
    return Emu
