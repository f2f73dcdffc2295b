// Argument checks of the pybind11 bindings. No conversions happen here:
// arrays arrive already in a supported dtype (labelsift/_common/arrays.py is
// the one place that converts); anything else is rejected, never silently
// copied (py::array, not py::array_t with forcecast).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "cl/kernels.h"

namespace ls {
namespace bind {

namespace py = pybind11;

inline int dtype_code(const py::dtype& dt) {
  if (dt.kind() == 'f' && dt.byteorder() != '>') {
    if (dt.itemsize() == 2) return F16;
    if (dt.itemsize() == 4) return F32;
    if (dt.itemsize() == 8) return F64;
  }
  throw py::type_error("labelsift._core: probabilities must be native float16/float32/float64, got " +
                       std::string(py::str(dt)));
}

inline Mat as_mat(const py::array& a) {
  if (a.ndim() != 2) throw py::value_error("labelsift._core: expected a 2-D array");
  const int code = dtype_code(a.dtype());
  const py::ssize_t item = a.itemsize();
  if (a.strides(0) % item || a.strides(1) % item)
    throw py::value_error("labelsift._core: strides must be multiples of the item size");
  return Mat{a.data(), a.shape(0), a.shape(1), a.strides(0) / item, a.strides(1) / item, code, DEVICE_HOST};
}

template <class T>
T* out_ptr(const py::object& o, py::ssize_t n, const char* what) {
  if (o.is_none()) return nullptr;
  auto a = py::cast<py::array>(o);
  if (!py::isinstance<py::array_t<T>>(a) || a.ndim() != 1 || a.shape(0) < n ||
      !(a.flags() & py::array::c_style) || !a.writeable())
    throw py::value_error(std::string("labelsift._core: bad output array ") + what);
  return static_cast<T*>(a.mutable_data());
}

template <class T>
const T* in_ptr(const py::array& a, py::ssize_t n, const char* what) {
  if (!py::isinstance<py::array_t<T>>(a) || a.ndim() != 1 || a.shape(0) != n || !(a.flags() & py::array::c_style))
    throw py::value_error(std::string("labelsift._core: bad input array ") + what);
  return static_cast<const T*>(a.data());
}

inline py::tuple err_tuple(const RowPassError& e) { return py::make_tuple(e.row, e.code, e.col); }

// The optional `rows` argument of the per-row score kernels: None (all n
// rows; returns null and sets nr = n) or int64 indices into the block, each
// checked to lie in [0, n).
inline const int64_t* optional_rows(const py::object& rows, int64_t n, int64_t& nr) {
  nr = n;
  if (rows.is_none()) return nullptr;
  auto ra = py::cast<py::array>(rows);
  nr = ra.shape(0);
  const int64_t* r = in_ptr<int64_t>(ra, nr, "rows");
  for (int64_t t = 0; t < nr; ++t)
    if (r[t] < 0 || r[t] >= n) throw py::index_error("row index out of range");
  return r;
}

}  // namespace bind
}  // namespace ls
