// Element types shared by every backend and by the N-API layer (the JS side uses the same codes).
#pragma once
#include <cstddef>
#include <cstdint>

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

}  // namespace selfe
