// Element types shared by every backend and by the N-API layer (the JS side uses the same codes).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace selfe {

enum class DType : int32_t { F32 = 0, I32 = 1, BF16 = 2 };

inline size_t dtypeSize(DType d) {
  switch (d) {
    case DType::F32: return 4;
    case DType::I32: return 4;
    case DType::BF16: return 2;
  }
  return 0;
}

inline const char* dtypeName(DType d) {
  switch (d) {
    case DType::F32: return "f32";
    case DType::I32: return "i32";
    case DType::BF16: return "bf16";
  }
  return "?";
}

// bfloat16 storage as host code sees it: the top half of an IEEE f32. The CUDA kernels read the same bits
// as __nv_bfloat16.
struct bf16 {
  uint16_t bits;
};

// Round to nearest, ties to even (as __float2bfloat16_rn); a NaN stays a (quiet) NaN.
inline bf16 bf16FromFloat(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<uint16_t>((bits >> 16) | 0x40u)};
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return bf16{static_cast<uint16_t>(bits >> 16)};
}

inline float floatFromBf16(bf16 value) {
  const uint32_t bits = static_cast<uint32_t>(value.bits) << 16;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

}  // namespace selfe
