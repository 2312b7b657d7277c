// Fully connected on AVX-512 VNNI (K4 layout, input staged once as u8 = x + 128), and the
// peak-rate loop `sieve bench` measures against.
#if defined(__x86_64__)
#include <string.h>
#include "sieve_isa.h"
#include "sieve_pack.h"
#include "sieve_target.h"

// Before any target region: gcc binds each intrinsic to the target in force where it is declared.
#include <immintrin.h>

SIEVE_TARGET_BEGIN("avx512f,avx512bw,avx512vl,avx512vnni")
#include "requantize_avx512.h"

size_t sieve_fc_packed_size__avx512vnni(const sieve_fc_params *p) { return sieve_pack_k4_size(p->out_c, p->k); }

void sieve_fc_pack__avx512vnni(const sieve_fc_params *p, void *packed) {
    sieve_pack_k4(p->weights, p->bias, p->multipliers, p->shifts, p->out_c, p->k, 128, packed);
}

size_t sieve_fc_scratch_size__avx512vnni(const sieve_fc_params *p) { return (size_t)sieve_round_up(p->k, 4); }

void sieve_fc_s8__avx512vnni(const sieve_fc_params *p, const void *packed, void *scratch, int32_t oc_begin, int32_t oc_end) {
    const sieve_k4_view v = sieve_k4(packed, p->out_c, p->k);
    uint8_t *x = (uint8_t *)scratch;
    for (int32_t i = 0; i < p->k; i++) x[i] = (uint8_t)(p->input[i] + 128);
    for (int32_t i = p->k; i < v.k4; i++) x[i] = 0;
    const int32_t groups = v.k4 / 4;
    const __m512i zp = _mm512_set1_epi32(p->output_zero_point), lo = _mm512_set1_epi32(p->act_min), hi = _mm512_set1_epi32(p->act_max);
    for (int32_t oc = oc_begin; oc < oc_end; oc += 16) {
        const int8_t *w = v.weights + (size_t)(oc / 16) * v.k4 * 16;
        // Four chains hide vpdpbusd's latency; their sum is the same int32 (mod 2^32).
        __m512i acc[4] = {_mm512_loadu_si512(v.bias + oc), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
        int32_t g = 0;
        for (; g + 4 <= groups; g += 4) {
            for (int u = 0; u < 4; u++) {
                int32_t four;
                memcpy(&four, x + 4 * (g + u), 4);
                acc[u] = _mm512_dpbusd_epi32(acc[u], _mm512_set1_epi32(four), _mm512_load_si512(w + 64 * (g + u)));
            }
        }
        for (; g < groups; g++) {
            int32_t four;
            memcpy(&four, x + 4 * g, 4);
            acc[0] = _mm512_dpbusd_epi32(acc[0], _mm512_set1_epi32(four), _mm512_load_si512(w + 64 * g));
        }
        const __m512i sum = _mm512_add_epi32(_mm512_add_epi32(acc[0], acc[1]), _mm512_add_epi32(acc[2], acc[3]));
        const int32_t n = oc_end - oc < 16 ? oc_end - oc : 16;
        const __m128i r = sieve_rq16_avx512(sum, v.multipliers + oc, v.shifts + oc, zp, lo, hi);
        _mm_mask_storeu_epi8(p->output + oc, (__mmask16)((1u << n) - 1), r);
    }
}

// 32 independent vpdpbusd (zmm, 64 MACs each) per iteration, on registers only.
uint64_t sieve_peak_macs__avx512vnni(uint64_t iterations) {
    __m512i acc[16];
    for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_epi32(i);
    const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-5);
    for (uint64_t n = 0; n < iterations; n++) {
        for (int i = 0; i < 16; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
        for (int i = 0; i < 16; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
        __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]), "+v"(acc[4]), "+v"(acc[5]), "+v"(acc[6]), "+v"(acc[7]));
    }
    __m512i sum = acc[0];
    for (int i = 1; i < 16; i++) sum = _mm512_add_epi32(sum, acc[i]);
    volatile int32_t sink = _mm512_reduce_add_epi32(sum);
    (void)sink;
    return iterations * 32 * 64;
}

SIEVE_TARGET_END
#endif
