// Tri-plane lookup and its transpose as XLA:CPU FFI handlers (faceshop_jax/nerf/triplane_cpu.py
// builds, loads and registers them; faceshop_jax/nerf/triplane.py holds the convention and the
// pure-JAX functions these must equal).
//
//   TriplaneLookup:    planes f32[B, 3, H, W, C], points f32[B, N, 3]
//                      -> features f32[B, N, C] = scale · Σ_planes bilinear(plane, (u, v))
//   TriplaneTranspose: cotangent f32[B, 3, H, W, C] (aliased to the output), points f32[B, N, 3],
//                      features_cotangent f32[B, N, C]
//                      -> cotangent + the transpose of TriplaneLookup at points.
//
// Attributes: box_half_size (f32), scale (f32: 1 sums the planes, 1/3 averages them).
// Work runs on XLA's intra-op thread pool: tasks claim items from an atomic counter and the calling
// thread claims them too, so the call finishes even when no pool thread is free (it never waits
// for a task that has not started). The lookup's items are blocks of points; the transpose's are
// (image, plane) pairs, which write disjoint planes and so need no atomics.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int kPlaneAxes[3][2] = {{0, 1}, {0, 2}, {1, 2}};  // triplane.PLANE_AXES
constexpr int64_t kPointsPerBlock = 512;

// The four bilinear taps of (u, v) on an H×W plane (align_corners=False, zero padding): texel
// offsets (row · W + column) and weights; taps outside the plane get weight 0 and offset 0.
struct Taps {
  int64_t offset[4];
  float weight[4];
};

inline Taps BilinearTaps(float u, float v, int64_t height, int64_t width) {
  const float x = ((u + 1.0f) * width - 1.0f) / 2.0f;
  const float y = ((v + 1.0f) * height - 1.0f) / 2.0f;
  const float x0 = std::floor(x), y0 = std::floor(y);
  const float fx = x - x0, fy = y - y0;
  const float weights[4] = {(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy};
  Taps taps;
  for (int corner = 0; corner < 4; ++corner) {
    const float xi = x0 + (corner & 1), yi = y0 + (corner >> 1);
    // Float comparisons, so NaN and huge coordinates read nothing.
    const bool inside = xi >= 0.0f && xi < width && yi >= 0.0f && yi < height;
    taps.offset[corner] = inside ? static_cast<int64_t>(yi) * width + static_cast<int64_t>(xi) : 0;
    taps.weight[corner] = inside ? weights[corner] : 0.0f;
  }
  return taps;
}

// Runs work(item) for item in [0, num_items) on the pool and the calling thread; returns when all
// items are done.
void ParallelFor(ffi::ThreadPool& pool, int64_t num_items, std::function<void(int64_t)> work) {
  struct State {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
    int64_t num_items;
    std::function<void(int64_t)> work;
  };
  auto state = std::make_shared<State>();
  state->num_items = num_items;
  state->work = std::move(work);
  auto drain = [](State& s) {
    for (int64_t item; (item = s.next.fetch_add(1)) < s.num_items;) {
      s.work(item);
      s.done.fetch_add(1, std::memory_order_release);
    }
  };
  const int64_t helpers = std::min<int64_t>(pool.num_threads(), num_items - 1);
  for (int64_t i = 0; i < helpers; ++i) {
    pool.Schedule([state, drain] { drain(*state); });
  }
  drain(*state);
  while (state->done.load(std::memory_order_acquire) < num_items) std::this_thread::yield();
}

ffi::Error CheckShapes(ffi::Span<const int64_t> planes, ffi::Span<const int64_t> points,
                       ffi::Span<const int64_t> features) {
  if (planes.size() != 5 || planes[1] != 3 || points.size() != 3 || points[2] != 3 ||
      points[0] != planes[0] || features.size() != 3 || features[0] != planes[0] ||
      features[1] != points[1] || features[2] != planes[4]) {
    return ffi::Error::InvalidArgument(
        "tri-plane kernel: expected planes [B, 3, H, W, C], points [B, N, 3], features [B, N, C]");
  }
  return ffi::Error::Success();
}

ffi::Error Lookup(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> planes,
                  ffi::Buffer<ffi::F32> points, float box_half_size, float scale,
                  ffi::ResultBuffer<ffi::F32> features) {
  const auto dims = planes.dimensions();
  if (auto error = CheckShapes(dims, points.dimensions(), features->dimensions());
      error.failure()) {
    return error;
  }
  const int64_t batch = dims[0], height = dims[2], width = dims[3], channels = dims[4];
  const int64_t num_points = points.dimensions()[1];
  const int64_t blocks = (num_points + kPointsPerBlock - 1) / kPointsPerBlock;
  const float* plane_data = planes.typed_data();
  const float* point_data = points.typed_data();
  float* out = features->typed_data();
  ParallelFor(pool, batch * blocks, [=](int64_t item) {
    const int64_t b = item / blocks;
    const int64_t begin = (item % blocks) * kPointsPerBlock;
    const int64_t end = std::min(begin + kPointsPerBlock, num_points);
    for (int64_t n = begin; n < end; ++n) {
      const float* p = point_data + (b * num_points + n) * 3;
      float* f = out + (b * num_points + n) * channels;
      std::fill(f, f + channels, 0.0f);
      for (int plane = 0; plane < 3; ++plane) {
        const Taps taps = BilinearTaps(p[kPlaneAxes[plane][0]] / box_half_size,
                                       p[kPlaneAxes[plane][1]] / box_half_size, height, width);
        const float* table = plane_data + ((b * 3 + plane) * height * width) * channels;
        for (int corner = 0; corner < 4; ++corner) {
          const float w = taps.weight[corner] * scale;
          const float* texel = table + taps.offset[corner] * channels;
          for (int64_t c = 0; c < channels; ++c) f[c] += w * texel[c];
        }
      }
    }
  });
  return ffi::Error::Success();
}

ffi::Error Transpose(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> cotangent,
                     ffi::Buffer<ffi::F32> points, ffi::Buffer<ffi::F32> features_cotangent,
                     float box_half_size, float scale, ffi::ResultBuffer<ffi::F32> out) {
  const auto dims = cotangent.dimensions();
  if (auto error = CheckShapes(dims, points.dimensions(), features_cotangent.dimensions());
      error.failure()) {
    return error;
  }
  const int64_t batch = dims[0], height = dims[2], width = dims[3], channels = dims[4];
  const int64_t num_points = points.dimensions()[1];
  const float* point_data = points.typed_data();
  const float* grad = features_cotangent.typed_data();
  float* planes_out = out->typed_data();
  if (planes_out != cotangent.typed_data()) {  // not aliased: start from the given cotangent
    std::copy_n(cotangent.typed_data(), cotangent.element_count(), planes_out);
  }
  ParallelFor(pool, batch * 3, [=](int64_t item) {
    const int64_t b = item / 3;
    const int plane = static_cast<int>(item % 3);
    float* table = planes_out + (item * height * width) * channels;
    for (int64_t n = 0; n < num_points; ++n) {
      const float* p = point_data + (b * num_points + n) * 3;
      const float* g = grad + (b * num_points + n) * channels;
      const Taps taps = BilinearTaps(p[kPlaneAxes[plane][0]] / box_half_size,
                                     p[kPlaneAxes[plane][1]] / box_half_size, height, width);
      for (int corner = 0; corner < 4; ++corner) {
        const float w = taps.weight[corner] * scale;
        if (w == 0.0f) continue;
        float* texel = table + taps.offset[corner] * channels;
        for (int64_t c = 0; c < channels; ++c) texel[c] += w * g[c];
      }
    }
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(FaceshopTriplaneLookup, Lookup,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Attr<float>("box_half_size")
                                  .Attr<float>("scale")
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(FaceshopTriplaneTranspose, Transpose,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Attr<float>("box_half_size")
                                  .Attr<float>("scale")
                                  .Ret<ffi::Buffer<ffi::F32>>());
