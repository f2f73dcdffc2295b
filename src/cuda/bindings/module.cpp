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

#include "cl/cuda_kernels.h"
#include "common/device_query.h"

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
}
