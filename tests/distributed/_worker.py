"""One rank of the gloo tests: runs every case of a pickled case list on its
shard and pickles the results (or the errors) for the parent test."""
import os
import pickle
import sys
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: `support`


def _emulated_cuda():
    """The host emulation of labelsift._cuda (tests/support/cuda_emu.py) as the
    device path's module, reporting a usable device (as the ``emulated``
    fixture of tests/common/conftest.py)."""
    from labelsift._cl import device
    from support.cuda_emu import Emu
    device.backend_info = lambda: {"cuda_available": True, "cuda_reason": ""}
    device.cuda_module = lambda: Emu
    return Emu


def main(rank: int, world: int, port: int, cases_path: str, out_dir: str) -> None:
    import torch.distributed as dist

    import labelsift.distributed as ld

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    with open(cases_path, "rb") as fh:
        cases = pickle.load(fh)
    results, reports = [], []
    for case in cases:
        ld.comm_report(reset=True)
        lo, hi = case["bounds"][rank], case["bounds"][rank + 1]
        P = case["P"]
        if isinstance(P, str):  # a .npy path: the rank reads its rows through a memmap
            P = np.load(P, mmap_mode="r")
        local_p = P[lo:hi]
        local_y = case["labels"][lo:hi]
        if case.get("torch"):  # torch CPU tensors in: the mask comes back as a tensor
            import torch
            local_p, local_y = torch.from_numpy(np.ascontiguousarray(local_p)), torch.from_numpy(local_y.copy())
        cuda = case.get("cuda")
        on_device = bool(cuda) and rank in cuda["ranks"]
        if on_device:  # this rank's rows on the (emulated) CUDA device
            emu = _emulated_cuda()
            emu.calls = []
            from support.cuda_emu import FakeDeviceArray, TorchLike
            from support.device_arrays import host_view
            if cuda["kind"] == "torch":  # looks like a torch CUDA tensor: results come back as torch tensors
                local_p = TorchLike(np.ascontiguousarray(local_p))
            else:
                local_p = FakeDeviceArray(host_view(np.asarray(local_p), cuda.get("layout", "C")))
            if cuda.get("labels"):
                local_y = FakeDeviceArray(np.ascontiguousarray(local_y))
        fn = getattr(ld, case["fn"]) if case["fn"] != "accumulator" and "." not in case["fn"] else None
        try:
            if case["fn"].startswith("sinkhorn."):
                import labelsift.sinkhorn as sk
                out = ("ok", getattr(sk, case["fn"].split(".")[1])(local_p, group=True, **case["kwargs"]))
            elif fn is None:
                from labelsift.stream import ConfidentJointAccumulator
                acc = ConfidentJointAccumulator(local_p.shape[1])
                if hi > lo:
                    acc.update(np.arange(lo, hi), local_y, np.asarray(local_p))
                acc.all_reduce()
                res = acc.result(ties=case["kwargs"].get("ties"))
                out = ("ok", (res.label_issues, res.confident_joint, res.thresholds))
            else:
                got = fn(local_y, local_p, **case["kwargs"])
                if case.get("torch") or (on_device and cuda["kind"] == "torch" and case["kind"] == "local"):
                    import torch
                    assert isinstance(got, torch.Tensor), type(got)
                    got = got.numpy()
                out = ("ok", got)
        except Exception as exc:  # noqa: BLE001 - reported to the parent as data
            out = ("err", (type(exc).__name__, str(exc), traceback.format_exc()))
        results.append(out)
        reports.append(dict(ld.comm_report(), device_row_passes=_emulated_cuda().calls.count("row_pass")
                            if on_device else 0))
    report = reports
    with open(os.path.join(out_dir, f"rank{rank}.pkl.tmp"), "wb") as fh:
        pickle.dump({"results": results, "report": report}, fh)
    os.replace(os.path.join(out_dir, f"rank{rank}.pkl.tmp"), os.path.join(out_dir, f"rank{rank}.pkl"))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
