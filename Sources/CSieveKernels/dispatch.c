// Picks a SIMD path at run time and routes each op to it (or to the scalar kernel for the shapes
// a path leaves alone). Detection runs once per query; the interpreter asks at load.
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "sieve_isa.h"
#include "conv_grouped.h"
#if defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif
#endif

static const char *const isa_names[SIEVE_ISA_COUNT] = {"scalar", "avx2", "avx512vnni", "neon", "neondot", "i8mm"};

const char *sieve_isa_name(int32_t isa) { return isa >= 0 && isa < SIEVE_ISA_COUNT ? isa_names[isa] : "unknown"; }

int32_t sieve_isa_named(const char *name) {
    for (int32_t i = 0; i < SIEVE_ISA_COUNT; i++) if (strcmp(name, isa_names[i]) == 0) return i;
    return -1;
}

int32_t sieve_isa_from_environment(void) {
    const char *value = getenv("SIEVE_ISA");
    if (value == NULL || value[0] == 0) return -1;
    const int32_t isa = sieve_isa_named(value);
    return isa < 0 ? -2 : isa;
}

int32_t sieve_isa_available(int32_t isa) {
    switch (isa) {
    case SIEVE_ISA_SCALAR: return 1;
#if defined(__x86_64__)
    case SIEVE_ISA_AVX2: return __builtin_cpu_supports("avx2") ? 1 : 0;
    case SIEVE_ISA_AVX512VNNI:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#endif
#if defined(__aarch64__)
    case SIEVE_ISA_NEON: return 1;  // Advanced SIMD is part of every AArch64 Linux target
    case SIEVE_ISA_NEONDOT: return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
    case SIEVE_ISA_I8MM: return (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0;
#endif
    default: return 0;
    }
}

int32_t sieve_isa_best(void) {
    static const int32_t preference[] = {SIEVE_ISA_AVX512VNNI, SIEVE_ISA_AVX2, SIEVE_ISA_I8MM, SIEVE_ISA_NEONDOT, SIEVE_ISA_NEON};
    for (size_t i = 0; i < sizeof preference / sizeof preference[0]; i++) {
        if (sieve_isa_available(preference[i])) return preference[i];
    }
    return SIEVE_ISA_SCALAR;
}

sieve_conv_params sieve_conv_rows(const sieve_conv_params *p, int32_t row_begin, int32_t row_end) {
    sieve_conv_params band = *p;
    band.out_h = row_end - row_begin;
    band.output = p->output + (size_t)row_begin * p->out_w * p->out_c;
    band.pad_top = p->pad_top - row_begin * p->stride_h;
    return band;
}

// ON_PATH(STEP) expands to a switch over this architecture's compiled paths, STEP(X) being the
// statement for path X; an ISA of another architecture (or scalar) falls through.
#if defined(__x86_64__)
#define ON_PATH(STEP)                                   \
    switch (isa) {                                      \
    case SIEVE_ISA_AVX2: STEP(avx2); break;             \
    case SIEVE_ISA_AVX512VNNI: STEP(avx512vnni); break; \
    default: break;                                     \
    }
#elif defined(__aarch64__)
#define ON_PATH(STEP)                             \
    switch (isa) {                                \
    case SIEVE_ISA_NEON: STEP(neon); break;       \
    case SIEVE_ISA_NEONDOT: STEP(neondot); break; \
    case SIEVE_ISA_I8MM: STEP(i8mm); break;       \
    default: break;                               \
    }
#else
#define ON_PATH(STEP) (void)isa;
#endif

// Grouped (non-depthwise) convs run group by group on the path's kernel (conv_grouped.c).
size_t sieve_conv_packed_size(int32_t isa, const sieve_conv_params *p) {
    if (p->groups != 1) return sieve_conv_grouped_packed_size(isa, p);
#define STEP(X) return sieve_conv_packed_size__##X(p)
    ON_PATH(STEP)
#undef STEP
    return 0;
}

void sieve_conv_pack(int32_t isa, const sieve_conv_params *p, void *packed) {
    if (sieve_conv_packed_size(isa, p) == 0) return;
    if (p->groups != 1) { sieve_conv_grouped_pack(isa, p, packed); return; }
#define STEP(X) sieve_conv_pack__##X(p, packed)
    ON_PATH(STEP)
#undef STEP
}

size_t sieve_conv_scratch_size(int32_t isa, const sieve_conv_params *p) {
    if (sieve_conv_packed_size(isa, p) == 0) return 0;
    if (p->groups != 1) return sieve_conv_grouped_scratch_size(isa, p);
#define STEP(X) return sieve_conv_scratch_size__##X(p)
    ON_PATH(STEP)
#undef STEP
    return 0;
}

void sieve_conv_run(int32_t isa, const sieve_conv_params *p, const void *packed, void *scratch) {
    if (packed != NULL && p->groups != 1) { sieve_conv_grouped_run(isa, p, packed, scratch); return; }
    if (packed != NULL) {
#define STEP(X) sieve_conv_s8__##X(p, packed, scratch); return
        ON_PATH(STEP)
#undef STEP
    }
    sieve_conv_s8__scalar(p);
}

size_t sieve_dwconv_packed_size(int32_t isa, const sieve_conv_params *p) {
#define STEP(X) return sieve_dwconv_packed_size__##X(p)
    ON_PATH(STEP)
#undef STEP
    return 0;
}

void sieve_dwconv_pack(int32_t isa, const sieve_conv_params *p, void *packed) {
    if (sieve_dwconv_packed_size(isa, p) == 0) return;
#define STEP(X) sieve_dwconv_pack__##X(p, packed)
    ON_PATH(STEP)
#undef STEP
}

size_t sieve_dwconv_scratch_size(int32_t isa, const sieve_conv_params *p) {
    if (sieve_dwconv_packed_size(isa, p) == 0) return 0;
#define STEP(X) return sieve_dwconv_scratch_size__##X(p)
    ON_PATH(STEP)
#undef STEP
    return 0;
}

void sieve_dwconv_run(int32_t isa, const sieve_conv_params *p, const void *packed, void *scratch) {
    if (packed != NULL) {
#define STEP(X) sieve_dwconv_s8__##X(p, packed, scratch); return
        ON_PATH(STEP)
#undef STEP
    }
    sieve_dwconv_s8__scalar(p);
}

size_t sieve_fc_packed_size(int32_t isa, const sieve_fc_params *p) {
#define STEP(X) return sieve_fc_packed_size__##X(p)
    ON_PATH(STEP)
#undef STEP
    return 0;
}

void sieve_fc_pack(int32_t isa, const sieve_fc_params *p, void *packed) {
    if (sieve_fc_packed_size(isa, p) == 0) return;
#define STEP(X) sieve_fc_pack__##X(p, packed)
    ON_PATH(STEP)
#undef STEP
}

size_t sieve_fc_scratch_size(int32_t isa, const sieve_fc_params *p) {
    if (sieve_fc_packed_size(isa, p) == 0) return 0;
#define STEP(X) return sieve_fc_scratch_size__##X(p)
    ON_PATH(STEP)
#undef STEP
    return 0;
}

void sieve_fc_run(int32_t isa, const sieve_fc_params *p, const void *packed, void *scratch, int32_t oc_begin, int32_t oc_end) {
    if (packed != NULL) {
#define STEP(X) sieve_fc_s8__##X(p, packed, scratch, oc_begin, oc_end); return
        ON_PATH(STEP)
#undef STEP
    }
    sieve_fc_params band = *p;
    band.weights += (size_t)oc_begin * p->k;
    band.bias += oc_begin;
    band.multipliers += oc_begin;
    band.shifts += oc_begin;
    band.output += oc_begin;
    band.out_c = oc_end - oc_begin;
    sieve_fc_s8__scalar(&band);
}

void sieve_maxpool_run(int32_t isa, const sieve_pool_params *p) {
#if defined(__x86_64__)
    if (isa == SIEVE_ISA_AVX512VNNI) { sieve_maxpool_s8__avx512(p); return; }
    if (isa == SIEVE_ISA_AVX2) { sieve_maxpool_s8__avx2(p); return; }
#endif
#if defined(__aarch64__)
    if (isa == SIEVE_ISA_NEON || isa == SIEVE_ISA_NEONDOT || isa == SIEVE_ISA_I8MM) { sieve_maxpool_s8__neon(p); return; }
#endif
    sieve_maxpool_s8__scalar(p);
}

void sieve_avgpool_run(int32_t isa, const sieve_pool_params *p) {
#if defined(__x86_64__)
    if (isa == SIEVE_ISA_AVX512VNNI || isa == SIEVE_ISA_AVX2) { sieve_avgpool_s8__avx2(p); return; }
#endif
#if defined(__aarch64__)
    if (isa == SIEVE_ISA_NEON || isa == SIEVE_ISA_NEONDOT || isa == SIEVE_ISA_I8MM) { sieve_avgpool_s8__neon(p); return; }
#endif
    sieve_avgpool_s8__scalar(p);
}

void sieve_global_avgpool_run(int32_t isa, const int8_t *input, int8_t *output, int32_t pixels, int32_t channels) {
#if defined(__x86_64__)
    if (isa == SIEVE_ISA_AVX512VNNI) { sieve_global_avgpool_s8__avx512(input, output, pixels, channels); return; }
    if (isa == SIEVE_ISA_AVX2) { sieve_global_avgpool_s8__avx2(input, output, pixels, channels); return; }
#endif
#if defined(__aarch64__)
    if (isa == SIEVE_ISA_NEON || isa == SIEVE_ISA_NEONDOT || isa == SIEVE_ISA_I8MM) { sieve_global_avgpool_s8__neon(input, output, pixels, channels); return; }
#endif
    sieve_global_avgpool_s8__scalar(input, output, pixels, channels);
}

void sieve_channel_sums_run(int32_t isa, const int8_t *input, int32_t *sums, int32_t pixels, int32_t channels) {
#if defined(__x86_64__)
    if (isa == SIEVE_ISA_AVX512VNNI) { sieve_channel_sums_s8__avx512(input, sums, pixels, channels); return; }
    if (isa == SIEVE_ISA_AVX2) { sieve_channel_sums_s8__avx2(input, sums, pixels, channels); return; }
#endif
    sieve_channel_sums_s8__scalar(input, sums, pixels, channels);
}

void sieve_add_run(int32_t isa, const sieve_add_params *p) {
#if defined(__x86_64__)
    if (isa == SIEVE_ISA_AVX512VNNI) { sieve_add_s8__avx512(p); return; }
    if (isa == SIEVE_ISA_AVX2) { sieve_add_s8__avx2(p); return; }
#endif
#if defined(__aarch64__)
    if (isa == SIEVE_ISA_NEON || isa == SIEVE_ISA_NEONDOT || isa == SIEVE_ISA_I8MM) { sieve_add_s8__neon(p); return; }
#endif
    sieve_add_s8__scalar(p);
}

void sieve_mul_run(int32_t isa, const sieve_mul_params *p) {
#if defined(__x86_64__)
    if (isa == SIEVE_ISA_AVX512VNNI || isa == SIEVE_ISA_AVX2) { sieve_mul_s8__avx2(p); return; }
#endif
#if defined(__aarch64__)
    if (isa == SIEVE_ISA_NEON || isa == SIEVE_ISA_NEONDOT || isa == SIEVE_ISA_I8MM) { sieve_mul_s8__neon(p); return; }
#endif
    sieve_mul_s8__scalar(p);
}

typedef void (*sieve_lut_rows_fn)(const int8_t *, int32_t, int8_t *, int32_t, int32_t, int32_t, const int8_t *);

// CONCAT with the path's LUT kernel: an input whose table is the identity is a copy per pixel; a
// table runs over the input as `pixels` rows of its channels, written `out_c` bytes apart.
static void concat_with(const sieve_concat_params *p, sieve_lut_rows_fn lut_rows) {
    int32_t out_c = 0;
    for (int32_t k = 0; k < p->input_count; k++) out_c += p->channels[k];
    int32_t first = 0;
    for (int32_t k = 0; k < p->input_count; k++) {
        const int32_t c = p->channels[k];
        if (p->tables[k] == NULL) {
            for (int32_t i = 0; i < p->pixels; i++) memcpy(p->output + (size_t)i * out_c + first, p->inputs[k] + (size_t)i * c, (size_t)c);
        } else {
            lut_rows(p->inputs[k], c, p->output + first, out_c, p->pixels, c, p->tables[k]);
        }
        first += c;
    }
}

#if defined(__x86_64__)
// The x86 LUT kernel of a path: VBMI's byte permutes where the avx512vnni path's core has them
// (Ice Lake and later, AMD Zen 4 and later; not Cascade Lake), else vpshufb.
static sieve_lut_rows_fn lut_rows_x86(int32_t isa) {
    if (isa == SIEVE_ISA_AVX512VNNI && __builtin_cpu_supports("avx512vbmi")) return sieve_lut_rows_s8__avx512vbmi;
    return sieve_lut_rows_s8__avx2;
}
#endif

void sieve_concat_run(int32_t isa, const sieve_concat_params *p) {
#if defined(__x86_64__)
    if (isa == SIEVE_ISA_AVX512VNNI || isa == SIEVE_ISA_AVX2) { concat_with(p, lut_rows_x86(isa)); return; }
#endif
#if defined(__aarch64__)
    if (isa == SIEVE_ISA_NEON || isa == SIEVE_ISA_NEONDOT || isa == SIEVE_ISA_I8MM) { concat_with(p, sieve_lut_rows_s8__neon); return; }
#endif
    (void)isa;
    sieve_concat_s8__scalar(p);
}

// GATHER is byte copies: one kernel serves every path.
void sieve_gather_run(int32_t isa, const sieve_gather_params *p) {
    (void)isa;
    sieve_gather_s8__scalar(p);
}

void sieve_lut_run(int32_t isa, const int8_t *input, int8_t *output, const int8_t *table, int32_t count) {
#if defined(__x86_64__)
    if (isa == SIEVE_ISA_AVX512VNNI || isa == SIEVE_ISA_AVX2) { lut_rows_x86(isa)(input, 0, output, 0, 1, count, table); return; }
#endif
#if defined(__aarch64__)
    if (isa == SIEVE_ISA_NEON || isa == SIEVE_ISA_NEONDOT || isa == SIEVE_ISA_I8MM) { sieve_lut_s8__neon(input, output, table, count); return; }
#endif
    (void)isa;
    sieve_lut_s8__scalar(input, output, table, count);
}

// Only VBMI's byte permutes look 64 bytes up in a whole table at once; on the other paths a lookup
// per group and a blend cost more than the scalar kernel's one load per byte.
void sieve_lut_grouped_run(int32_t isa, const sieve_lut_grouped_params *p) {
    if (p->groups == 1) { sieve_lut_run(isa, p->input, p->output, p->tables, p->pixels * p->channels); return; }
#if defined(__x86_64__)
    if (isa == SIEVE_ISA_AVX512VNNI && __builtin_cpu_supports("avx512vbmi")) { sieve_lut_grouped_s8__avx512vbmi(p); return; }
#endif
    (void)isa;
    sieve_lut_grouped_s8__scalar(p);
}

uint64_t sieve_peak_macs(int32_t isa, uint64_t iterations) {
#define STEP(X) return sieve_peak_macs__##X(iterations)
    ON_PATH(STEP)
#undef STEP
    return 0;
}

uint64_t sieve_peak_macs_u8(int32_t isa, uint64_t iterations) {
#if defined(__x86_64__)
    if (isa == SIEVE_ISA_AVX2) return sieve_peak_macs_u8__avx2(iterations);
#endif
    (void)isa, (void)iterations;
    return 0;
}

int32_t sieve_packed_route(int32_t isa, const void *packed) {
#if defined(__x86_64__)
    if (isa == SIEVE_ISA_AVX2 && packed != NULL) return sieve_conv_route__avx2(packed);
#endif
#if defined(__aarch64__)
    if (isa == SIEVE_ISA_NEON && packed != NULL) return sieve_conv_route__neon(packed);
#endif
    (void)isa, (void)packed;
    return SIEVE_ROUTE_MAIN;
}
