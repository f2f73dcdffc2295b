// Python bindings of the Sinkhorn kernels (labelsift._core, prefix sk_). The
// GIL is released around every kernel; arrays arrive already checked and in
// a supported dtype (labelsift/_sinkhorn/inputs.py converts, nothing here does).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/arrays.h"
#include "sinkhorn/kernels.h"

namespace ls {

namespace py = pybind11;
using namespace bind;

static const double* b_or_null(const py::object& b, int64_t n) {
  return b.is_none() ? nullptr : in_ptr<double>(py::cast<py::array>(b), n, "row weights");
}

void bind_sinkhorn(py::module_& m) {
  m.def(
      "sk_pass",
      [](const py::array& X, double lam, const py::array& f, const py::object& b, double b0, const py::array& colsum,
         const py::array& colmax, const py::object& labels, const py::object& g, const py::object& plan,
         bool plan_unit_rows, bool check, int isa, int nthreads) {
        const Mat M = as_mat(X);
        sk::PassArgs a{};
        a.X = M;
        a.lam = lam;
        a.f = in_ptr<double>(f, M.k, "f");
        a.b = b_or_null(b, M.n);
        a.b0 = b0;
        a.colsum = out_ptr<double>(colsum, M.k, "colsum");
        a.colmax = out_ptr<double>(colmax, M.k, "colmax");
        a.labels = out_ptr<int64_t>(labels, M.n, "labels");
        a.g = out_ptr<double>(g, M.n, "g");
        a.plan = nullptr;
        a.plan_dtype = F64;
        if (!plan.is_none()) {
          auto p = py::cast<py::array>(plan);
          if (p.ndim() != 2 || p.shape(0) != M.n || p.shape(1) != M.k || !(p.flags() & py::array::c_style) ||
              !p.writeable())
            throw py::value_error("labelsift._core: bad output array plan");
          a.plan_dtype = dtype_code(p.dtype());
          if (a.plan_dtype == F16) throw py::value_error("labelsift._core: plan must be float32 or float64");
          a.plan = p.mutable_data();
        }
        a.plan_unit_rows = plan_unit_rows;
        a.check = check;
        a.isa = isa;
        a.nthreads = nthreads;
        if (!a.colsum || !a.colmax) throw py::value_error("labelsift._core: colsum and colmax are required");
        int64_t bad;
        {
          py::gil_scoped_release nogil;
          bad = sk::pass(a);
        }
        return bad;
      },
      py::arg("X"), py::arg("lam"), py::arg("f"), py::arg("b"), py::arg("b0"), py::arg("colsum"), py::arg("colmax"),
      py::arg("labels"), py::arg("g"), py::arg("plan"), py::arg("plan_unit_rows"), py::arg("check"),
      py::arg("isa") = 0, py::arg("nthreads") = 0);

  m.def(
      "sk_col_lse",
      [](const py::array& X, double lam, const py::object& lb, double lb0, int nthreads) {
        const Mat M = as_mat(X);
        const double* bp = b_or_null(lb, M.n);
        py::array_t<double> out(M.k);
        double* o = out.mutable_data();
        {
          py::gil_scoped_release nogil;
          sk::col_lse(M, lam, bp, lb0, o, nthreads);
        }
        return out;
      },
      py::arg("X"), py::arg("lam"), py::arg("lb"), py::arg("lb0"), py::arg("nthreads") = 0);

  m.def(
      "sk_exp",
      [](const py::array& x, int isa, int nthreads) {
        const int64_t n = x.size();
        const double* xp = in_ptr<double>(x, n, "x");
        py::array_t<double> out(n);
        double* o = out.mutable_data();
        {
          py::gil_scoped_release nogil;
          sk::exp_values(xp, o, n, isa, nthreads);
        }
        return out;
      },
      py::arg("x"), py::arg("isa") = 0, py::arg("nthreads") = 0);

  m.def("sk_best_isa", []() { return sk::best_isa(); });
  m.attr("SK_CHUNKS") = py::int_(sk::kChunks);
}

}  // namespace ls
