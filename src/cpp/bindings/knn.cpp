// Python bindings of the exact k-NN kernels (labelsift._core, prefix knn_).
// The GIL is released around every kernel; arrays arrive already checked and
// in a supported dtype (labelsift/_knn/search.py prepares them).
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/arrays.h"
#include "knn/amx.h"
#include "knn/kernels.h"
#include "knn/math.h"

namespace ls {

namespace py = pybind11;
using namespace bind;

namespace {

// G of the fused search and of the bf16 split: float32 rows with unit column stride.
void check_float32_rows(const py::array& G) {
  if (!py::isinstance<py::array_t<float>>(G) || G.ndim() != 2 || G.strides(1) != 4 || G.strides(0) % 4 ||
      G.strides(0) < 4 * G.shape(1))
    throw py::value_error("labelsift._core: G must be float32 rows with unit column stride");
}

// A C-contiguous array of dtype T with `size` elements (any shape).
template <class T>
const T* c_array(const py::array& a, int64_t size, const char* what) {
  if (!py::isinstance<py::array_t<T>>(a) || a.size() != size || !(a.flags() & py::array::c_style))
    throw py::value_error(std::string("labelsift._core: bad input array ") + what);
  return static_cast<const T*>(a.data());
}

// (a_hi, a_lo, b_hi, b_lo) from knn_bf16_split; the arrays must outlive the use. A layout given as
// two empty arrays is absent (null pointers); `need_a` / `need_b` require it.
knn::Bf16Split as_split(const py::object& split, bool need_a = true, bool need_b = true) {
  py::tuple t = split.cast<py::tuple>();
  if (t.size() != 4) throw py::value_error("labelsift._core: split = (a_hi, a_lo, b_hi, b_lo)");
  py::array ah = t[0], al = t[1], bh = t[2], bl = t[3];
  knn::Bf16Split bs;
  const bool has_a = ah.size() > 0 || al.size() > 0, has_b = bh.size() > 0 || bl.size() > 0;
  if ((need_a && !has_a) || (need_b && !has_b) || (!has_a && !has_b))
    throw py::value_error("labelsift._core: the split lacks an operand layout this kernel reads");
  if (has_a) {
    if (ah.ndim() != 2) throw py::value_error("labelsift._core: bad split");
    bs.np = ah.shape(0), bs.dp = ah.shape(1);
  } else {
    if (bh.ndim() != 3 || bh.shape(2) != 16) throw py::value_error("labelsift._core: bad split");
    bs.np = bh.shape(0) * 16, bs.dp = bh.shape(1) * 2;
  }
  if (bs.np % 32 || bs.dp % 32) throw py::value_error("labelsift._core: bad split shape");
  if (has_a) {
    bs.a_hi = c_array<uint16_t>(ah, bs.np * bs.dp, "a_hi");
    bs.a_lo = c_array<uint16_t>(al, bs.np * bs.dp, "a_lo");
  }
  if (has_b) {
    bs.b_hi = c_array<uint32_t>(bh, bs.np * bs.dp / 2, "b_hi");
    bs.b_lo = c_array<uint32_t>(bl, bs.np * bs.dp / 2, "b_lo");
  }
  for (const void* q : {static_cast<const void*>(bs.a_hi), static_cast<const void*>(bs.a_lo),
                        static_cast<const void*>(bs.b_hi), static_cast<const void*>(bs.b_lo)})
    if (reinterpret_cast<uintptr_t>(q) % 64) throw py::value_error("labelsift._core: split arrays must be 64-byte aligned");
  return bs;
}

template <class T>
T* out2(py::array a, int64_t n, int64_t m, const char* what) {
  if (!py::isinstance<py::array_t<T>>(a) || a.ndim() != 2 || a.shape(0) != n || a.shape(1) != m ||
      !(a.flags() & py::array::c_style) || !a.writeable())
    throw py::value_error(std::string("labelsift._core: bad array ") + what);
  return static_cast<T*>(a.mutable_data());
}

struct Specs {
  int ne = 0;
  int64_t N = -1, m = -1;
  std::vector<const float*> a, b;
  std::vector<float*> hk;
  std::vector<int64_t*> hi;
};

// The key specs of the symmetric kernels: lists a, b (float32, N) and heaps
// hk (float32, N x m), hi (int64, N x m), one of each per spec. The lists
// keep the arrays alive for the duration of the call.
Specs specs(const py::list& a, const py::list& b, const py::list& hk, const py::list& hi) {
  Specs s;
  s.ne = int(py::len(a));
  if (s.ne < 1 || s.ne > 8 || py::len(b) != size_t(s.ne) || py::len(hk) != size_t(s.ne) ||
      py::len(hi) != size_t(s.ne))
    throw py::value_error("labelsift._core: one to eight key specs, with a, b and heaps for each");
  for (int e = 0; e < s.ne; ++e) {
    py::array he = hk[e], ie = hi[e], ae = a[e], be = b[e];
    if (he.ndim() != 2) throw py::value_error("labelsift._core: bad heap keys");
    if (e == 0) s.N = he.shape(0), s.m = he.shape(1);
    s.hk.push_back(out2<float>(he, s.N, s.m, "heap keys"));
    s.hi.push_back(out2<int64_t>(ie, s.N, s.m, "heap indices"));
    s.a.push_back(in_ptr<float>(ae, s.N, "a"));
    s.b.push_back(in_ptr<float>(be, s.N, "b"));
  }
  if (s.m < 1) throw py::value_error("labelsift._core: heaps need at least one column");
  return s;
}

}  // namespace

void bind_knn(py::module_& m) {
  m.def(
      "knn_norms2",
      [](const py::array& X, int nthreads) {
        const Mat M = as_mat(X);
        py::array_t<double> out(M.n);
        double* o = out.mutable_data();
        {
          py::gil_scoped_release nogil;
          knn::norms2(M, o, nthreads);
        }
        return out;
      },
      py::arg("X"), py::arg("nthreads") = 0);

  m.def(
      "knn_tile_select",
      [](const py::array& S, const py::array& a, const py::array& b, int64_t c0, int64_t self0, const py::array& hk,
         const py::array& hi, int nthreads) {
        if (!py::isinstance<py::array_t<float>>(S) || S.ndim() != 2 || S.strides(1) != 4 || S.strides(0) % 4)
          throw py::value_error("labelsift._core: S must be a float32 tile with unit column stride");
        const int64_t nq = S.shape(0), nc = S.shape(1), m = hk.ndim() == 2 ? hk.shape(1) : 0;
        const float* ap = in_ptr<float>(a, nc, "a");
        const float* bp = in_ptr<float>(b, nc, "b");
        float* hkp = out2<float>(hk, nq, m, "heap keys");
        int64_t* hip = out2<int64_t>(hi, nq, m, "heap indices");
        const float* sp = static_cast<const float*>(S.data());
        const int64_t ls = S.strides(0) / 4;
        {
          py::gil_scoped_release nogil;
          knn::tile_select(sp, nq, nc, ls, ap, bp, c0, self0, hkp, hip, m, nthreads);
        }
      },
      py::arg("S"), py::arg("a"), py::arg("b"), py::arg("c0"), py::arg("self0"), py::arg("hk"), py::arg("hi"),
      py::arg("nthreads") = 0);

  m.def(
      "knn_tile_select_sym",
      [](const py::array& S, int64_t i0, int64_t j0, int64_t tstart, const py::list& a, const py::list& b,
         const py::list& hk, const py::list& hi, int nthreads) {
        if (!py::isinstance<py::array_t<float>>(S) || S.ndim() != 2 || S.strides(1) != 4 || S.strides(0) % 4)
          throw py::value_error("labelsift._core: S must be a float32 tile with unit column stride");
        const int64_t nI = S.shape(0), nJ = S.shape(1);
        Specs sp_ = specs(a, b, hk, hi);
        const int64_t N = sp_.N;
        if (i0 < 0 || j0 < i0 || i0 + nI > N || j0 + nJ > N || tstart < 0 || tstart > nJ ||
            (tstart < nJ && j0 + tstart < i0 + nI))
          throw py::value_error("labelsift._core: symmetric tile out of range");
        const float* sp = static_cast<const float*>(S.data());
        const int64_t ls = S.strides(0) / 4;
        {
          py::gil_scoped_release nogil;
          knn::tile_select_sym(sp, nI, nJ, ls, i0, j0, tstart, sp_.ne, sp_.a.data(), sp_.b.data(), sp_.hk.data(),
                               sp_.hi.data(), sp_.m, nthreads);
        }
      },
      py::arg("S"), py::arg("i0"), py::arg("j0"), py::arg("tstart"), py::arg("a"), py::arg("b"), py::arg("hk"),
      py::arg("hi"), py::arg("nthreads") = 0);

  m.def("knn_sym_rounds", &knn::sym_rounds, py::arg("nblocks"));
  m.def("knn_isa", []() { return py::make_tuple(knn::gram_isa(), knn::sel_isa()); });

  m.def(
      "knn_sym_search",
      [](const py::array& G, int64_t block, int64_t round0, int64_t round1, const py::list& a, const py::list& b,
         const py::list& hk, const py::list& hi, int nthreads, const py::object& split) {
        check_float32_rows(G);
        Specs sp_ = specs(a, b, hk, hi);
        if (sp_.N != G.shape(0)) throw py::value_error("labelsift._core: heaps and G differ in rows");
        if (block < 1) throw py::value_error("labelsift._core: block must be positive");
        const float* g = static_cast<const float*>(G.data());
        const int64_t N = G.shape(0), d = G.shape(1), ldg = G.strides(0) / 4;
        knn::Bf16Split bs;
        const knn::Bf16Split* amx = nullptr;
        if (!split.is_none()) {
          if (!knn::amx_usable()) throw py::value_error("labelsift._core: AMX is not usable here");
          bs = as_split(split);
          if (bs.np < N || bs.dp < d || block % 32)
            throw py::value_error("labelsift._core: split shape or block (a multiple of 32) do not fit G");
          amx = &bs;
        }
        {
          py::gil_scoped_release nogil;
          knn::sym_search(g, N, d, ldg, block, round0, round1, sp_.ne, sp_.a.data(), sp_.b.data(), sp_.hk.data(),
                          sp_.hi.data(), sp_.m, nthreads, amx);
        }
      },
      py::arg("G"), py::arg("block"), py::arg("round0"), py::arg("round1"), py::arg("a"), py::arg("b"),
      py::arg("hk"), py::arg("hi"), py::arg("nthreads") = 0, py::arg("split") = py::none());

  m.def(
      "knn_amx_tile_select",
      [](const py::object& qsplit, const py::object& dsplit, int64_t q0, int64_t n, int64_t c0, int64_t nc,
         const py::list& a, const py::list& b, int64_t self0, const py::list& hk, const py::list& hi, int nthreads) {
        if (!knn::amx_usable()) throw py::value_error("labelsift._core: AMX is not usable here");
        const knn::Bf16Split qs = as_split(qsplit, true, false), ds = as_split(dsplit, false, true);
        const int ne = int(py::len(a));
        if (ne < 1 || ne > 8 || py::len(b) != size_t(ne) || py::len(hk) != size_t(ne) || py::len(hi) != size_t(ne))
          throw py::value_error("labelsift._core: one to eight key specs, with a, b and heaps for each");
        std::vector<const float*> ap, bp;
        std::vector<float*> hp;
        std::vector<int64_t*> ip;
        int64_t m = -1;
        for (int e = 0; e < ne; ++e) {
          py::array he = hk[e], ie = hi[e], ae = a[e], be = b[e];
          if (he.ndim() != 2) throw py::value_error("labelsift._core: bad heap keys");
          if (e == 0) m = he.shape(1);
          hp.push_back(out2<float>(he, n, m, "heap keys"));
          ip.push_back(out2<int64_t>(ie, n, m, "heap indices"));
          if (ae.ndim() != 1 || be.ndim() != 1 || ae.shape(0) < c0 + nc || be.shape(0) < c0 + nc)
            throw py::value_error("labelsift._core: a and b must cover the tile's columns");
          ap.push_back(in_ptr<float>(ae, ae.shape(0), "a"));
          bp.push_back(in_ptr<float>(be, be.shape(0), "b"));
        }
        py::gil_scoped_release nogil;
        knn::amx_tile_select(qs, ds, q0, n, c0, nc, ne, ap.data(), bp.data(), self0, hp.data(), ip.data(), m,
                             nthreads);
      },
      py::arg("qsplit"), py::arg("dsplit"), py::arg("q0"), py::arg("n"), py::arg("c0"), py::arg("nc"), py::arg("a"),
      py::arg("b"), py::arg("self0"), py::arg("hk"), py::arg("hi"), py::arg("nthreads") = 0);
  m.def("knn_amx_usable", []() { return knn::amx_usable(); });
  m.def(
      "knn_amx_gram",
      [](const py::object& split, int64_t i0, int64_t nI, int64_t j0, int64_t nJ) {
        // One AMX Gram tile (for the tests): rows i0.. and j0.. (multiples of 32) of the split copy,
        // returned as (nI rounded up to 32) x (nJ rounded up to 32) float32.
        if (!knn::amx_usable()) throw py::value_error("labelsift._core: AMX is not usable here");
        const knn::Bf16Split bs = as_split(split);
        const int64_t rI = (nI + 31) / 32 * 32, rJ = (nJ + 31) / 32 * 32;
        if (i0 < 0 || j0 < 0 || i0 % 32 || j0 % 32 || nI < 1 || nJ < 1 || i0 + rI > bs.np || j0 + rJ > bs.np)
          throw py::value_error("labelsift._core: bad tile");
        py::array_t<float> S({rI, rJ});
        float* o = S.mutable_data();
        {
          py::gil_scoped_release nogil;
          knn::amx_thread_begin();
          knn::gram_tile_amx(bs, i0, nI, j0, nJ, o, rJ);
          knn::amx_thread_end();
        }
        return S;
      },
      py::arg("split"), py::arg("i0"), py::arg("nI"), py::arg("j0"), py::arg("nJ"));
  m.def(
      "knn_bf16_split",
      [](const py::array& G, const py::tuple& split, int nthreads) {
        // Fills split = (a_hi, a_lo) uint16 (np x dp), (b_hi, b_lo) uint32 (np / 16 x dp / 2 x 16),
        // 64-byte aligned, np and dp multiples of 32 (knn/amx.h)
        check_float32_rows(G);
        const int64_t N = G.shape(0), d = G.shape(1), ldg = G.strides(0) / 4;
        const knn::Bf16Split bs = as_split(split, false, false);
        if (bs.np < N || bs.dp < d) throw py::value_error("labelsift._core: split smaller than G");
        for (int t = 0; t < 4; ++t)
          if (!py::cast<py::array>(split[t]).writeable()) throw py::value_error("labelsift._core: split read-only");
        const float* g = static_cast<const float*>(G.data());
        {
          py::gil_scoped_release nogil;
          knn::bf16_split(g, N, d, ldg, bs.np, bs.dp, const_cast<uint16_t*>(bs.a_hi), const_cast<uint16_t*>(bs.a_lo),
                          const_cast<uint32_t*>(bs.b_hi), const_cast<uint32_t*>(bs.b_lo), nthreads);
        }
      },
      py::arg("G"), py::arg("split"), py::arg("nthreads") = 0);

  m.def(
      "knn_rerank",
      [](const py::array& Q, const py::array& D, const py::array& qn, const py::array& dn, const py::array& hi,
         int metric, int64_t k, const py::array& out_idx, const py::array& out_key, int nthreads) {
        const Mat MQ = as_mat(Q), MD = as_mat(D);
        if (MQ.k != MD.k) throw py::value_error("labelsift._core: queries and database differ in d");
        const int64_t m = hi.ndim() == 2 ? hi.shape(1) : 0;
        if (m < k) throw py::value_error("labelsift._core: fewer candidates than k");
        const double* q = in_ptr<double>(qn, MQ.n, "query norms");
        const double* d = in_ptr<double>(dn, MD.n, "database norms");
        if (!py::isinstance<py::array_t<int64_t>>(hi) || hi.shape(0) != MQ.n || !(hi.flags() & py::array::c_style))
          throw py::value_error("labelsift._core: bad candidate array");
        const int64_t* h = static_cast<const int64_t*>(hi.data());
        for (int64_t t = 0; t < MQ.n * m; ++t)
          if (h[t] < -1 || h[t] >= MD.n) throw py::index_error("candidate index out of range");
        int64_t* oi = out2<int64_t>(out_idx, MQ.n, k, "out_idx");
        double* ok = out2<double>(out_key, MQ.n, k, "out_key");
        {
          py::gil_scoped_release nogil;
          knn::rerank(MQ, MD, q, d, h, m, metric, k, oi, ok, nthreads);
        }
      },
      py::arg("Q"), py::arg("D"), py::arg("qn"), py::arg("dn"), py::arg("hi"), py::arg("metric"), py::arg("k"),
      py::arg("out_idx"), py::arg("out_key"), py::arg("nthreads") = 0);

  m.def(
      "knn_exhaustive",
      [](const py::array& Q, const py::array& rows, const py::object& self, const py::array& D, const py::array& qn,
         const py::array& dn, int metric, int64_t k, int nthreads) {
        const Mat MQ = as_mat(Q), MD = as_mat(D);
        if (MQ.k != MD.k) throw py::value_error("labelsift._core: queries and database differ in d");
        const int64_t nr = rows.ndim() == 1 ? rows.shape(0) : -1;
        const int64_t* r = in_ptr<int64_t>(rows, nr, "rows");
        for (int64_t t = 0; t < nr; ++t)
          if (r[t] < 0 || r[t] >= MQ.n) throw py::index_error("row index out of range");
        const int64_t* s = self.is_none() ? nullptr : in_ptr<int64_t>(py::cast<py::array>(self), nr, "self");
        const double* q = in_ptr<double>(qn, MQ.n, "query norms");
        const double* d = in_ptr<double>(dn, MD.n, "database norms");
        py::array_t<int64_t> oi({nr, k});
        py::array_t<double> ok({nr, k});
        int64_t* oip = oi.mutable_data();
        double* okp = ok.mutable_data();
        {
          py::gil_scoped_release nogil;
          knn::exhaustive(MQ, r, nr, s, MD, q, d, metric, k, oip, okp, nthreads);
        }
        return py::make_tuple(oi, ok);
      },
      py::arg("Q"), py::arg("rows"), py::arg("self"), py::arg("D"), py::arg("qn"), py::arg("dn"), py::arg("metric"),
      py::arg("k"), py::arg("nthreads") = 0);

  m.def(
      "knn_pairwise_row_sums",
      [](const py::array_t<double, py::array::c_style | py::array::forcecast>& X) {
        if (X.ndim() != 2) throw py::value_error("labelsift._core: expected a 2-D float64 array");
        const int64_t n = X.shape(0), k = X.shape(1);
        py::array_t<double> out(n);
        const double* x = X.data();
        double* o = out.mutable_data();
        for (int64_t i = 0; i < n; ++i) o[i] = knn::pairwise_sum([&](int64_t t) { return x[i * k + t]; }, 0, k);
        return out;
      },
      py::arg("X"),
      "Row sums by knn/math.h's replica of NumPy's pairwise summation (what the CUDA vote kernels use).");
}

}  // namespace ls
