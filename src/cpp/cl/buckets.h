// Stable bucketing of row indices by given label (host only).
#pragma once

#include <cstdint>
#include <vector>

namespace ls {

// Stable bucketing of row indices by label: order[off[k] .. off[k+1]) are the
// rows of class k in increasing index order.
inline void bucket_by_class(const int64_t* labels, int64_t n, int64_t K, std::vector<int64_t>& off,
                     std::vector<int64_t>& order) {
  off.assign(K + 1, 0);
  for (int64_t i = 0; i < n; ++i) off[labels[i] + 1] += 1;
  for (int64_t k = 0; k < K; ++k) off[k + 1] += off[k];
  std::vector<int64_t> pos(off.begin(), off.end() - 1);
  order.resize(n);
  for (int64_t i = 0; i < n; ++i) order[pos[labels[i]]++] = i;
}


}  // namespace ls
