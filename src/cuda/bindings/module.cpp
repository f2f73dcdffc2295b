// pybind11 bindings of the CUDA module. Importing never needs a GPU: the
// runtime is linked statically and the query reports why a device is missing.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "common/device_query.h"

namespace py = pybind11;

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
}
