// The selection key of the top-c selections.
#pragma once

#include <cstdint>

#include "common/dtype.h"

namespace ls {

// Key of the top-c selections of the prune methods: larger margin first,
// then lower index. A total order, so the selected set is unique.
struct Cand {
  double key;
  int64_t idx;
};
LS_HD bool cand_better(const Cand& a, const Cand& b) {
  return a.key > b.key || (a.key == b.key && a.idx < b.idx);
}

}  // namespace ls
