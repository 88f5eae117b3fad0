// structgen: torch binding for the CUDA bitmask kernel in apply_token_bitmask.cu.
// Built lazily by structgen/kernels/apply.py with torch.utils.cpp_extension.load.

#include <torch/extension.h>

#include <cstdint>
#include <optional>

const char* structgen_apply_token_bitmask_launch(void* logits, int dtype_code,
                                                 int64_t logits_row_stride, int64_t vocab_size,
                                                 int64_t num_rows, const int32_t* bitmask,
                                                 int64_t bitmask_row_stride, int64_t bitmask_words,
                                                 const int32_t* rows, void* stream_ptr);

// logits (B, V) CUDA float32/float16/bfloat16/float64 with unit column stride;
// bitmask (B, W) or (1, W) int32 on the same device (a single row applies to every row);
// indices: optional int32 CUDA tensor of the rows to mask (row k uses bitmask row k);
// stream: the raw cudaStream_t of the current stream of logits' device (from Python).
void apply_token_bitmask_inplace(torch::Tensor logits, torch::Tensor bitmask,
                                 std::optional<torch::Tensor> indices, int64_t stream) {
  TORCH_CHECK(logits.is_cuda(), "logits must be a CUDA tensor");
  TORCH_CHECK(logits.dim() == 2, "logits must be 2-D");
  TORCH_CHECK(logits.size(1) <= 1 || logits.stride(1) == 1, "logits rows must be contiguous");
  TORCH_CHECK(bitmask.is_cuda() && bitmask.device() == logits.device(),
              "bitmask must be on the logits' device");
  TORCH_CHECK(bitmask.scalar_type() == torch::kInt32, "bitmask must be int32");
  TORCH_CHECK(bitmask.dim() == 2, "bitmask must be 2-D");
  TORCH_CHECK(bitmask.size(1) <= 1 || bitmask.stride(1) == 1, "bitmask rows must be contiguous");
  TORCH_CHECK(bitmask.size(0) == 1 || bitmask.size(0) == logits.size(0),
              "bitmask must have one row or as many rows as logits");

  int dtype_code;
  switch (logits.scalar_type()) {
    case torch::kFloat32: dtype_code = 0; break;
    case torch::kFloat16: dtype_code = 1; break;
    case torch::kBFloat16: dtype_code = 2; break;
    case torch::kFloat64: dtype_code = 3; break;
    default: TORCH_CHECK(false, "logits dtype must be float32, float16, bfloat16 or float64");
  }

  const int32_t* rows = nullptr;
  int64_t num_rows = logits.size(0);
  if (indices.has_value()) {
    const torch::Tensor& idx = *indices;
    TORCH_CHECK(idx.is_cuda() && idx.device() == logits.device(),
                "indices must be on the logits' device");
    TORCH_CHECK(idx.scalar_type() == torch::kInt32 && idx.dim() == 1 && idx.is_contiguous(),
                "indices must be a contiguous 1-D int32 tensor");
    rows = idx.data_ptr<int32_t>();
    num_rows = idx.numel();
  }
  if (num_rows == 0 || logits.size(1) == 0) return;

  const int64_t bitmask_row_stride = bitmask.size(0) == 1 ? 0 : bitmask.stride(0);
  const char* err = structgen_apply_token_bitmask_launch(
      logits.data_ptr(), dtype_code, logits.stride(0), logits.size(1), num_rows,
      bitmask.data_ptr<int32_t>(), bitmask_row_stride, bitmask.size(1), rows,
      reinterpret_cast<void*>(stream));
  TORCH_CHECK(err == nullptr, "structgen apply_token_bitmask kernel failed: ", err);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("apply_token_bitmask_inplace", &apply_token_bitmask_inplace,
        "Set disallowed logits to -inf in place (CUDA).", py::arg("logits"), py::arg("bitmask"),
        py::arg("indices"), py::arg("stream"));
}
