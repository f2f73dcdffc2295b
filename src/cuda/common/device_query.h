// Which CUDA devices the runtime sees (common/device_query.cu).
#pragma once
#include <string>
#include <vector>

namespace ls {
struct DeviceQuery {
  int count = 0;
  int runtime_version = 0;
  int driver_version = 0;
  std::string reason;  // why no device can be used (empty when count > 0)
  std::vector<std::string> names;
  std::vector<int> cc;
  std::vector<long long> memory;
};
DeviceQuery query_devices();
}  // namespace ls
