// The labelsift._core module: the CPU kernels (C++17, OpenMP).
#include <omp.h>
#include <pybind11/pybind11.h>

#include "common/cpu.h"
#include "common/validation.h"

namespace py = pybind11;

namespace ls {
void bind_cl(py::module_& m);        // bindings/cl.cpp
void bind_sinkhorn(py::module_& m);  // bindings/sinkhorn.cpp
void bind_knn(py::module_& m);       // bindings/knn.cpp
void bind_multilabel(py::module_& m);  // bindings/multilabel.cpp
void bind_noise(py::module_& m);     // bindings/noise.cpp
}

PYBIND11_MODULE(_core, m) {
  using namespace ls;
  m.doc() = "labelsift CPU kernels (C++17, OpenMP)";
  m.def("max_threads", []() { return omp_get_max_threads(); });
  // the register width of the kernels compiled per ISA from one source (a VecIsa: 1 scalar, 2 SSE2,
  // 3 AVX2, 4 AVX-512F)
  m.def("vec_isa", []() { return best_vec_isa(); });
  // the row pass's twin: 0 baseline, 1 AVX2
#ifdef LS_HAVE_AVX2_F16C_TWINS
  m.def("cl_isa", []() { return cpu_has_avx2_f16c() ? 1 : 0; });
#else
  m.def("cl_isa", []() { return 0; });
#endif
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
  bind_knn(m);
  bind_multilabel(m);
  bind_noise(m);
}
