"""A pytest plugin (``-p support.cuda_emu_plugin``) that replaces
``labelsift._cuda`` by the host emulation of :mod:`support.cuda_emu` and
reports a usable device, so that the GPU suite's own logic (data, layouts,
comparisons) runs on a machine without a GPU. Only for
tests/common/test_gpu_suite_emulated.py; never for real GPU runs."""
import sys

import labelsift
from labelsift._cl import device

from labelsift._knn import device as knn_device

from support.cuda_emu import Emu, EmuOps

_info = dict(labelsift.backend_info())
_info.update(cuda_available=True, cuda_reason="", cuda_devices=["emulated"])
labelsift.backend_info = lambda: _info
device.backend_info = lambda: _info
device.cuda_module = lambda: Emu
sys.modules["labelsift._cuda"] = Emu
knn_device.OPS_OVERRIDE = EmuOps
