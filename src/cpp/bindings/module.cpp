// The labelsift._core module: the CPU kernels (C++17, OpenMP).
#include <omp.h>
#include <pybind11/pybind11.h>

#include "common/validation.h"

namespace py = pybind11;

namespace ls {
void bind_cl(py::module_& m);        // bindings/cl.cpp
void bind_sinkhorn(py::module_& m);  // bindings/sinkhorn.cpp
}

PYBIND11_MODULE(_core, m) {
  using namespace ls;
  m.doc() = "labelsift CPU kernels (C++17, OpenMP)";
  m.def("max_threads", []() { return omp_get_max_threads(); });
  {
    py::dict codes;
    codes["ok"] = int(ROW_OK);
    codes["nan"] = int(ROW_NAN);
    codes["inf"] = int(ROW_INF);
    codes["range"] = int(ROW_RANGE);
    codes["sum"] = int(ROW_SUM);
    m.attr("ROW_ERROR_CODES") = codes;
  }
  bind_cl(m);
  bind_sinkhorn(m);
}
