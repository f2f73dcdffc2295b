// pybind11 bindings of the CUDA module. Importing never needs a GPU: the
// runtime is linked statically and the query reports why a device is missing.
//
// The kernels take raw device pointers, sizes, strides (in elements) and a
// cudaStream_t handle, all as Python ints (0 = the legacy default stream):
// the module never compiles against torch or CuPy. labelsift/_common/
// cuda_arrays.py turns the caller's arrays into these. The GIL is released
// around every kernel and copy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>

#include "cl/cuda_kernels.h"
#include "common/device_query.h"
#include "knn/knn_cuda.h"
#include "noise/nz_cuda.h"
#include "sinkhorn/kernels.h"
#include "sinkhorn/sk_cuda.h"

namespace py = pybind11;
using ls::cuda::DevMat;
using ls::cuda::DeviceBuffer;

namespace {

DevMat dev_mat(uintptr_t data, int64_t n, int64_t k, int64_t s0, int64_t s1, int dtype) {
  if (data == 0 && n * k > 0) throw py::value_error("labelsift._cuda: null device pointer");
  if (n < 0 || k < 1) throw py::value_error("labelsift._cuda: bad shape");
  if (dtype < 0 || dtype > 2) throw py::value_error("labelsift._cuda: unsupported dtype code");
  return DevMat{data, n, k, s0, s1, dtype};
}

// A writeable C-contiguous host array's buffer (the host side of a copy).
void* host_ptr(const py::array& a, bool writeable) {
  if (!(a.flags() & py::array::c_style)) throw py::value_error("labelsift._cuda: host array must be C-contiguous");
  if (writeable && !a.writeable()) throw py::value_error("labelsift._cuda: host array is read-only");
  return const_cast<void*>(a.data());
}

// A host float64 vector of n values (in: C-contiguous; out: also writeable).
double* host_f64(const py::array& a, int64_t n, bool writeable, const char* what) {
  if (a.dtype().kind() != 'f' || a.itemsize() != 8 || a.size() != n)
    throw py::value_error(std::string("labelsift._cuda: ") + what + " must be " + std::to_string(n) + " float64 values");
  return static_cast<double*>(host_ptr(a, writeable));
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "labelsift CUDA kernels (cudart linked statically)";
  m.def("device_query", []() {
    const ls::DeviceQuery q = ls::query_devices();
    py::dict d;
    d["count"] = q.count;
    d["runtime_version"] = q.runtime_version;
    d["driver_version"] = q.driver_version;
    d["reason"] = q.reason;
    d["names"] = q.names;
    d["compute_capability"] = q.cc;
    d["memory_bytes"] = q.memory;
    return d;
  });

  m.def("pointer_device", &ls::cuda::pointer_device, py::arg("ptr"),
        "The device a pointer belongs to (ValueError for host memory).");

  py::class_<DeviceBuffer, std::unique_ptr<DeviceBuffer>>(m, "DeviceBuffer",
                                                          "Device memory (cudaMalloc), freed with the object")
      .def(py::init<size_t, int>(), py::arg("nbytes"), py::arg("device"))
      .def_property_readonly("ptr", &DeviceBuffer::ptr)
      .def_property_readonly("nbytes", &DeviceBuffer::nbytes)
      .def_property_readonly("device", &DeviceBuffer::device);

  m.def(
      "copy_htod",
      [](uintptr_t dst, const py::array& src, int device, uintptr_t stream) {
        void* s = host_ptr(src, false);
        const size_t nb = size_t(src.nbytes());
        py::gil_scoped_release nogil;
        ls::cuda::copy_htod(dst, s, nb, device, stream);
      },
      py::arg("dst"), py::arg("src"), py::arg("device"), py::arg("stream"));
  m.def(
      "copy_dtoh",
      [](const py::array& dst, uintptr_t src, int device, uintptr_t stream) {
        void* d = host_ptr(dst, true);
        const size_t nb = size_t(dst.nbytes());
        py::gil_scoped_release nogil;
        ls::cuda::copy_dtoh(d, src, nb, device, stream);
      },
      py::arg("dst"), py::arg("src"), py::arg("device"), py::arg("stream"));
  m.def("memset", &ls::cuda::memset_d, py::arg("dst"), py::arg("value"), py::arg("nbytes"), py::arg("device"),
        py::arg("stream"));
  m.def(
      "synchronize",
      [](int device, uintptr_t stream) {
        py::gil_scoped_release nogil;
        ls::cuda::synchronize(device, stream);
      },
      py::arg("device"), py::arg("stream"));

  m.def(
      "gather_given",
      [](uintptr_t P, int64_t n, int64_t k, int64_t s0, int64_t s1, int dtype, uintptr_t labels, uintptr_t out,
         int device, uintptr_t stream) {
        const DevMat M = dev_mat(P, n, k, s0, s1, dtype);
        py::gil_scoped_release nogil;
        ls::cuda::gather_given(M, labels, out, device, stream);
      },
      py::arg("P"), py::arg("n"), py::arg("k"), py::arg("s0"), py::arg("s1"), py::arg("dtype"), py::arg("labels"),
      py::arg("out"), py::arg("device"), py::arg("stream"));

  m.def(
      "row_pass",
      [](uintptr_t P, int64_t n, int64_t k, int64_t s0, int64_t s1, int dtype, uintptr_t labels, uintptr_t cut,
         bool cut_f32, uintptr_t guess, uintptr_t argmax, uintptr_t keep, uintptr_t max_other, uintptr_t cj,
         double lo, double hi, double sum_tol, int device, uintptr_t stream) {
        const DevMat M = dev_mat(P, n, k, s0, s1, dtype);
        ls::cuda::DevRowError e;
        {
          py::gil_scoped_release nogil;
          e = ls::cuda::row_pass(M, labels, cut, cut_f32, guess, argmax, keep, max_other, cj, lo, hi, sum_tol,
                                 device, stream);
        }
        return py::make_tuple(e.row, e.code, e.col);
      },
      py::arg("P"), py::arg("n"), py::arg("k"), py::arg("s0"), py::arg("s1"), py::arg("dtype"), py::arg("labels"),
      py::arg("cut"), py::arg("cut_f32"), py::arg("guess"), py::arg("argmax"), py::arg("keep"),
      py::arg("max_other"), py::arg("cj"), py::arg("lo"), py::arg("hi"), py::arg("sum_tol"), py::arg("device"),
      py::arg("stream"),
      "The row pass on the device; returns (first invalid row or -1, code, column) and waits for the stream.");

  m.def(
      "pair_margins",
      [](uintptr_t P, int64_t n, int64_t k, int64_t s0, int64_t s1, int dtype, uintptr_t labels, uintptr_t rows,
         uintptr_t local, int64_t m, uintptr_t pair_off, uintptr_t cols, uintptr_t pair_base, uintptr_t out,
         int device, uintptr_t stream) {
        const DevMat M = dev_mat(P, n, k, s0, s1, dtype);
        py::gil_scoped_release nogil;
        ls::cuda::pair_margins(M, labels, rows, local, m, pair_off, cols, pair_base, out, device, stream);
      },
      py::arg("P"), py::arg("n"), py::arg("k"), py::arg("s0"), py::arg("s1"), py::arg("dtype"), py::arg("labels"),
      py::arg("rows"), py::arg("local"), py::arg("m"), py::arg("pair_off"), py::arg("cols"), py::arg("pair_base"),
      py::arg("out"), py::arg("device"), py::arg("stream"));
  // ---- Sinkhorn (sinkhorn/sk_cuda.h) ----------------------------------------
  m.def("sk_work_bytes", &ls::cuda::sk_work_bytes, py::arg("n"), py::arg("k"),
        "Bytes of the work buffer sk_pass / sk_col_lse need for an (n, k) matrix.");
  m.def(
      "sk_pass",
      [](uintptr_t X, int64_t n, int64_t k, int64_t s0, int64_t s1, int dtype, double lam, const py::array& f,
         uintptr_t b, double b0, const py::array& colsum, const py::array& colmax, uintptr_t labels, uintptr_t g,
         uintptr_t plan, int plan_dtype, bool unit_rows, bool check, uintptr_t work, size_t work_bytes, int device,
         uintptr_t stream) {
        ls::cuda::SkPassArgs a{};
        a.X = dev_mat(X, n, k, s0, s1, dtype);
        a.lam = lam;
        a.f = host_f64(f, k, false, "f");
        a.b = b;
        a.b0 = b0;
        a.colsum = host_f64(colsum, k, true, "colsum");
        a.colmax = host_f64(colmax, k, true, "colmax");
        a.labels = labels;
        a.g = g;
        a.plan = plan;
        a.plan_dtype = plan_dtype;
        a.plan_unit_rows = unit_rows;
        a.check = check;
        a.work = work;
        a.work_bytes = work_bytes;
        py::gil_scoped_release nogil;
        return ls::cuda::sk_pass(a, device, stream);
      },
      py::arg("X"), py::arg("n"), py::arg("k"), py::arg("s0"), py::arg("s1"), py::arg("dtype"), py::arg("lam"),
      py::arg("f"), py::arg("b"), py::arg("b0"), py::arg("colsum"), py::arg("colmax"), py::arg("labels"),
      py::arg("g"), py::arg("plan"), py::arg("plan_dtype"), py::arg("unit_rows"), py::arg("check"),
      py::arg("work"), py::arg("work_bytes"), py::arg("device"), py::arg("stream"),
      "One fused Sinkhorn pass on the device (f, colsum, colmax: host float64 K-vectors; the rest device "
      "pointers, 0 = not wanted); waits for the stream; returns the first non-finite row or -1.");
  m.def(
      "sk_col_lse",
      [](uintptr_t X, int64_t n, int64_t k, int64_t s0, int64_t s1, int dtype, double lam, uintptr_t lb, double lb0,
         const py::array& M, const py::array& S, uintptr_t work, size_t work_bytes, int device, uintptr_t stream) {
        const DevMat D = dev_mat(X, n, k, s0, s1, dtype);
        const int64_t rpc = ls::sk::chunk_rows(n);
        const int64_t nch = (n + rpc - 1) / rpc;
        double* mp = host_f64(M, nch * k, true, "M");
        double* sp = host_f64(S, nch * k, true, "S");
        py::gil_scoped_release nogil;
        ls::cuda::sk_col_lse(D, lam, lb, lb0, mp, sp, work, work_bytes, device, stream);
      },
      py::arg("X"), py::arg("n"), py::arg("k"), py::arg("s0"), py::arg("s1"), py::arg("dtype"), py::arg("lam"),
      py::arg("lb"), py::arg("lb0"), py::arg("M"), py::arg("S"), py::arg("work"), py::arg("work_bytes"),
      py::arg("device"), py::arg("stream"),
      "The column log-sum-exp pieces of the CPU's row chunks (M, S: host float64, nch x K), for sk_lse_finish.");

  // ---- exact k-NN (knn/knn_cuda.h) -------------------------------------------
  m.attr("knn_max_candidates") = ls::cuda::kKnnMaxCandidates;
  m.def(
      "knn_norms2",
      [](uintptr_t X, int64_t n, int64_t d, int64_t s0, int64_t s1, int dtype, uintptr_t out, int device,
         uintptr_t stream) {
        const DevMat M = dev_mat(X, n, d, s0, s1, dtype);
        py::gil_scoped_release nogil;
        ls::cuda::knn_norms2(M, out, device, stream);
      },
      py::arg("X"), py::arg("n"), py::arg("d"), py::arg("s0"), py::arg("s1"), py::arg("dtype"), py::arg("out"),
      py::arg("device"), py::arg("stream"), "float64 squared row norms (sequential over the columns) into out.");
  m.def(
      "knn_tile_select",
      [](uintptr_t S, int64_t nq, int64_t nc, int64_t ls, uintptr_t a, uintptr_t b, int64_t c0, int64_t self0,
         uintptr_t self_rows, uintptr_t hk, uintptr_t hi, int64_t mm, int device, uintptr_t stream) {
        py::gil_scoped_release nogil;
        ls::cuda::knn_tile_select(S, nq, nc, ls, a, b, c0, self0, self_rows, hk, hi, mm, device, stream);
      },
      py::arg("S"), py::arg("nq"), py::arg("nc"), py::arg("ls"), py::arg("a"), py::arg("b"), py::arg("c0"),
      py::arg("self0"), py::arg("self_rows"), py::arg("hk"), py::arg("hi"), py::arg("m"), py::arg("device"),
      py::arg("stream"),
      "The m smallest float32 keys a[j] + b[j] * S[r, j] of every tile row, into its (key, index) max-heap.");
  m.def(
      "knn_rerank",
      [](uintptr_t Q, int64_t nq, int64_t qs0, int64_t qs1, uintptr_t D, int64_t nd, int64_t ds0, int64_t ds1,
         int64_t d, int dtype, uintptr_t qn, uintptr_t dn, uintptr_t hi, int64_t mm, int metric, int64_t k,
         uintptr_t out_idx, uintptr_t out_key, int device, uintptr_t stream) {
        const DevMat MQ = dev_mat(Q, nq, d, qs0, qs1, dtype), MD = dev_mat(D, nd, d, ds0, ds1, dtype);
        py::gil_scoped_release nogil;
        ls::cuda::knn_rerank(MQ, MD, qn, dn, hi, mm, metric, k, out_idx, out_key, device, stream);
      },
      py::arg("Q"), py::arg("nq"), py::arg("qs0"), py::arg("qs1"), py::arg("D"), py::arg("nd"), py::arg("ds0"),
      py::arg("ds1"), py::arg("d"), py::arg("dtype"), py::arg("qn"), py::arg("dn"), py::arg("hi"), py::arg("m"),
      py::arg("metric"), py::arg("k"), py::arg("out_idx"), py::arg("out_key"), py::arg("device"), py::arg("stream"),
      "float64 keys of the candidates, the k best by (key, index).");
  m.def(
      "knn_exhaustive",
      [](uintptr_t Q, int64_t nq, int64_t qs0, int64_t qs1, uintptr_t rows, int64_t nr, uintptr_t self,
         uintptr_t dest, uintptr_t D, int64_t nd, int64_t ds0, int64_t ds1, int64_t d, int dtype, uintptr_t qn,
         uintptr_t dn, int metric, int64_t k, uintptr_t out_idx, uintptr_t out_key, int device, uintptr_t stream) {
        const DevMat MQ = dev_mat(Q, nq, d, qs0, qs1, dtype), MD = dev_mat(D, nd, d, ds0, ds1, dtype);
        py::gil_scoped_release nogil;
        ls::cuda::knn_exhaustive(MQ, rows, nr, self, dest, MD, qn, dn, metric, k, out_idx, out_key, device, stream);
      },
      py::arg("Q"), py::arg("nq"), py::arg("qs0"), py::arg("qs1"), py::arg("rows"), py::arg("nr"), py::arg("self"),
      py::arg("dest"), py::arg("D"), py::arg("nd"), py::arg("ds0"), py::arg("ds1"), py::arg("d"), py::arg("dtype"),
      py::arg("qn"), py::arg("dn"), py::arg("metric"), py::arg("k"), py::arg("out_idx"), py::arg("out_key"),
      py::arg("device"), py::arg("stream"), "The exhaustive float64 k best of the listed query rows.");

  m.def(
      "knn_votes",
      [](uintptr_t idx, int64_t n, int64_t k, int64_t s0, int64_t s1, bool idx32, uintptr_t labels,
         uintptr_t weights, int64_t K, int mode, uintptr_t out, int device, uintptr_t stream) {
        ls::cuda::VoteError e;
        {
          py::gil_scoped_release nogil;
          e = ls::cuda::knn_votes(idx, n, k, s0, s1, idx32, labels, weights, K, mode, out, device, stream);
        }
        return py::make_tuple(e.row, e.col);
      },
      py::arg("idx"), py::arg("n"), py::arg("k"), py::arg("s0"), py::arg("s1"), py::arg("idx32"), py::arg("labels"),
      py::arg("weights"), py::arg("K"), py::arg("mode"), py::arg("out"), py::arg("device"), py::arg("stream"),
      "Neighbour label counts / pred_probs / agreement on the device; returns the first bad index (row, col).");

  // ---- HOC / SimiFeat rounds (noise/nz_cuda.h) -----------------------------------
  m.def(
      "nz_normalize",
      [](uintptr_t X, int64_t n, int64_t d, int64_t s0, int64_t s1, int dtype, uintptr_t rows, int64_t mm,
         uintptr_t out, int device, uintptr_t stream) {
        const DevMat M = dev_mat(X, n, d, s0, s1, dtype);
        py::gil_scoped_release nogil;
        ls::cuda::nz_normalize(M, rows, mm, out, device, stream);
      },
      py::arg("X"), py::arg("n"), py::arg("d"), py::arg("s0"), py::arg("s1"), py::arg("dtype"), py::arg("rows"),
      py::arg("m"), py::arg("out"), py::arg("device"), py::arg("stream"),
      "The canonical float64 rows (HOC/SimiFeat) of X's listed rows into out (m x d).");
  m.def(
      "nz_row_hash",
      [](uintptr_t X, int64_t n, int64_t d, int64_t s0, int64_t s1, int dtype, uintptr_t out, int device,
         uintptr_t stream) {
        const DevMat M = dev_mat(X, n, d, s0, s1, dtype);
        py::gil_scoped_release nogil;
        ls::cuda::nz_row_hash(M, out, device, stream);
      },
      py::arg("X"), py::arg("n"), py::arg("d"), py::arg("s0"), py::arg("s1"), py::arg("dtype"), py::arg("out"),
      py::arg("device"), py::arg("stream"), "64-bit hashes of the rows' bytes.");
  m.def(
      "nz_cand_distances",
      [](uintptr_t x, int64_t mm, int64_t d, uintptr_t cand, int64_t c, uintptr_t dist, int device,
         uintptr_t stream) {
        py::gil_scoped_release nogil;
        ls::cuda::nz_cand_distances(x, mm, d, cand, c, dist, device, stream);
      },
      py::arg("x"), py::arg("m"), py::arg("d"), py::arg("cand"), py::arg("c"), py::arg("dist"), py::arg("device"),
      py::arg("stream"), "Canonical distances of each row's candidates.");
  m.def(
      "nz_row_distances",
      [](uintptr_t x, int64_t mm, int64_t d, uintptr_t rows, int64_t nr, uintptr_t out, int device,
         uintptr_t stream) {
        py::gil_scoped_release nogil;
        ls::cuda::nz_row_distances(x, mm, d, rows, nr, out, device, stream);
      },
      py::arg("x"), py::arg("m"), py::arg("d"), py::arg("rows"), py::arg("nr"), py::arg("out"), py::arg("device"),
      py::arg("stream"), "Canonical distances of the listed rows to every row.");
  m.def(
      "nz_select",
      [](uintptr_t dist, uintptr_t cand, uintptr_t key, int64_t mm, int64_t c, int64_t want, double eps, bool all_in,
         uintptr_t out_idx, uintptr_t out_dist, uintptr_t unproven, int device, uintptr_t stream) {
        py::gil_scoped_release nogil;
        ls::cuda::nz_select(dist, cand, key, mm, c, want, eps, all_in, out_idx, out_dist, unproven, device, stream);
      },
      py::arg("dist"), py::arg("cand"), py::arg("key"), py::arg("m"), py::arg("c"), py::arg("want"), py::arg("eps"),
      py::arg("all_in"), py::arg("out_idx"), py::arg("out_dist"), py::arg("unproven"), py::arg("device"),
      py::arg("stream"), "The want nearest by (canonical distance, index), with the certificate's verdict.");
  m.def(
      "nz_vote",
      [](uintptr_t ya, uintptr_t yb, uintptr_t nbr, uintptr_t dist, int64_t mm, int64_t km1, int64_t K,
         uintptr_t gv, uintptr_t pred, int device, uintptr_t stream) {
        py::gil_scoped_release nogil;
        ls::cuda::nz_vote(ya, yb, nbr, dist, mm, km1, K, gv, pred, device, stream);
      },
      py::arg("ya"), py::arg("yb"), py::arg("nbr"), py::arg("dist"), py::arg("m"), py::arg("km1"), py::arg("K"), py::arg("gv"),
      py::arg("pred"), py::arg("device"), py::arg("stream"), "SimiFeat's weighted vote of a round's sample.");
  m.def(
      "nz_consensus",
      [](uintptr_t ya, uintptr_t yb, uintptr_t nbr, int64_t ns, int64_t mm, int64_t K, uintptr_t codes,
         uintptr_t h1, uintptr_t h2, int device, uintptr_t stream) {
        py::gil_scoped_release nogil;
        ls::cuda::nz_consensus(ya, yb, nbr, ns, mm, K, codes, h1, h2, device, stream);
      },
      py::arg("ya"), py::arg("yb"), py::arg("nbr"), py::arg("ns"), py::arg("m"), py::arg("K"), py::arg("codes"), py::arg("h1"),
      py::arg("h2"), py::arg("device"), py::arg("stream"), "HOC's consensus codes and first/second-order counts.");
}
