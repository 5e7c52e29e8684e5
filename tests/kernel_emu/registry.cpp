// The kernel emulator library: every kernel of kernels/*.cu, compiled for
// the CPU with cuda_emu.hpp, behind one C entry point with the calling
// convention of cuLaunchKernel (a pointer to each argument). Tessera's
// emulated GPU (Device::Emulated) loads it from TESSERA_EMU_LIB, so the
// device code paths, host-side launch sequences included, run in tests on
// machines without a GPU.
//
// Built by the tests: g++ -std=c++20 -O2 -pthread -shared -fPIC
//   -include cuda_emu.hpp registry.cpp -o libtessera_emu.so

#include "../../kernels/gemm.cu"
#include "../../kernels/sort.cu"
#include "../../kernels/generate.cu"

#include <cstdio>
#include <exception>
#include <type_traits>
#include <utility>

namespace {

template <class... P, std::size_t... I>
void invoke(void (*kernel)(P...), dim3 grid, dim3 block, void* const* params, std::index_sequence<I...>) {
    emu::launch(grid, block, kernel, *static_cast<std::remove_cv_t<std::remove_reference_t<P>>*>(params[I])...);
}

template <class... P>
void invoke(void (*kernel)(P...), dim3 grid, dim3 block, void* const* params) {
    invoke(kernel, grid, block, params, std::index_sequence_for<P...>{});
}

struct Kernel {
    const char* name;
    void (*run)(dim3, dim3, void* const*);
};

#define KERNEL(k) {#k, [](dim3 g, dim3 b, void* const* p) { invoke(k, g, b, p); }}

const Kernel kKernels[] = {
    KERNEL(tessera_gemm_f32),
    KERNEL(tessera_gemm_f64),
    KERNEL(tessera_pack_f32),
    KERNEL(tessera_pack_f64),
    KERNEL(tessera_keys_to_bits_32),
    KERNEL(tessera_bits_to_keys_32),
    KERNEL(tessera_keys_to_bits_64),
    KERNEL(tessera_bits_to_keys_64),
    KERNEL(tessera_radix_histogram_32),
    KERNEL(tessera_radix_histogram_64),
    KERNEL(tessera_scan_exclusive_u32),
    KERNEL(tessera_scan_add_u32),
    KERNEL(tessera_radix_scatter_32),
    KERNEL(tessera_radix_scatter_64),
    KERNEL(tessera_gather_bytes),
    KERNEL(tessera_iota_u32),
    KERNEL(tessera_merge_path_32),
    KERNEL(tessera_merge_path_64),
    KERNEL(tessera_fingerprint_32),
    KERNEL(tessera_fingerprint_64),
    KERNEL(tessera_count_descents_32),
    KERNEL(tessera_count_descents_64),
    KERNEL(tessera_lower_bound_32),
    KERNEL(tessera_lower_bound_64),
    KERNEL(tessera_generate_uniform_f32),
    KERNEL(tessera_generate_uniform_f64),
    KERNEL(tessera_generate_keys_u32),
    KERNEL(tessera_generate_keys_u64),
    KERNEL(tessera_generate_keys_i32),
    KERNEL(tessera_generate_keys_i64),
    KERNEL(tessera_generate_keys_f32),
    KERNEL(tessera_generate_keys_f64),
};

}  // namespace

extern "C" int tessera_emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                  unsigned by, unsigned bz, void* const* params, char* err, std::size_t errlen) {
    // The emulator's block state is global: one launch at a time.
    static std::mutex launch_lock;
    std::lock_guard<std::mutex> hold(launch_lock);
    for (const Kernel& k : kKernels) {
        if (std::strcmp(k.name, name) == 0) {
            try {
                k.run(dim3(gx, gy, gz), dim3(bx, by, bz), params);
                return 0;
            } catch (const std::exception& e) {
                std::snprintf(err, errlen, "%s", e.what());
                return 1;
            }
        }
    }
    std::snprintf(err, errlen, "no kernel named %s in the emulator library", name);
    return 1;
}
