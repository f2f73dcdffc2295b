// Validation of probability rows: the accepted bounds and the error codes.
#pragma once

#include <cstdint>

namespace ls {

// Validation bounds (see labelsift._arrays for the documented policy).
struct Bounds {
  double lo;       // smallest accepted probability
  double hi;       // largest accepted probability
  double sum_tol;  // |row sum - 1| accepted
};

// Result codes for a row that fails validation.
enum RowError : int32_t {
  ROW_OK = 0,
  ROW_NAN = 1,
  ROW_INF = 2,
  ROW_RANGE = 3,
  ROW_SUM = 4,
};

}  // namespace ls
