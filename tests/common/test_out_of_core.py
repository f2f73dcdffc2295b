"""Dumps on disk: results equal the in-memory ones, anonymous memory stays O(N).

The large test writes a >= 1 GB float32 dump and measures the peak RssAnon of
a fresh process running the public API on the path (sampled from
/proc/self/status), so the page cache that backs the memory map does not count
but any copy of the N x K input would.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import labelsift
from labelsift._common import arrays as _arrays
from support.data import write_dump


@pytest.mark.slow
def test_block_size_and_prefetch_do_not_change_results(tmp_path, monkeypatch):
    write_dump(tmp_path / "p.npy", tmp_path / "y.npy", 3000, 37, np.float16)
    y = np.load(tmp_path / "y.npy")
    P = np.load(tmp_path / "p.npy")
    want = {fb: labelsift.find_label_issues(y, P, filter_by=fb) for fb in ("prune_by_noise_rate", "both")}
    want_cj = labelsift.compute_confident_joint(y, P)
    for block_bytes in (37 * 2, 37 * 2 * 7, 37 * 2 * 1000, 1 << 26):
        monkeypatch.setattr(_arrays, "BLOCK_BYTES", block_bytes)
        for fb, mask in want.items():
            np.testing.assert_array_equal(labelsift.find_label_issues(tmp_path / "y.npy", tmp_path / "p.npy",
                                                                     filter_by=fb), mask)
        np.testing.assert_array_equal(labelsift.compute_confident_joint(y, str(tmp_path / "p.npy")), want_cj)


def test_memmap_blocks_are_views_not_copies(tmp_path):
    write_dump(tmp_path / "p.npy", tmp_path / "y.npy", 500, 10)
    probs = _arrays.as_probs(str(tmp_path / "p.npy"))
    for _, block in probs.blocks(block_bytes=10 * 4 * 64):
        assert _arrays._mmap_of(block) is not None  # a view into the file mapping


_MEASURE = textwrap.dedent(
    """
    import json, sys, threading, time
    import numpy as np
    import labelsift

    def rss_anon_kb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])

    labels_path, probs_path = sys.argv[1], sys.argv[2]
    # warm up imports and the kernels on a tiny problem before the baseline
    labelsift.find_label_issues(np.array([0, 1, 1, 0]), np.array([[.9, .1], [.2, .8], [.4, .6], [.7, .3]]))
    base = rss_anon_kb()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_anon_kb())
            time.sleep(0.002)

    t = threading.Thread(target=sample)
    t.start()
    mask = labelsift.find_label_issues(labels_path, probs_path)
    both = labelsift.find_label_issues(labels_path, probs_path, filter_by="both")
    cj = labelsift.compute_confident_joint(labels_path, probs_path)
    scores = labelsift.get_label_quality_scores(labels_path, probs_path, method="normalized_margin")
    done.set()
    t.join()
    peak_kb = max(peak[0], rss_anon_kb()) - base
    # now the in-memory reference on the same data
    y = np.load(labels_path)
    P = np.load(probs_path)
    same = bool((labelsift.find_label_issues(y, P) == mask).all()
                and (labelsift.find_label_issues(y, P, filter_by="both") == both).all()
                and (labelsift.compute_confident_joint(y, P) == cj).all()
                and (labelsift.get_label_quality_scores(y, P, method="normalized_margin") == scores).all())
    print(json.dumps({"peak_anon_mb": peak_kb / 1024, "input_mb": P.nbytes / 2**20, "n": len(y),
                      "issues": int(mask.sum()), "same": same}))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc to read RssAnon")
def test_one_gigabyte_dump_bounded_anonymous_memory(tmp_path):
    n, k = 270_000, 1000  # 1.08 GB of float32
    write_dump(tmp_path / "p.npy", tmp_path / "y.npy", n, k)
    assert os.path.getsize(tmp_path / "p.npy") >= 1_000_000_000
    script = tmp_path / "measure.py"
    script.write_text(_MEASURE)
    env = dict(os.environ)
    env.setdefault("LABELSIFT_NUM_THREADS", "2")
    r = subprocess.run([sys.executable, str(script), str(tmp_path / "y.npy"), str(tmp_path / "p.npy")],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    print(res)
    assert res["same"], "path input must give the in-memory results"
    assert res["issues"] > 0
    # O(N) bookkeeping for 270k rows is ~20 MB; a copy of the input would be 1030 MB.
    assert res["peak_anon_mb"] < 0.06 * res["input_mb"], res


@pytest.mark.parametrize("method", ["self_confidence", "normalized_margin", "confidence_weighted_entropy"])
def test_errors_name_the_global_row_in_later_blocks(tmp_path, monkeypatch, method):
    write_dump(tmp_path / "p.npy", tmp_path / "y.npy", 400, 10)
    P = np.load(tmp_path / "p.npy", mmap_mode="r+")
    P[333, 7] = np.nan
    P.flush()
    del P
    monkeypatch.setattr(_arrays, "BLOCK_BYTES", 10 * 4 * 50)  # 50 rows a block: row 333 is in block 6
    with pytest.raises(ValueError, match=r"pred_probs\[333, 7\]"):
        labelsift.get_label_quality_scores(tmp_path / "y.npy", tmp_path / "p.npy", method=method)
    with pytest.raises(ValueError, match=r"pred_probs\[333, 7\]"):
        labelsift.find_label_issues(tmp_path / "y.npy", tmp_path / "p.npy")
