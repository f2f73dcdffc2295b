// Python bindings of the k-NN consensus kernels (labelsift._core, prefix nz_).
// The GIL is released around every kernel; arrays arrive already checked and
// converted by labelsift/_noise/ (int64 / float64 / uint8, C order).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>

#include "noise/canon_math.h"
#include "noise/kernels.h"

namespace ls {

namespace py = pybind11;

namespace {
template <class T>
const T* in2(const py::array& a, py::ssize_t n, py::ssize_t k, const char* what) {
  if (!py::isinstance<py::array_t<T>>(a) || a.ndim() != 2 || a.shape(0) != n || a.shape(1) != k ||
      !(a.flags() & py::array::c_style))
    throw py::value_error(std::string("labelsift._core: bad input array ") + what);
  return static_cast<const T*>(a.data());
}
template <class T>
const T* in1(const py::array& a, py::ssize_t n, const char* what) {
  if (!py::isinstance<py::array_t<T>>(a) || a.ndim() != 1 || (n >= 0 && a.shape(0) != n) ||
      !(a.flags() & py::array::c_style))
    throw py::value_error(std::string("labelsift._core: bad input array ") + what);
  return static_cast<const T*>(a.data());
}
}  // namespace

void bind_noise(py::module_& m) {
  m.def(
      "nz_consensus",
      [](const py::array& labels, const py::array& rows, const py::array& nbr, int64_t K, int nthreads) {
        const int64_t N = labels.ndim() == 1 ? labels.shape(0) : -1;
        const int64_t* y = in1<int64_t>(labels, N, "labels");
        const int64_t mm = rows.ndim() == 1 ? rows.shape(0) : -1;
        const int64_t* r = in1<int64_t>(rows, mm, "rows");
        const int64_t* nb = in2<int64_t>(nbr, mm, 2, "nbr");
        if (K < 1) throw py::value_error("labelsift._core: K must be >= 1");
        py::array_t<int64_t> codes(mm), c1(K), c2(K * K);
        int64_t* cp = codes.mutable_data();
        int64_t* p1 = c1.mutable_data();
        int64_t* p2 = c2.mutable_data();
        std::fill(p1, p1 + K, int64_t(0));
        std::fill(p2, p2 + K * K, int64_t(0));
        int64_t bad;
        {
          py::gil_scoped_release nogil;
          bad = nz::consensus(y, N, r, nb, mm, K, cp, p1, p2, nthreads);
        }
        if (bad >= 0) throw py::index_error("labelsift._core: row or neighbour index out of range in row " +
                                            std::to_string(bad));
        return py::make_tuple(codes, c1, c2);
      },
      py::arg("labels"), py::arg("rows"), py::arg("nbr"), py::arg("K"), py::arg("nthreads") = 0);

  m.def(
      "nz_vote",
      [](const py::array& labels, const py::array& nbr, const py::array& w, const py::array& given, int64_t K,
         int nthreads) {
        const int64_t N = labels.ndim() == 1 ? labels.shape(0) : -1;
        const int64_t* y = in1<int64_t>(labels, N, "labels");
        if (nbr.ndim() != 2) throw py::value_error("labelsift._core: bad input array nbr");
        const int64_t mm = nbr.shape(0), k = nbr.shape(1);
        const int64_t* nb = in2<int64_t>(nbr, mm, k, "nbr");
        const double* wp = in2<double>(w, mm, k, "w");
        const int64_t* g = in1<int64_t>(given, mm, "given");
        if (K < 1) throw py::value_error("labelsift._core: K must be >= 1");
        py::array_t<double> gv(mm);
        py::array_t<int64_t> pred(mm);
        double* gvp = gv.mutable_data();
        int64_t* pp = pred.mutable_data();
        int64_t bad;
        {
          py::gil_scoped_release nogil;
          bad = nz::vote(y, N, nb, wp, mm, k, g, K, gvp, pp, nthreads);
        }
        if (bad >= 0) throw py::index_error("labelsift._core: label or neighbour index out of range in row " +
                                            std::to_string(bad));
        return py::make_tuple(gv, pred);
      },
      py::arg("labels"), py::arg("nbr"), py::arg("w"), py::arg("given"), py::arg("K"), py::arg("nthreads") = 0);

  m.def(
      "nz_canon",
      [](const py::array& features, const py::array& qi, const py::array& dj) {
        // The canonical rows of float64 features and the distances of the pairs (qi[t], dj[t]) by
        // noise/canon_math.h -- the CUDA kernels' functions, for the tests (one thread).
        if (features.ndim() != 2) throw py::value_error("labelsift._core: bad input array features");
        const int64_t n = features.shape(0), d = features.shape(1);
        const double* f = in2<double>(features, n, d, "features");
        const int64_t P = qi.ndim() == 1 ? qi.shape(0) : -1;
        const int64_t* q = in1<int64_t>(qi, P, "qi");
        const int64_t* r = in1<int64_t>(dj, P, "dj");
        py::array_t<double> x({n, d});
        py::array_t<double> out(P);
        double* xp = x.mutable_data();
        double* op = out.mutable_data();
        for (int64_t i = 0; i < n; ++i) {
          const double* fi = f + i * d;
          const double nrm = nz::canon_norm([&](int64_t t) { return fi[t]; }, d);
          for (int64_t t = 0; t < d; ++t) xp[i * d + t] = fi[t] / nrm;
        }
        for (int64_t t = 0; t < P; ++t) {
          if (q[t] < 0 || q[t] >= n || r[t] < 0 || r[t] >= n) throw py::index_error("labelsift._core: bad pair");
          op[t] = nz::canon_distance(xp + q[t] * d, xp + r[t] * d, d);
        }
        return py::make_tuple(x, out);
      },
      py::arg("features"), py::arg("qi"), py::arg("dj"));

  m.def(
      "nz_self_weights",
      [](const py::array& dist) {
        // SimiFeat's weights by noise/canon_math.h self_weights_row (the CUDA vote kernel's
        // function), for the tests: (m, k - 1) float64 distances -> (m, k) weights.
        if (dist.ndim() != 2 || dist.shape(1) < 2)
          throw py::value_error("labelsift._core: dist must be (m, k - 1) with k - 1 >= 2");
        const int64_t mm = dist.shape(0), km1 = dist.shape(1);
        const double* dp = in2<double>(dist, mm, km1, "dist");
        py::array_t<double> w({mm, km1 + 1});
        double* wp = w.mutable_data();
        for (int64_t r = 0; r < mm; ++r) nz::self_weights_row(dp + r * km1, km1, wp + r * (km1 + 1));
        return w;
      },
      py::arg("dist"));

  m.def(
      "nz_filter_in_sample",
      [](const py::array& cand, const py::array& cand_d, const py::array& rows, const py::array& in_sample,
         int64_t want, int nthreads) {
        if (cand.ndim() != 2) throw py::value_error("labelsift._core: bad input array cand");
        const int64_t N = cand.shape(0), c = cand.shape(1);
        const int64_t* cp = in2<int64_t>(cand, N, c, "cand");
        const double* dp = in2<double>(cand_d, N, c, "cand_d");
        const int64_t mm = rows.ndim() == 1 ? rows.shape(0) : -1;
        const int64_t* r = in1<int64_t>(rows, mm, "rows");
        const uint8_t* s = in1<uint8_t>(in_sample, N, "in_sample");
        if (want < 1) throw py::value_error("labelsift._core: want must be >= 1");
        py::array_t<int64_t> oi({mm, want});
        py::array_t<double> od({mm, want});
        py::array_t<uint8_t> sh(mm);
        int64_t* oip = oi.mutable_data();
        double* odp = od.mutable_data();
        uint8_t* shp = sh.mutable_data();
        int64_t nshort;
        {
          py::gil_scoped_release nogil;
          nshort = nz::filter_in_sample(cp, dp, N, c, r, mm, s, want, oip, odp, shp, nthreads);
        }
        return py::make_tuple(oi, od, sh, nshort);
      },
      py::arg("cand"), py::arg("cand_d"), py::arg("rows"), py::arg("in_sample"), py::arg("want"),
      py::arg("nthreads") = 0);
}

}  // namespace ls
