// Errors raised at the N-API boundary. Each carries a stable code that src/kernels/errors.ts maps once into
// a typed error; the message always starts with the op's name. Nothing in native/ aborts the process.
#pragma once
#include <napi.h>

#include <stdexcept>
#include <string>

namespace selfe::napi {

enum class ErrorCode { InvalidArgument, Shape, DType, Disposed, OutOfMemory, Device };

inline const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return "SELFE_INVALID_ARGUMENT";
    case ErrorCode::Shape: return "SELFE_SHAPE";
    case ErrorCode::DType: return "SELFE_DTYPE";
    case ErrorCode::Disposed: return "SELFE_DISPOSED";
    case ErrorCode::OutOfMemory: return "SELFE_OUT_OF_MEMORY";
    case ErrorCode::Device: return "SELFE_DEVICE";
  }
  return "SELFE_DEVICE";
}

class OpError : public std::runtime_error {
 public:
  OpError(ErrorCode code, const std::string& op, const std::string& reason)
      : std::runtime_error(op + ": " + reason), code_(code), op_(op), reason_(reason) {}
  ErrorCode code() const { return code_; }
  const std::string& op() const { return op_; }
  const std::string& reason() const { return reason_; }

 private:
  ErrorCode code_;
  std::string op_;
  std::string reason_;
};

inline Napi::Error toJsError(Napi::Env env, ErrorCode code, const std::string& op, const std::string& reason) {
  Napi::Error error = Napi::Error::New(env, op + ": " + reason);
  error.Set("code", Napi::String::New(env, errorCodeName(code)));
  error.Set("op", Napi::String::New(env, op));
  error.Set("reason", Napi::String::New(env, reason));
  return error;
}

}  // namespace selfe::napi
