// structgen: apply an int32 token bitmask to logits in place on the GPU.
//
// logits[row, j] = -inf wherever token j is disallowed: bit (j & 31) of word j / 32 of the
// row's bitmask is clear, or j lies past the 32 * bitmask_words tokens the mask covers.
// Bits past the logits width are ignored.  The kernel never reads logits: it only writes
// -inf, so it works on the raw storage word (uint16 for half / bfloat16, uint32 for float,
// uint64 for double) with the -inf bit pattern of that format passed in.
//
// Plain CUDA (no torch headers) so that nvcc never has to parse torch; the binding lives in
// apply_token_bitmask.cpp and calls structgen_apply_token_bitmask_launch.

#include <cstdint>
#include <cuda_runtime.h>

namespace {

constexpr int kThreadsPerBlock = 256;
constexpr unsigned int kMaxGridY = 65535;

// One thread per (row, token).  Consecutive threads touch consecutive tokens, so the stores
// are coalesced and the 32 threads sharing a bitmask word read it once per warp.
template <typename Word>
__global__ void __launch_bounds__(kThreadsPerBlock) apply_token_bitmask_kernel(
    Word* __restrict__ logits,
    const Word neg_inf,
    const int64_t logits_row_stride,
    const int64_t vocab_size,
    const int64_t num_rows,
    const int32_t* __restrict__ bitmask,
    const int64_t bitmask_row_stride,
    const int64_t bitmask_words,
    const int32_t* __restrict__ rows) {
  const int64_t token = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (token >= vocab_size) return;
  const int64_t word = token >> 5;
  for (int64_t r = blockIdx.y; r < num_rows; r += gridDim.y) {
    const int64_t row = rows == nullptr ? r : static_cast<int64_t>(rows[r]);
    bool allowed = false;
    if (word < bitmask_words) {
      const uint32_t bits = static_cast<uint32_t>(bitmask[row * bitmask_row_stride + word]);
      allowed = ((bits >> (token & 31)) & 1u) != 0u;
    }
    if (!allowed) logits[row * logits_row_stride + token] = neg_inf;
  }
}

template <typename Word>
cudaError_t launch(void* logits, Word neg_inf, int64_t logits_row_stride, int64_t vocab_size,
                   int64_t num_rows, const int32_t* bitmask, int64_t bitmask_row_stride,
                   int64_t bitmask_words, const int32_t* rows, cudaStream_t stream) {
  const int64_t blocks_x = (vocab_size + kThreadsPerBlock - 1) / kThreadsPerBlock;
  const unsigned int blocks_y =
      static_cast<unsigned int>(num_rows < kMaxGridY ? num_rows : kMaxGridY);
  const dim3 grid(static_cast<unsigned int>(blocks_x), blocks_y);
  apply_token_bitmask_kernel<Word><<<grid, kThreadsPerBlock, 0, stream>>>(
      static_cast<Word*>(logits), neg_inf, logits_row_stride, vocab_size, num_rows, bitmask,
      bitmask_row_stride, bitmask_words, rows);
  return cudaGetLastError();
}

}  // namespace

// dtype_code: 0 float32, 1 float16, 2 bfloat16, 3 float64.
// Returns nullptr on success, else a static error string.
const char* structgen_apply_token_bitmask_launch(void* logits, int dtype_code,
                                                 int64_t logits_row_stride, int64_t vocab_size,
                                                 int64_t num_rows, const int32_t* bitmask,
                                                 int64_t bitmask_row_stride, int64_t bitmask_words,
                                                 const int32_t* rows, void* stream_ptr) {
  if (num_rows <= 0 || vocab_size <= 0) return nullptr;
  if ((vocab_size + kThreadsPerBlock - 1) / kThreadsPerBlock > 0x7fffffffLL) {
    return "vocabulary too large for the grid";
  }
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  cudaError_t err;
  switch (dtype_code) {
    case 0:
      err = launch<uint32_t>(logits, 0xFF800000u, logits_row_stride, vocab_size, num_rows,
                             bitmask, bitmask_row_stride, bitmask_words, rows, stream);
      break;
    case 1:
      err = launch<uint16_t>(logits, static_cast<uint16_t>(0xFC00u), logits_row_stride,
                             vocab_size, num_rows, bitmask, bitmask_row_stride, bitmask_words,
                             rows, stream);
      break;
    case 2:
      err = launch<uint16_t>(logits, static_cast<uint16_t>(0xFF80u), logits_row_stride,
                             vocab_size, num_rows, bitmask, bitmask_row_stride, bitmask_words,
                             rows, stream);
      break;
    case 3:
      err = launch<uint64_t>(logits, 0xFFF0000000000000ull, logits_row_stride, vocab_size,
                             num_rows, bitmask, bitmask_row_stride, bitmask_words, rows, stream);
      break;
    default:
      return "unsupported logits dtype";
  }
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}
