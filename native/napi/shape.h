// Tensor shapes as the N-API layer keeps them: up to 8 dimensions, row-major, contiguous.
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace selfe::napi {

constexpr int kMaxRank = 8;

struct Shape {
  int rank = 0;
  std::array<int64_t, kMaxRank> dims{};

  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= dims[i];
    return n;
  }
  int64_t operator[](int i) const { return dims[i]; }
  int64_t last() const { return rank > 0 ? dims[rank - 1] : 1; }
  // Product of dims [from, to).
  int64_t span(int from, int to) const {
    int64_t n = 1;
    for (int i = from; i < to; ++i) n *= dims[i];
    return n;
  }
  bool operator==(const Shape& other) const {
    if (rank != other.rank) return false;
    for (int i = 0; i < rank; ++i)
      if (dims[i] != other.dims[i]) return false;
    return true;
  }
  bool operator!=(const Shape& other) const { return !(*this == other); }
  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
  }
};

inline Shape makeShape(std::initializer_list<int64_t> dims) {
  Shape s;
  for (int64_t d : dims) s.dims[s.rank++] = d;
  return s;
}

}  // namespace selfe::napi
