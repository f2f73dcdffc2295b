// Python bindings of the multi-label kernels (labelsift._core). The GIL is
// released around every sweep (not in ml_flatten_lists, which reads Python
// objects).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <climits>
#include <cstdint>
#include <vector>

#include "bindings/arrays.h"
#include "multilabel/kernels.h"
#include "multilabel/row_math.h"

namespace ls {

namespace py = pybind11;
using namespace bind;

namespace {
// indptr: the block's n + 1 absolute offsets into indices
ml::Csr as_csr(const py::array& indptr, const py::array& indices, int64_t n) {
  const int64_t* ip = in_ptr<int64_t>(indptr, n + 1, "indptr");
  const int32_t* ix = in_ptr<int32_t>(indices, indices.shape(0), "indices");
  if (n > 0 && (ip[0] < 0 || ip[n] > indices.shape(0))) throw py::value_error("indptr out of range");
  return ml::Csr{ip, ix};
}

// cleanlab's labels (a list or tuple of per-example lists or tuples of
// Python ints) as (lengths int32, flat int32), in two passes over the
// objects; None when any row or value is of another kind or a value does
// not fit int32 (the Python side then takes its general, checked path,
// which names the offending row). bool counts as int, as in Python.
py::object flatten_lists(const py::handle& labels) {
  PyObject* outer = labels.ptr();
  // (exact types only: a subclass may iterate differently from its storage)
  if (!PyList_CheckExact(outer) && !PyTuple_CheckExact(outer)) return py::none();
  const bool is_list = PyList_CheckExact(outer);
  const Py_ssize_t n = is_list ? PyList_GET_SIZE(outer) : PyTuple_GET_SIZE(outer);
  auto row_at = [&](Py_ssize_t i) { return is_list ? PyList_GET_ITEM(outer, i) : PyTuple_GET_ITEM(outer, i); };
  py::array_t<int32_t> lengths(n);
  int32_t* len = lengths.mutable_data();
  int64_t total = 0;
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* r = row_at(i);
    Py_ssize_t m;
    if (PyList_CheckExact(r)) {
      m = PyList_GET_SIZE(r);
    } else if (PyTuple_CheckExact(r)) {
      m = PyTuple_GET_SIZE(r);
    } else {
      return py::none();
    }
    if (m > INT32_MAX) return py::none();
    len[i] = int32_t(m);
    total += m;
  }
  py::array_t<int32_t> flat(total);
  int32_t* f = flat.mutable_data();
  int64_t q = 0;
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* r = row_at(i);
    const bool rl = PyList_CheckExact(r);
    // (the rows were checked above; the list cannot change meanwhile: the GIL is held)
    const Py_ssize_t m = len[i];
    if ((rl ? PyList_GET_SIZE(r) : PyTuple_GET_SIZE(r)) != m) return py::none();
    for (Py_ssize_t j = 0; j < m; ++j) {
      PyObject* v = rl ? PyList_GET_ITEM(r, j) : PyTuple_GET_ITEM(r, j);
      if (!PyLong_CheckExact(v) && !PyBool_Check(v)) return py::none();
      int overflow = 0;
      const long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
      if (overflow || x < INT32_MIN || x > INT32_MAX) return py::none();
      f[q++] = int32_t(x);
    }
  }
  return py::make_tuple(lengths, flat);
}
}  // namespace

void bind_multilabel(py::module_& m) {
  py::class_<ml::ClassSideMeans>(m, "MlClassSideMeans")
      .def(py::init([](int64_t K, std::vector<int64_t> n1, int64_t n_total, const py::dtype& dt) {
             return new ml::ClassSideMeans(K, std::move(n1), n_total, dtype_code(dt));
           }),
           py::arg("K"), py::arg("n1"), py::arg("n_total"), py::arg("dtype"))
      .def(
          "feed",
          [](ml::ClassSideMeans& self, const py::array& P, const py::array& indptr, const py::array& indices,
             int nthreads) {
            const Mat M = as_mat(P);
            const ml::Csr y = as_csr(indptr, indices, M.n);
            py::gil_scoped_release nogil;
            self.feed(M, y, nthreads);
          },
          py::arg("P"), py::arg("indptr"), py::arg("indices"), py::arg("nthreads") = 0)
      .def("finish", [](ml::ClassSideMeans& self) {
        const std::vector<double> v = self.finish();
        py::array_t<double> out(py::ssize_t(v.size()));
        std::copy(v.begin(), v.end(), out.mutable_data());
        return out;
      });

  m.def(
      "ml_joint_sweep",
      [](const py::array& P, const py::array& indptr, const py::array& indices, const py::object& cut0,
         const py::object& cut1, const py::object& cj, const py::object& cl_mask, const py::object& neq_mask,
         int key_method, const py::object& hist, int nthreads) {
        const Mat M = as_mat(P);
        const ml::Csr y = as_csr(indptr, indices, M.n);
        const double* c0 = cut0.is_none() ? nullptr : in_ptr<double>(py::cast<py::array>(cut0), M.k, "cut0");
        const double* c1 = cut1.is_none() ? nullptr : in_ptr<double>(py::cast<py::array>(cut1), M.k, "cut1");
        int64_t* j = out_ptr<int64_t>(cj, M.k * 4, "cj");
        if (c0 && !j) throw py::value_error("cj is needed with cuts");
        uint8_t* cl = out_ptr<uint8_t>(cl_mask, M.n, "cl_mask");
        uint8_t* nq = out_ptr<uint8_t>(neq_mask, M.n, "neq_mask");
        int64_t* h = out_ptr<int64_t>(hist, M.k * 2 * ml::kBuckets, "hist");
        py::gil_scoped_release nogil;
        ml::joint_sweep(M, y, c0, c1, j, cl, nq, key_method, h, nthreads);
      },
      py::arg("P"), py::arg("indptr"), py::arg("indices"), py::arg("cut0"), py::arg("cut1"), py::arg("cj"),
      py::arg("cl_mask"), py::arg("neq_mask"), py::arg("key_method"), py::arg("hist"), py::arg("nthreads") = 0);

  m.def(
      "ml_select_sweep",
      [](const py::array& P, const py::array& indptr, const py::array& indices, int64_t row0, int key_method,
         const py::array& cutb, const py::object& mask, const py::object& flagged, int nthreads) {
        const Mat M = as_mat(P);
        const ml::Csr y = as_csr(indptr, indices, M.n);
        const int32_t* cb = in_ptr<int32_t>(cutb, M.k * 2, "cutb");
        uint8_t* mk = out_ptr<uint8_t>(mask, M.n, "mask");
        int64_t* fl = out_ptr<int64_t>(flagged, M.k * 2, "flagged");
        if (!mk || !fl) throw py::value_error("mask and flagged are required");
        ml::Candidates c;
        {
          py::gil_scoped_release nogil;
          ml::select_sweep(M, y, row0, key_method, cb, mk, fl, c, nthreads);
        }
        auto arr = [](const auto& v) {
          using T = typename std::decay_t<decltype(v)>::value_type;
          py::array_t<T> a(py::ssize_t(v.size()));
          std::copy(v.begin(), v.end(), a.mutable_data());
          return a;
        };
        return py::make_tuple(arr(c.group), arr(c.row), arr(c.key), arr(c.keep));
      },
      py::arg("P"), py::arg("indptr"), py::arg("indices"), py::arg("row0"), py::arg("key_method"), py::arg("cutb"),
      py::arg("mask"), py::arg("flagged"), py::arg("nthreads") = 0);
  m.def(
      "ml_ema_scores",
      [](const py::array& P, const py::array& indptr, const py::array& indices, double alpha, double beta,
         const py::object& out, int isa, int nthreads, int method, const py::object& per_class) {
        const Mat M = as_mat(P);
        const ml::Csr y = as_csr(indptr, indices, M.n);
        double* o = out_ptr<double>(out, M.n, "out");
        double* pc = out_ptr<double>(per_class, M.n * M.k, "per_class");
        if (!o && !pc) throw py::value_error("out or per_class is required");
        py::gil_scoped_release nogil;
        return ml::ema_scores(M, y, method, alpha, beta, o, pc, isa, nthreads);
      },
      py::arg("P"), py::arg("indptr"), py::arg("indices"), py::arg("alpha"), py::arg("beta"), py::arg("out"),
      py::arg("isa") = 0, py::arg("nthreads") = 0, py::arg("method") = 0, py::arg("per_class") = py::none());
  m.def("ml_flatten_lists", &flatten_lists, py::arg("labels"));
  m.attr("ML_BUCKETS") = ml::kBuckets;
}

}  // namespace ls
