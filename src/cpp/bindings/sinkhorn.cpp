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

static sk::PassArgs pass_args(const py::array& X, double lam, const py::array& f, const py::object& b, double b0,
                              const py::object& labels, const py::object& g, const py::object& plan,
                              bool plan_unit_rows, bool check, int isa, int nthreads) {
  const Mat M = as_mat(X);
  sk::PassArgs a{};
  a.X = M;
  a.lam = lam;
  a.f = in_ptr<double>(f, M.k, "f");
  a.b = b_or_null(b, M.n);
  a.b0 = b0;
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
  return a;
}

// Piece starts: npieces + 1 nondecreasing local rows from 0.. to <= n.
static const int64_t* piece_starts(const py::array& starts, int64_t n, int64_t& npieces) {
  npieces = int64_t(starts.size()) - 1;
  if (npieces < 0) throw py::value_error("labelsift._core: starts must hold at least one row");
  const int64_t* st = in_ptr<int64_t>(starts, npieces + 1, "starts");
  for (int64_t p = 0; p < npieces; ++p)
    if (st[p] < 0 || st[p] > st[p + 1] || st[p + 1] > n) throw py::value_error("labelsift._core: bad piece starts");
  return st;
}

void bind_sinkhorn(py::module_& m) {
  m.def(
      "sk_pass",
      [](const py::array& X, double lam, const py::array& f, const py::object& b, double b0, const py::array& colsum,
         const py::array& colmax, const py::object& labels, const py::object& g, const py::object& plan,
         bool plan_unit_rows, bool check, int isa, int nthreads) {
        sk::PassArgs a = pass_args(X, lam, f, b, b0, labels, g, plan, plan_unit_rows, check, isa, nthreads);
        a.colsum = out_ptr<double>(colsum, a.X.k, "colsum");
        a.colmax = out_ptr<double>(colmax, a.X.k, "colmax");
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
      "sk_pass_pieces",
      [](const py::array& X, double lam, const py::array& f, const py::object& b, double b0, const py::array& starts,
         const py::array& acc, const py::array& cmx, const py::object& labels, const py::object& g,
         const py::object& plan, bool plan_unit_rows, bool check, int isa, int nthreads) {
        sk::PassArgs a = pass_args(X, lam, f, b, b0, labels, g, plan, plan_unit_rows, check, isa, nthreads);
        int64_t np_ = 0;
        const int64_t* st = piece_starts(starts, a.X.n, np_);
        double* ap = out_ptr<double>(acc, np_ * a.X.k, "acc");
        double* cp = out_ptr<double>(cmx, np_ * a.X.k, "cmx");
        if ((!ap || !cp) && np_ > 0) throw py::value_error("labelsift._core: acc and cmx are required");
        int64_t bad;
        {
          py::gil_scoped_release nogil;
          bad = sk::pass_pieces(a, st, np_, ap, cp);
        }
        return bad;
      },
      py::arg("X"), py::arg("lam"), py::arg("f"), py::arg("b"), py::arg("b0"), py::arg("starts"), py::arg("acc"),
      py::arg("cmx"), py::arg("labels"), py::arg("g"), py::arg("plan"), py::arg("plan_unit_rows"), py::arg("check"),
      py::arg("isa") = 0, py::arg("nthreads") = 0);

  m.def(
      "sk_col_lse_pieces",
      [](const py::array& X, double lam, const py::object& lb, double lb0, const py::array& starts, const py::array& M,
         const py::array& S, int nthreads) {
        const Mat X_ = as_mat(X);
        const double* bp = b_or_null(lb, X_.n);
        int64_t np_ = 0;
        const int64_t* st = piece_starts(starts, X_.n, np_);
        double* mp = out_ptr<double>(M, np_ * X_.k, "M");
        double* sp = out_ptr<double>(S, np_ * X_.k, "S");
        if ((!mp || !sp) && np_ > 0) throw py::value_error("labelsift._core: M and S are required");
        {
          py::gil_scoped_release nogil;
          sk::col_lse_pieces(X_, lam, bp, lb0, st, np_, mp, sp, nthreads);
        }
      },
      py::arg("X"), py::arg("lam"), py::arg("lb"), py::arg("lb0"), py::arg("starts"), py::arg("M"), py::arg("S"),
      py::arg("nthreads") = 0);

  m.def(
      "sk_lse_finish",
      [](const py::array& M, const py::array& S, int64_t nch, int64_t K) {
        const double* mp = in_ptr<double>(M, nch * K, "M");
        const double* sp = in_ptr<double>(S, nch * K, "S");
        py::array_t<double> out(K);
        sk::lse_finish(mp, sp, nch, K, out.mutable_data());
        return out;
      },
      py::arg("M"), py::arg("S"), py::arg("nch"), py::arg("K"));

  m.def("sk_chunk_rows", [](int64_t n) { return sk::chunk_rows(n); }, py::arg("n"));

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
      [](const py::array& x, int isa, int nthreads, bool single) {
        const int64_t n = x.size();
        const double* xp = in_ptr<double>(x, n, "x");
        py::array_t<double> out(n);
        double* o = out.mutable_data();
        {
          py::gil_scoped_release nogil;
          sk::exp_values(xp, o, n, isa, nthreads, single);
        }
        return out;
      },
      py::arg("x"), py::arg("isa") = 0, py::arg("nthreads") = 0, py::arg("single") = false);

  m.attr("SK_CHUNKS") = py::int_(sk::kChunks);
}

}  // namespace ls
