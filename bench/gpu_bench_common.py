"""What the GPU benchmarks (bench_gpu_*.py) share: the JSON result, written
after every stage so a run cut short still reports what it measured; the
script's time budget; and the torch CUDA device (or the reason there is none)."""
from __future__ import annotations

import json
import platform
import time


class Run:
    def __init__(self, out: str, budget: float, **fields):
        self.out, self.budget, self.t0 = out, budget, time.perf_counter()
        self.res = dict(fields, python=platform.python_version())

    def write(self) -> None:
        with open(self.out, "w") as fh:
            json.dump(self.res, fh, indent=2)
        print(json.dumps(self.res, indent=2), flush=True)

    def left(self) -> float:
        """Seconds of the budget left."""
        return self.budget - (time.perf_counter() - self.t0)

    def torch_device(self):
        """(torch, cuda:0) with the device and versions recorded, or None with the reason written."""
        import labelsift

        self.res["backend_info"] = labelsift.backend_info()
        try:
            import torch
        except ImportError as exc:
            self.res["error"] = f"torch missing: {exc}"
            self.write()
            return None
        if not torch.cuda.is_available() or not self.res["backend_info"]["cuda_available"]:
            self.res["error"] = "no usable CUDA device: " + (self.res["backend_info"]["cuda_reason"]
                                                            or "torch has no CUDA")
            self.write()
            return None
        dev = torch.device("cuda:0")
        self.res["device"] = torch.cuda.get_device_name(dev)
        self.res["torch"] = torch.__version__
        return torch, dev
