"""Optional dependencies missing: one clear ImportError naming the package and
the labelsift extra, never a bare ModuleNotFoundError (each case in a process
where the module is blocked)."""
import subprocess
import sys

import pytest

CASES = {
    "knn_find_issues_scipy": ("scipy", "import numpy as np, labelsift\n"
                              "X = np.random.default_rng(0).standard_normal((60, 5)).astype(np.float32)\n"
                              "labelsift.knn.find_issues(X, np.arange(60) % 3, as_frame=False)",
                              "gaussian_kde) needs scipy: pip install 'labelsift[knn]'"),
    "knn_find_issues_pandas": ("pandas", "import numpy as np, labelsift\n"
                               "X = np.random.default_rng(0).standard_normal((60, 5)).astype(np.float32)\n"
                               "labelsift.knn.find_issues(X, np.arange(60) % 3)",
                               "needs pandas: pip install 'labelsift[pandas]'"),
    "multilabel_dataset_pandas": ("pandas", "import numpy as np\n"
                                  "from labelsift.multilabel_classification import dataset\n"
                                  "p = np.random.default_rng(0).random((40, 3))\n"
                                  "dataset.common_multilabel_issues([[0], [1, 2], []] * 13 + [[0]], p)",
                                  "needs pandas: pip install 'labelsift[pandas]'"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_missing_optional_dependency_message(name):
    blocked, body, message = CASES[name]
    code = (f"import sys\nfor m in [k for k in list(sys.modules) if k == {blocked!r} or k.startswith({blocked!r} + '.')]:\n"
            f"    del sys.modules[m]\n"
            f"class Block:\n"
            f"    def find_spec(self, name, path=None, target=None):\n"
            f"        if name == {blocked!r} or name.startswith({blocked!r} + '.'):\n"
            f"            raise ImportError('blocked ' + name)\n"
            f"sys.meta_path.insert(0, Block())\n" + body)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError:") and message in last, out.stderr[-2000:]
