// Python bindings of the confident-learning kernels (labelsift._core). The
// GIL is released around every kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <vector>

#include "bindings/arrays.h"
#include "cl/kernels.h"

namespace ls {

namespace py = pybind11;
using namespace bind;

void bind_cl(py::module_& m) {
  m.def(
      "gather_given",
      [](const py::array& P, const py::array& labels, const py::array& out, int nthreads) {
        const Mat M = as_mat(P);
        const int64_t* y = in_ptr<int64_t>(labels, M.n, "labels");
        if (out.dtype().kind() != 'f' || dtype_code(out.dtype()) != M.dtype || out.ndim() != 1 ||
            out.shape(0) != M.n || !(out.flags() & py::array::c_style) || !out.writeable())
          throw py::value_error("labelsift._core: bad output array out");
        void* o = const_cast<void*>(out.data());
        py::gil_scoped_release nogil;
        gather_given(M, y, o, nthreads);
      },
      py::arg("P"), py::arg("labels"), py::arg("out"), py::arg("nthreads") = 0);

  m.def(
      "class_means",
      [](const py::array& g, const py::array& labels, int64_t K, int nthreads) {
        if (g.ndim() != 1 || !(g.flags() & py::array::c_style)) throw py::value_error("g must be 1-D contiguous");
        const int code = dtype_code(g.dtype());
        const int64_t n = g.shape(0);
        const int64_t* y = in_ptr<int64_t>(labels, n, "labels");
        py::array_t<double> means(K);
        py::array_t<int64_t> counts(K);
        double* mp = means.mutable_data();
        int64_t* cp = counts.mutable_data();
        const void* gp = g.data();
        {
          py::gil_scoped_release nogil;
          class_means(code, gp, y, n, K, mp, cp, nthreads);
        }
        return py::make_tuple(means, counts);
      },
      py::arg("g"), py::arg("labels"), py::arg("K"), py::arg("nthreads") = 0);

  m.def(
      "row_pass",
      [](const py::array& P, const py::array& labels, const py::object& cut, const py::object& guess,
         const py::object& argmax, const py::object& keep, const py::object& max_other, double lo, double hi,
         double sum_tol, int nthreads) {
        const Mat M = as_mat(P);
        const int64_t* y = in_ptr<int64_t>(labels, M.n, "labels");
        const double* c64 = nullptr;
        const float* c32 = nullptr;
        if (!cut.is_none()) {
          auto ca = py::cast<py::array>(cut);
          if (py::isinstance<py::array_t<float>>(ca))
            c32 = in_ptr<float>(ca, M.k, "cut");
          else
            c64 = in_ptr<double>(ca, M.k, "cut");
        }
        RowPassOut out{out_ptr<int32_t>(guess, M.n, "guess"), out_ptr<int32_t>(argmax, M.n, "argmax"),
                       out_ptr<uint8_t>(keep, M.n, "keep"), out_ptr<double>(max_other, M.n, "max_other")};
        RowPassError e;
        {
          py::gil_scoped_release nogil;
          e = row_pass(M, y, c64, c32, out, Bounds{lo, hi, sum_tol}, nthreads);
        }
        return err_tuple(e);
      },
      py::arg("P"), py::arg("labels"), py::arg("cut"), py::arg("guess"), py::arg("argmax"), py::arg("keep"),
      py::arg("max_other"), py::arg("lo"), py::arg("hi"), py::arg("sum_tol"), py::arg("nthreads") = 0);

  m.def(
      "validate",
      [](const py::array& P, const py::array& labels, double lo, double hi, double sum_tol, int nthreads) {
        const Mat M = as_mat(P);
        const int64_t* y = in_ptr<int64_t>(labels, M.n, "labels");
        RowPassError e;
        {
          py::gil_scoped_release nogil;
          e = validate(M, y, Bounds{lo, hi, sum_tol}, nthreads);
        }
        return err_tuple(e);
      },
      py::arg("P"), py::arg("labels"), py::arg("lo"), py::arg("hi"), py::arg("sum_tol"), py::arg("nthreads") = 0);

  m.def(
      "xlogx_rows",
      [](const py::array& P, const py::object& rows, const py::object& out, int nthreads) {
        const Mat M = as_mat(P);
        int64_t nr;
        const int64_t* r = optional_rows(rows, M.n, nr);
        double* o = out_ptr<double>(out, nr, "out");
        py::gil_scoped_release nogil;
        xlogx_rows(M, r, nr, o, nthreads);
      },
      py::arg("P"), py::arg("rows"), py::arg("out"), py::arg("nthreads") = 0);

  m.def(
      "adjusted_rows",
      [](const py::array& P, const py::array& labels, const py::array& t, bool t_is_f64, const py::object& rows,
         const py::object& sc, const py::object& mo, int nthreads) {
        const Mat M = as_mat(P);
        const int64_t* y = in_ptr<int64_t>(labels, M.n, "labels");
        const double* tp = in_ptr<double>(t, M.k, "thresholds");
        int64_t nr;
        const int64_t* r = optional_rows(rows, M.n, nr);
        double* scp = out_ptr<double>(sc, nr, "sc");
        double* mop = out_ptr<double>(mo, nr, "mo");
        py::gil_scoped_release nogil;
        adjusted_rows(M, y, tp, t_is_f64, r, nr, scp, mop, nthreads);
      },
      py::arg("P"), py::arg("labels"), py::arg("t"), py::arg("t_is_f64"), py::arg("rows"), py::arg("sc"),
      py::arg("mo"), py::arg("nthreads") = 0);

  m.def(
      "lowest_per_class",
      [](const py::array& values, const py::array& labels, int64_t K, const py::array& num, const py::object& mask,
         int nthreads, const py::object& tied) {
        const int64_t n = values.shape(0);
        const double* v = in_ptr<double>(values, n, "values");
        const int64_t* y = in_ptr<int64_t>(labels, n, "labels");
        const int64_t* c = in_ptr<int64_t>(num, K, "num");
        uint8_t* mk = out_ptr<uint8_t>(mask, n, "mask");
        uint8_t* td = out_ptr<uint8_t>(tied, K, "tied");
        py::gil_scoped_release nogil;
        lowest_per_class(v, y, n, K, c, mk, nthreads, td);
      },
      py::arg("values"), py::arg("labels"), py::arg("K"), py::arg("num"), py::arg("mask"), py::arg("nthreads") = 0,
      py::arg("tied") = py::none());

  m.def(
      "top_m_rows",
      [](const py::array& P, int64_t m, const py::array& cls, const py::array& vals, const py::array& rest,
         int nthreads) {
        const Mat M = as_mat(P);
        if (m < 1 || m > M.k) throw py::value_error("top_m_rows: need 1 <= m <= K");
        auto ok = [&](const py::array& a, py::ssize_t size, bool same_dtype) {
          return a.ndim() >= 1 && a.size() == size && (a.flags() & py::array::c_style) && a.writeable() &&
                 (!same_dtype || a.dtype().is(P.dtype()) || a.dtype().equal(P.dtype()));
        };
        if (!py::isinstance<py::array_t<int32_t>>(cls) || !ok(cls, M.n * m, false) || !ok(vals, M.n * m, true) ||
            !ok(rest, M.n, true))
          throw py::value_error("top_m_rows: bad output arrays");
        int32_t* c = static_cast<int32_t*>(const_cast<void*>(cls.data()));
        void* v = const_cast<void*>(vals.data());
        void* r = const_cast<void*>(rest.data());
        py::gil_scoped_release nogil;
        top_m_rows(M, m, c, v, r, nthreads);
      },
      py::arg("P"), py::arg("m"), py::arg("cls"), py::arg("vals"), py::arg("rest"), py::arg("nthreads") = 0);

  m.def(
      "pair_top_update",
      [](const py::array& P, const py::array& labels, int64_t row0, int64_t slots, const py::array& vals,
         const py::array& ids, const py::object& low, const py::object& rest, const py::object& ptr,
         const py::object& cls, int nthreads, const py::object& runner) {
        const Mat M = as_mat(P);
        if (slots < 1) throw py::value_error("pair_top_update: need slots >= 1");
        const py::ssize_t size = py::ssize_t(M.k) * M.k * slots;
        const bool v64 = M.dtype == F64;
        const bool vok = v64 ? py::isinstance<py::array_t<double>>(vals) : py::isinstance<py::array_t<float>>(vals);
        const bool wide = py::isinstance<py::array_t<int64_t>>(ids);
        if (!vok || !(wide || py::isinstance<py::array_t<int32_t>>(ids)) || vals.size() != size ||
            ids.size() != size || !(vals.flags() & py::array::c_style) || !(ids.flags() & py::array::c_style) ||
            !vals.writeable() || !ids.writeable())
          throw py::value_error("pair_top_update: bad table arrays");
        if (!wide && row0 + M.n > int64_t(INT32_MAX)) throw py::value_error("pair_top_update: ids need int64");
        const int64_t* y = in_ptr<int64_t>(labels, M.n, "labels");
        for (int64_t i = 0; i < M.n; ++i)
          if (y[i] < 0 || y[i] >= M.k) throw py::value_error("pair_top_update: label out of range");
        void* v = const_cast<void*>(vals.data());
        void* d = const_cast<void*>(ids.data());
        void* lo = nullptr;
        const void* rs = nullptr;
        const int64_t* pt = nullptr;
        const int32_t* cl = nullptr;
        if (!low.is_none()) {
          const py::array la = low.cast<py::array>();
          if (!(v64 ? py::isinstance<py::array_t<double>>(la) : py::isinstance<py::array_t<float>>(la)) ||
              la.size() != M.k || !(la.flags() & py::array::c_style) || !la.writeable())
            throw py::value_error("pair_top_update: bad low array");
          lo = const_cast<void*>(la.data());
        }
        if (!rest.is_none()) {
          if (lo == nullptr || ptr.is_none() || cls.is_none())
            throw py::value_error("pair_top_update: rest needs low, ptr and cls");
          const py::array ra = rest.cast<py::array>();
          if (!(ra.dtype().is(P.dtype()) || ra.dtype().equal(P.dtype())) || ra.size() != M.n ||
              !(ra.flags() & py::array::c_style))
            throw py::value_error("pair_top_update: bad rest array");
          rs = ra.data();
          pt = in_ptr<int64_t>(ptr.cast<py::array>(), M.n + 1, "ptr");
          const py::array ca = cls.cast<py::array>();
          if (!py::isinstance<py::array_t<int32_t>>(ca) || !(ca.flags() & py::array::c_style))
            throw py::value_error("pair_top_update: cls must be C-ordered int32");
          if (pt[0] != 0 || pt[M.n] != int64_t(ca.size())) throw py::value_error("pair_top_update: bad ptr");
          for (int64_t i = 0; i < M.n; ++i)
            if (pt[i + 1] < pt[i]) throw py::value_error("pair_top_update: bad ptr");
          cl = static_cast<const int32_t*>(ca.data());
          for (py::ssize_t e = 0; e < ca.size(); ++e)
            if (cl[e] < 0 || cl[e] >= M.k) throw py::value_error("pair_top_update: class out of range");
        }
        void* rn = nullptr;
        if (!runner.is_none()) {
          const py::array ra = runner.cast<py::array>();
          if (!(v64 ? py::isinstance<py::array_t<double>>(ra) : py::isinstance<py::array_t<float>>(ra)) ||
              ra.size() != py::ssize_t(M.k) * M.k || !(ra.flags() & py::array::c_style) || !ra.writeable())
            throw py::value_error("pair_top_update: bad runner array");
          rn = const_cast<void*>(ra.data());
        }
        py::gil_scoped_release nogil;
        pair_top_update(M, y, row0, slots, v, d, wide, lo, rs, pt, cl, nthreads, rn);
      },
      py::arg("P"), py::arg("labels"), py::arg("row0"), py::arg("slots"), py::arg("vals"), py::arg("ids"),
      py::arg("low") = py::none(), py::arg("rest") = py::none(), py::arg("ptr") = py::none(),
      py::arg("cls") = py::none(), py::arg("nthreads") = 0, py::arg("runner") = py::none());

  m.def(
      "sketch_guesses",
      [](const py::array& ptr, const py::array& ec, const py::array& ev, const py::array& g, const py::array& rm,
         const py::array& cert, const py::array& labels, const py::array& cut, const py::array& order,
         const py::array& guess, const py::array& decided, int nthreads) {
        const int64_t n = ptr.ndim() == 1 ? int64_t(ptr.shape(0)) - 1 : -1;
        if (n < 0) throw py::value_error("sketch_guesses: bad ptr");
        const int64_t* pp = in_ptr<int64_t>(ptr, n + 1, "ptr");
        const int64_t ne = pp[n];
        const int code = dtype_code(ev.dtype());
        auto same = [&](const py::array& a, py::ssize_t size) {
          return a.ndim() == 1 && a.shape(0) == size && (a.flags() & py::array::c_style) && dtype_code(a.dtype()) == code;
        };
        if (!same(ev, ne) || !same(g, n) || !same(rm, n)) throw py::value_error("sketch_guesses: bad value arrays");
        const int64_t K = cut.ndim() == 1 ? cut.shape(0) : -1;
        const int64_t* e = in_ptr<int64_t>(ec, ne, "ec");
        const int64_t* y = in_ptr<int64_t>(labels, n, "labels");
        const double* c = in_ptr<double>(cut, K, "cut");
        const int64_t* o = in_ptr<int64_t>(order, K, "order");
        if (!py::isinstance<py::array_t<uint8_t>>(cert) && !py::isinstance<py::array_t<bool>>(cert))
          throw py::value_error("sketch_guesses: cert must be bool");
        if (cert.ndim() != 1 || cert.shape(0) != n || !(cert.flags() & py::array::c_style))
          throw py::value_error("sketch_guesses: bad cert");
        for (int64_t i = 0; i < n; ++i) {
          if (y[i] < 0 || y[i] >= K) throw py::value_error("sketch_guesses: label out of range");
          if (pp[i + 1] <= pp[i] || pp[i] < 0) throw py::value_error("sketch_guesses: every row needs an entry");
        }
        for (int64_t t = 0; t < ne; ++t)
          if (e[t] < 0 || e[t] >= K) throw py::value_error("sketch_guesses: class out of range");
        for (int64_t t = 0; t < K; ++t)
          if (o[t] < 0 || o[t] >= K) throw py::value_error("sketch_guesses: bad order");
        int64_t* gs = out_ptr<int64_t>(guess, n, "guess");
        uint8_t* dc = static_cast<uint8_t*>(const_cast<void*>(decided.data()));
        if (decided.ndim() != 1 || decided.shape(0) != n || decided.itemsize() != 1 || !decided.writeable())
          throw py::value_error("sketch_guesses: bad decided");
        const uint8_t* ce = static_cast<const uint8_t*>(cert.data());
        py::gil_scoped_release nogil;
        sketch_guesses(pp, n, e, ev.data(), g.data(), rm.data(), code, ce, y, c, o, K, gs, dc, nthreads);
      },
      py::arg("ptr"), py::arg("ec"), py::arg("ev"), py::arg("g"), py::arg("rm"), py::arg("cert"), py::arg("labels"),
      py::arg("cut"), py::arg("order"), py::arg("guess"), py::arg("decided"), py::arg("nthreads") = 0);

  m.def(
      "sketch_keeps",
      [](const py::array& ptr, const py::array& ec, const py::array& ev, const py::array& rm, const py::array& labels,
         const py::array& nudged, const py::array& keep, const py::array& decided, int nthreads) {
        const int64_t n = ptr.ndim() == 1 ? int64_t(ptr.shape(0)) - 1 : -1;
        if (n < 0) throw py::value_error("sketch_keeps: bad ptr");
        const int64_t* pp = in_ptr<int64_t>(ptr, n + 1, "ptr");
        const int64_t ne = pp[n];
        const int code = dtype_code(ev.dtype());
        auto same = [&](const py::array& a, py::ssize_t size) {
          return a.ndim() == 1 && a.shape(0) == size && (a.flags() & py::array::c_style) && dtype_code(a.dtype()) == code;
        };
        if (!same(ev, ne) || !same(rm, n)) throw py::value_error("sketch_keeps: bad value arrays");
        for (int64_t i = 0; i < n; ++i)
          if (pp[i + 1] < pp[i] || pp[i] < 0) throw py::value_error("sketch_keeps: bad ptr");
        const int64_t* e = in_ptr<int64_t>(ec, ne, "ec");
        const int64_t* y = in_ptr<int64_t>(labels, n, "labels");
        const double* nu = in_ptr<double>(nudged, n, "nudged");
        auto out8 = [&](const py::array& a) {
          if (a.ndim() != 1 || a.shape(0) != n || a.itemsize() != 1 || !a.writeable() || !(a.flags() & py::array::c_style))
            throw py::value_error("sketch_keeps: bad output");
          return static_cast<uint8_t*>(const_cast<void*>(a.data()));
        };
        uint8_t* kp = out8(keep);
        uint8_t* dp = out8(decided);
        py::gil_scoped_release nogil;
        sketch_keeps(pp, n, e, ev.data(), rm.data(), code, y, nu, kp, dp, nthreads);
      },
      py::arg("ptr"), py::arg("ec"), py::arg("ev"), py::arg("rm"), py::arg("labels"), py::arg("nudged"),
      py::arg("keep"), py::arg("decided"), py::arg("nthreads") = 0);

  m.def(
      "group_sort_desc",
      [](const py::array& group, const py::array& key, const py::array& id, int64_t ngroups, int nthreads) {
        const int64_t m = group.ndim() == 1 ? group.shape(0) : -1;
        const int64_t* g = in_ptr<int64_t>(group, m, "group");
        const double* k = in_ptr<double>(key, m, "key");
        const int64_t* i = in_ptr<int64_t>(id, m, "id");
        if (ngroups < 0) throw py::value_error("group_sort_desc: ngroups < 0");
        for (int64_t e = 0; e < m; ++e)
          if (g[e] < 0 || g[e] >= ngroups) throw py::value_error("group_sort_desc: group out of range");
        py::array_t<int64_t> order(m), start(ngroups + 1);
        int64_t* op = order.mutable_data();
        int64_t* sp = start.mutable_data();
        {
          py::gil_scoped_release nogil;
          group_sort_desc(g, k, i, m, ngroups, op, sp, nthreads);
        }
        return py::make_tuple(order, start);
      },
      py::arg("group"), py::arg("key"), py::arg("id"), py::arg("ngroups"), py::arg("nthreads") = 0);

  m.def(
      "full_rows_tests",
      [](const py::array& P, const py::array& labels, const py::array& nudged, const py::array& cut, int nthreads) {
        const Mat M = as_mat(P);
        const int64_t* y = in_ptr<int64_t>(labels, M.n, "labels");
        const double* nu = in_ptr<double>(nudged, M.n, "nudged");
        const double* ct = in_ptr<double>(cut, M.k, "cut");
        for (int64_t i = 0; i < M.n; ++i)
          if (y[i] < 0 || y[i] >= M.k) throw py::value_error("full_rows_tests: label out of range");
        py::array_t<uint8_t> keep(M.n);
        py::array_t<int64_t> npass(M.n), first(M.n);
        uint8_t* kp = keep.mutable_data();
        int64_t* np_ = npass.mutable_data();
        int64_t* fp = first.mutable_data();
        {
          py::gil_scoped_release nogil;
          full_rows_tests(M, y, nu, ct, kp, np_, fp, nthreads);
        }
        return py::make_tuple(keep, npass, first);
      },
      py::arg("P"), py::arg("labels"), py::arg("nudged"), py::arg("cut"), py::arg("nthreads") = 0);

  m.def(
      "sketch_rows",
      [](const py::array& P, const py::array& labels, int64_t mmin, int64_t cap, const py::object& floor, double tau,
         const py::array& cls, const py::array& vals, const py::array& count, const py::array& rest,
         const py::array& certified, const py::array& given, int nthreads) {
        const Mat M = as_mat(P);
        if (mmin < 1 || cap < mmin) throw py::value_error("sketch_rows: need 1 <= mmin <= cap");
        const int64_t cp = std::min(cap, M.k);
        auto ok = [&](const py::array& a, py::ssize_t size, bool same_dtype) {
          return a.ndim() >= 1 && a.size() == size && (a.flags() & py::array::c_style) && a.writeable() &&
                 (!same_dtype || a.dtype().is(P.dtype()) || a.dtype().equal(P.dtype()));
        };
        if (!py::isinstance<py::array_t<int32_t>>(cls) || !py::isinstance<py::array_t<int32_t>>(count) ||
            !py::isinstance<py::array_t<uint8_t>>(certified) || !ok(cls, M.n * cp, false) ||
            !ok(vals, M.n * cp, true) || !ok(count, M.n, false) || !ok(rest, M.n, true) || !ok(certified, M.n, false) ||
            !ok(given, M.n, true))
          throw py::value_error("sketch_rows: bad output arrays");
        const int64_t* y = in_ptr<int64_t>(labels, M.n, "labels");
        for (int64_t i = 0; i < M.n; ++i)
          if (y[i] < 0 || y[i] >= M.k) throw py::value_error("sketch_rows: label out of range");
        const double* fl = nullptr;
        py::array_t<double> fa;
        if (!floor.is_none()) {
          fa = py::array_t<double, py::array::c_style | py::array::forcecast>(floor);
          if (fa.size() != M.k) throw py::value_error("sketch_rows: floor needs K entries");
          fl = fa.data();
        }
        int32_t* c = static_cast<int32_t*>(const_cast<void*>(cls.data()));
        void* v = const_cast<void*>(vals.data());
        int32_t* n = static_cast<int32_t*>(const_cast<void*>(count.data()));
        void* r = const_cast<void*>(rest.data());
        uint8_t* ce = static_cast<uint8_t*>(const_cast<void*>(certified.data()));
        void* gv = const_cast<void*>(given.data());
        py::gil_scoped_release nogil;
        sketch_rows(M, y, mmin, cap, fl, tau, c, v, n, r, ce, gv, nthreads);
      },
      py::arg("P"), py::arg("labels"), py::arg("mmin"), py::arg("cap"), py::arg("floor"), py::arg("tau"),
      py::arg("cls"), py::arg("vals"), py::arg("count"), py::arg("rest"), py::arg("certified"),
      py::arg("given"), py::arg("nthreads") = 0);

  m.def(
      "round_rows",
      [](const py::array& values, int nthreads) {
        if (!py::isinstance<py::array_t<double>>(values) || values.ndim() != 2 ||
            !(values.flags() & py::array::c_style))
          throw py::value_error("round_rows needs a C-contiguous float64 matrix");
        const int64_t rows = values.shape(0), n = values.shape(1);
        py::array_t<int64_t> out({rows, n});
        const double* v = static_cast<const double*>(values.data());
        int64_t* o = out.mutable_data();
        {
          py::gil_scoped_release nogil;
          round_rows(v, rows, n, o, nthreads);
        }
        return out;
      },
      py::arg("values"), py::arg("nthreads") = 0);

  py::class_<TopCSelector>(m, "TopCSelector")
      .def(py::init<int64_t, int64_t, std::vector<int64_t>, std::vector<int64_t>, std::vector<int64_t>,
                    const std::vector<int64_t>&>(),
           py::arg("n_total"), py::arg("K"), py::arg("offsets"), py::arg("cols"), py::arg("caps"),
           py::arg("class_counts"))
      .def(
          "feed",
          [](TopCSelector& self, const py::array& P, const py::array& labels, int64_t row0, int nthreads,
             const py::object& ub) {
            const Mat M = as_mat(P);
            const int64_t* y = in_ptr<int64_t>(labels, M.n, "labels");
            const double* u = ub.is_none() ? nullptr : in_ptr<double>(py::cast<py::array>(ub), M.n, "ub");
            py::gil_scoped_release nogil;
            self.feed(M, y, row0, nthreads, u);
          },
          py::arg("P"), py::arg("labels"), py::arg("row0"), py::arg("nthreads") = 0, py::arg("ub") = py::none())
      .def(
          "finish",
          [](const TopCSelector& self, const py::object& mask, const py::object& tied) {
            uint8_t* mk = out_ptr<uint8_t>(mask, self.n_total(), "mask");
            uint8_t* td = out_ptr<uint8_t>(tied, self.num_selections(), "tied");
            self.finish(mk, td);
          },
          py::arg("mask"), py::arg("tied") = py::none())
      .def("kept", [](const TopCSelector& self) {
        py::array_t<int64_t> sizes(self.num_selections());
        const int64_t m = self.num_kept();
        py::array_t<double> keys(m);
        py::array_t<int64_t> rows(m);
        self.kept(sizes.mutable_data(), keys.mutable_data(), rows.mutable_data());
        return py::make_tuple(sizes, keys, rows);
      });
}

}  // namespace ls
