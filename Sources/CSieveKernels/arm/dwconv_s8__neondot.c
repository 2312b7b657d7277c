// Depthwise convolution on the neondot path (the i8mm path calls it too): sdot over 4 taps of one
// channel per int32 lane, with the input staged so that each channel's 4 taps are adjacent bytes.
// A channel multiplier other than 1 takes the neon path's kernel (dwconv_s8__neon.c).
#if defined(__aarch64__)
#include <arm_neon.h>
#include "sieve_target.h"

SIEVE_TARGET_BEGIN("arch=armv8.2-a+dotprod")

#include "neon_common.h"
#include "neon_layout.h"
#include "neondot_rq.h"

// ---- Depthwise conv, multiplier 1 ------------------------------------------------------------------
// A kernel row's kw taps go in G = ceil(kw / 4) groups of 4 (taps past kw have zero weights).
// Layout: header, requantisation table over C16 = out_c rounded up to 16, then weights
// [kh][G][C16][4]: byte 4c + j of group (ky, g) is channel c's tap (ky, 4g + j).
// Scratch: the step offsets (int32[kh * G], 64-byte padded), a row of zero points (C16 bytes), then
// a ring of kh staged rows. A staged row holds, per output column ox and group g, the 4 input
// columns ox * stride_w + 4g + j (j = 0...3) interleaved per channel ([out_w][G][C16][4], vst4), so
// one ldr q and one sdot take 4 channels x 4 taps; each input row is staged once and read by
// kh / stride_h output rows. Micro-kernel: 4 pixels x 16 channels, sixteen int32x4 accumulators.
// sdot adds exactly in int32 (wrapping as the scalar's sieve_add_wrap does), so any order of the
// products gives the scalar kernel's sum.
static int dd_usable(const sieve_conv_params *p) { return p->in_c > 0 && p->out_c == p->in_c; }
static int32_t dd_groups(const sieve_conv_params *p) { return (p->kernel_w + 3) / 4; }
static int32_t dd_steps(const sieve_conv_params *p) { return p->kernel_h * dd_groups(p); }

size_t sieve_dwconv_packed_size__neondot(const sieve_conv_params *p) {
    if (!dd_usable(p)) return sieve_dwconv_packed_size__neon(p);
    const int32_t c16 = sieve_round_up(p->out_c, 16);
    return NEON_HEADER + arm_rq_table_size(c16) + arm_round_up_size((size_t)dd_steps(p) * c16 * 4, 64);
}

void sieve_dwconv_pack__neondot(const sieve_conv_params *p, void *packed) {
    if (!dd_usable(p)) { sieve_dwconv_pack__neon(p, packed); return; }
    const int32_t c16 = sieve_round_up(p->out_c, 16), groups = dd_groups(p);
    memset(packed, 0, NEON_HEADER);
    char *table = (char *)packed + NEON_HEADER;
    arm_rq_pack_table(table, p->bias, p->multipliers, p->shifts, p->out_c, c16);
    int8_t *w = (int8_t *)(table + arm_rq_table_size(c16));
    memset(w, 0, arm_round_up_size((size_t)dd_steps(p) * c16 * 4, 64));
    for (int32_t ky = 0; ky < p->kernel_h; ky++) {
        for (int32_t kx = 0; kx < p->kernel_w; kx++) {
            int8_t *group = w + (size_t)(ky * groups + kx / 4) * c16 * 4;
            for (int32_t oc = 0; oc < p->out_c; oc++) group[oc * 4 + kx % 4] = p->weights[((size_t)ky * p->kernel_w + kx) * p->out_c + oc];
        }
    }
}

static size_t dd_offsets_size(const sieve_conv_params *p) { return arm_round_up_size((size_t)dd_steps(p) * 4, 64); }
static size_t dd_zero_size(const sieve_conv_params *p) { return arm_round_up_size((size_t)sieve_round_up(p->out_c, 16), 64); }
static size_t dd_slot_size(const sieve_conv_params *p) {
    return arm_round_up_size((size_t)p->out_w * dd_groups(p) * sieve_round_up(p->out_c, 16) * 4, 64);
}

size_t sieve_dwconv_scratch_size__neondot(const sieve_conv_params *p) {
    if (!dd_usable(p)) return sieve_dwconv_scratch_size__neon(p);
    return dd_offsets_size(p) + dd_zero_size(p) + (size_t)p->kernel_h * dd_slot_size(p);
}

// 16 channels from cb of a pixel (or of the zero-point row); a ragged last block is copied so that
// nothing past the input tensor is read (its lanes past in_c meet zero weights).
static inline int8x16_t dd_load(const int8_t *src, int32_t cb, int32_t in_c) {
    if (cb + 16 <= in_c) return vld1q_s8(src + cb);
    int8_t tmp[16] = {0};
    memcpy(tmp, src + cb, (size_t)(in_c - cb));
    return vld1q_s8(tmp);
}

// Stages 4 * quads interior entries of one 16-channel block from `src` (the first entry's first
// column), stride 1 or 2: per 4 entries the 7 (or 10) columns they read are loaded once and stored
// as 4 st4 of overlapping register quadruples. Returns the entries staged.
static inline int32_t dd_stage_run(const int8_t *src, int8_t *dst, int32_t quads, int32_t in_c, ptrdiff_t entry, int32_t sw) {
    if (quads <= 0) return 0;
    const int32_t n4 = quads;
    const ptrdiff_t col = in_c;
    if (sw == 1) {
        __asm__ volatile(
            "1:\n"
            "mov x9, %[src]\n"
            "ldr q0, [x9]\n add x9, x9, %[col]\n ldr q1, [x9]\n add x9, x9, %[col]\n"
            "ldr q2, [x9]\n add x9, x9, %[col]\n ldr q3, [x9]\n add x9, x9, %[col]\n"
            "ldr q4, [x9]\n add x9, x9, %[col]\n ldr q5, [x9]\n add x9, x9, %[col]\n"
            "ldr q6, [x9]\n add %[src], %[src], %[step]\n"
            "st4 {v0.16b, v1.16b, v2.16b, v3.16b}, [%[dst]]\n add %[dst], %[dst], %[entry]\n"
            "st4 {v1.16b, v2.16b, v3.16b, v4.16b}, [%[dst]]\n add %[dst], %[dst], %[entry]\n"
            "st4 {v2.16b, v3.16b, v4.16b, v5.16b}, [%[dst]]\n add %[dst], %[dst], %[entry]\n"
            "st4 {v3.16b, v4.16b, v5.16b, v6.16b}, [%[dst]]\n add %[dst], %[dst], %[entry]\n"
            "subs %w[n], %w[n], #1\n"
            "b.ne 1b\n"
            : [src] "+r"(src), [dst] "+r"(dst), [n] "+r"(quads)
            : [col] "r"(col), [step] "r"(col * 4 * sw), [entry] "r"(entry)
            : "cc", "memory", "x9", "v0", "v1", "v2", "v3", "v4", "v5", "v6");
    } else {
        __asm__ volatile(
            "1:\n"
            "mov x9, %[src]\n"
            "ldr q0, [x9]\n add x9, x9, %[col]\n ldr q1, [x9]\n add x9, x9, %[col]\n"
            "ldr q2, [x9]\n add x9, x9, %[col]\n ldr q3, [x9]\n add x9, x9, %[col]\n"
            "ldr q4, [x9]\n add x9, x9, %[col]\n ldr q5, [x9]\n add x9, x9, %[col]\n"
            "ldr q6, [x9]\n add x9, x9, %[col]\n ldr q7, [x9]\n add x9, x9, %[col]\n"
            "ldr q8, [x9]\n add x9, x9, %[col]\n ldr q9, [x9]\n add %[src], %[src], %[step]\n"
            "st4 {v0.16b, v1.16b, v2.16b, v3.16b}, [%[dst]]\n add %[dst], %[dst], %[entry]\n"
            "st4 {v2.16b, v3.16b, v4.16b, v5.16b}, [%[dst]]\n add %[dst], %[dst], %[entry]\n"
            "st4 {v4.16b, v5.16b, v6.16b, v7.16b}, [%[dst]]\n add %[dst], %[dst], %[entry]\n"
            "st4 {v6.16b, v7.16b, v8.16b, v9.16b}, [%[dst]]\n add %[dst], %[dst], %[entry]\n"
            "subs %w[n], %w[n], #1\n"
            "b.ne 1b\n"
            : [src] "+r"(src), [dst] "+r"(dst), [n] "+r"(quads)
            : [col] "r"(col), [step] "r"(col * 4 * sw), [entry] "r"(entry)
            : "cc", "memory", "x9", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9");
    }
    return 4 * n4;
}

// Stages span row y of the band into `row` ([out_w][G][C16][4]).
static void dd_stage_row(const sieve_conv_params *p, int32_t y, const int8_t *zero, int8_t *row) {
    const int32_t c16 = sieve_round_up(p->out_c, 16), groups = dd_groups(p), in_c = p->in_c, sw = p->stride_w;
    const int32_t iy = y - p->pad_top;
    const int row_inside = iy >= 0 && iy < p->in_h;
    const int8_t *in_row = p->input + (ptrdiff_t)iy * p->in_w * in_c;
    const ptrdiff_t entry = (ptrdiff_t)groups * c16 * 4;
    // Interior columns of a one-group kernel (kw <= 4) over whole 16-channel blocks: per block, the
    // columns slide past in registers (stride 1: one load per output column).
    int32_t lo = 0, hi = 0;  // output columns [lo, hi) take the interior path
    if (row_inside && groups == 1 && in_c % 16 == 0) {
        lo = p->pad_left > 0 ? (p->pad_left + sw - 1) / sw : 0;
        hi = p->in_w - 4 + p->pad_left >= 0 ? (p->in_w - 4 + p->pad_left) / sw + 1 : 0;
        if (hi > p->out_w) hi = p->out_w;
        if (hi < lo) hi = lo;
    }
    if (hi > lo) {
        for (int32_t cb = 0; cb < in_c; cb += 16) {
            const int8_t *src = in_row + (ptrdiff_t)(lo * sw - p->pad_left) * in_c + cb;
            int8_t *dst = row + lo * entry + cb * 4;
            const int32_t run = sw <= 2 ? dd_stage_run(src, dst, (hi - lo) / 4, in_c, entry, sw) : 0;
            src += (ptrdiff_t)run * sw * in_c;
            dst += run * entry;
            int32_t ox = lo + run;
            for (; ox < hi; ox++, dst += entry, src += sw * in_c) {
                int8x16x4_t v;
                v.val[0] = vld1q_s8(src), v.val[1] = vld1q_s8(src + in_c), v.val[2] = vld1q_s8(src + 2 * in_c);
                v.val[3] = vld1q_s8(src + 3 * in_c);
                vst4q_s8(dst, v);
            }
        }
    }
    for (int32_t ox = 0; ox < p->out_w; ox++) {
        if (ox == lo && hi > lo) ox = hi;
        if (ox >= p->out_w) break;
        for (int32_t g = 0; g < groups; g++) {
            const int32_t x = ox * sw + 4 * g - p->pad_left;
            const int8_t *src[4];
            for (int32_t j = 0; j < 4; j++) {
                const int inside = row_inside && x + j >= 0 && x + j < p->in_w && 4 * g + j < p->kernel_w;
                src[j] = inside ? in_row + (ptrdiff_t)(x + j) * in_c : zero;
            }
            int8_t *dst = row + ox * entry + (ptrdiff_t)g * c16 * 4;
            for (int32_t cb = 0; cb < c16; cb += 16) {
                int8x16x4_t v;
                v.val[0] = dd_load(src[0], cb, in_c);
                v.val[1] = dd_load(src[1], cb, in_c);
                v.val[2] = dd_load(src[2], cb, in_c);
                v.val[3] = dd_load(src[3], cb, in_c);
                vst4q_s8(dst + cb * 4, v);
            }
        }
    }
}

// A whole tile in the fast form (4 pixels, 16 real channels, every shift >= 32), in inline assembly
// as the conv kernel's: accumulators v0-v15 (pixel i, channels 4j...4j+3 in v(4i+j)) start at the
// bias; per step (kernel row and tap group) 4 weight loads (v16-v19), 16 input loads, 16 sdot; then
// the register epilogue (neondot_rq.h) with 16-byte stores at dst[0...3].
static inline void dd_tile(const int8_t *e0, const int8_t *e1, const int8_t *e2, const int8_t *e3, const int8_t *w, ptrdiff_t w_step,
                           const int32_t *off, int32_t steps, const int32_t *bias, const int32_t *mult, const int32_t *rshift,
                           const arm_out_stage *out, int8_t *const *dst) {
    __asm__ volatile(
        ".arch_extension dotprod\n"
        "ldp q0, q1, [%[bias]]\n ldp q2, q3, [%[bias], #32]\n"
        "mov v4.16b, v0.16b\n mov v5.16b, v1.16b\n mov v6.16b, v2.16b\n mov v7.16b, v3.16b\n"
        "mov v8.16b, v0.16b\n mov v9.16b, v1.16b\n mov v10.16b, v2.16b\n mov v11.16b, v3.16b\n"
        "mov v12.16b, v0.16b\n mov v13.16b, v1.16b\n mov v14.16b, v2.16b\n mov v15.16b, v3.16b\n"
        "mov x13, %[w]\n mov x14, %[off]\n mov x15, %[steps]\n"
        "1:\n"
        "ldrsw x9, [x14]\n add x14, x14, #4\n"
        "ldr q16, [x13]\n ldr q17, [x13, #16]\n ldr q18, [x13, #32]\n ldr q19, [x13, #48]\n"
        "add x10, %[e1], x9\n add x11, %[e2], x9\n add x12, %[e3], x9\n add x9, %[e0], x9\n"
        "ldr q20, [x9]\n ldr q21, [x9, #16]\n ldr q22, [x9, #32]\n ldr q23, [x9, #48]\n"
        "ldr q24, [x10]\n ldr q25, [x10, #16]\n ldr q26, [x10, #32]\n ldr q27, [x10, #48]\n"
        "sdot v0.4s, v20.16b, v16.16b\n sdot v1.4s, v21.16b, v17.16b\n sdot v2.4s, v22.16b, v18.16b\n sdot v3.4s, v23.16b, v19.16b\n"
        "ldr q20, [x11]\n ldr q21, [x11, #16]\n ldr q22, [x11, #32]\n ldr q23, [x11, #48]\n"
        "sdot v4.4s, v24.16b, v16.16b\n sdot v5.4s, v25.16b, v17.16b\n sdot v6.4s, v26.16b, v18.16b\n sdot v7.4s, v27.16b, v19.16b\n"
        "ldr q24, [x12]\n ldr q25, [x12, #16]\n ldr q26, [x12, #32]\n ldr q27, [x12, #48]\n"
        "sdot v8.4s, v20.16b, v16.16b\n sdot v9.4s, v21.16b, v17.16b\n sdot v10.4s, v22.16b, v18.16b\n sdot v11.4s, v23.16b, v19.16b\n"
        "sdot v12.4s, v24.16b, v16.16b\n sdot v13.4s, v25.16b, v17.16b\n sdot v14.4s, v26.16b, v18.16b\n sdot v15.4s, v27.16b, v19.16b\n"
        "add x13, x13, %[w_step]\n"
        "subs x15, x15, #1\n"
        "b.ne 1b\n"
        "ldp q16, q17, [%[mult]]\n ldp q18, q19, [%[mult], #32]\n ldp q20, q21, [%[rshift]]\n ldp q22, q23, [%[rshift], #32]\n"
        "ldr q24, [%[out]]\n ldr q25, [%[out], #32]\n ldr q26, [%[out], #48]\n"
        "ldp x9, x10, [%[dst]]\n ldp x11, x12, [%[dst], #16]\n"
        DOT_RQ_PIXEL(0, 1, 2, 3, "x9") DOT_RQ_PIXEL(4, 5, 6, 7, "x10")
        DOT_RQ_PIXEL(8, 9, 10, 11, "x11") DOT_RQ_PIXEL(12, 13, 14, 15, "x12")
        :
        : [e0] "r"(e0), [e1] "r"(e1), [e2] "r"(e2), [e3] "r"(e3), [w] "r"(w), [w_step] "r"(w_step), [off] "r"(off),
          [steps] "r"((int64_t)steps), [bias] "r"(bias), [mult] "r"(mult), [rshift] "r"(rshift), [out] "r"(out), [dst] "r"(dst)
        : "cc", "memory", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9",
          "v10", "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26",
          "v27", "v28", "v29", "v30", "v31");
}

#define DD_DOT(I, E)                                                                                   \
    do {                                                                                              \
        a##I##0 = vdotq_s32(a##I##0, vld1q_s8((E)), w0);                                               \
        a##I##1 = vdotq_s32(a##I##1, vld1q_s8((E) + 16), w1);                                          \
        a##I##2 = vdotq_s32(a##I##2, vld1q_s8((E) + 32), w2);                                          \
        a##I##3 = vdotq_s32(a##I##3, vld1q_s8((E) + 48), w3);                                          \
    } while (0)

void sieve_dwconv_s8__neondot(const sieve_conv_params *p, const void *packed, void *scratch) {
    if (!dd_usable(p)) { sieve_dwconv_s8__neon(p, packed, scratch); return; }
    if (p->out_h <= 0 || p->out_w <= 0) return;
    const int32_t c16 = sieve_round_up(p->out_c, 16), groups = dd_groups(p), steps = dd_steps(p), kh = p->kernel_h;
    const char *table = (const char *)packed + NEON_HEADER;
    const arm_rq_view rq = arm_rq_table(table, c16);
    const int8_t *w = (const int8_t *)(table + arm_rq_table_size(c16));
    int32_t *off = (int32_t *)scratch;
    int8_t *zero = (int8_t *)scratch + dd_offsets_size(p);
    int8_t *ring = zero + dd_zero_size(p);
    memset(zero, (int8_t)p->input_zero_point, (size_t)c16);
    const ptrdiff_t slot = (ptrdiff_t)dd_slot_size(p), px = (ptrdiff_t)groups * c16 * 4;
    const arm_out_stage out = arm_out(p->output_zero_point, p->act_min, p->act_max);
    int32_t staged = 0;  // span rows below this are in the ring
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        const int32_t top = oy * p->stride_h;
        if (staged < top) staged = top;
        for (; staged < top + kh; staged++) dd_stage_row(p, staged, zero, ring + (staged % kh) * slot);
        for (int32_t ky = 0, t = 0; ky < kh; ky++) {
            for (int32_t g = 0; g < groups; g++, t++) off[t] = (int32_t)(((top + ky) % kh) * slot + g * c16 * 4);
        }
        int8_t *orow = p->output + (size_t)oy * p->out_w * p->out_c;
        for (int32_t cb = 0; cb < p->out_c; cb += 16) {
            const int32x4_t b0 = vld1q_s32(rq.bias + cb), b1 = vld1q_s32(rq.bias + cb + 4);
            const int32x4_t b2 = vld1q_s32(rq.bias + cb + 8), b3 = vld1q_s32(rq.bias + cb + 12);
            const int32_t nch = arm_min(16, p->out_c - cb), fast = rq.fast[cb / 16];
            const int8_t *wb = w + (size_t)cb * 4;
            for (int32_t ox = 0; ox < p->out_w; ox += 4) {
                const int32_t npx = arm_min(4, p->out_w - ox);
                const int8_t *e0 = ring + ox * px + cb * 4;
                const int8_t *e1 = ring + (ox + arm_min(1, npx - 1)) * px + cb * 4;
                const int8_t *e2 = ring + (ox + arm_min(2, npx - 1)) * px + cb * 4;
                const int8_t *e3 = ring + (ox + arm_min(3, npx - 1)) * px + cb * 4;
                int8_t *dst = orow + (size_t)ox * p->out_c + cb;
                if (nch == 16 && fast) {
                    // pixels past npx repeat the last one: the same bytes stored to the same place
                    int8_t *const d[4] = {dst, dst + arm_min(1, npx - 1) * p->out_c, dst + arm_min(2, npx - 1) * p->out_c,
                                          dst + arm_min(3, npx - 1) * p->out_c};
                    dd_tile(e0, e1, e2, e3, wb, (ptrdiff_t)c16 * 4, off, steps, rq.bias + cb, rq.mult + cb, rq.rshift + cb, &out, d);
                    continue;
                }
                int32x4_t a00 = b0, a01 = b1, a02 = b2, a03 = b3, a10 = b0, a11 = b1, a12 = b2, a13 = b3;
                int32x4_t a20 = b0, a21 = b1, a22 = b2, a23 = b3, a30 = b0, a31 = b1, a32 = b2, a33 = b3;
                const int8_t *wt = wb;
                for (int32_t t = 0; t < steps; t++, wt += (size_t)c16 * 4) {
                    const int8x16_t w0 = vld1q_s8(wt), w1 = vld1q_s8(wt + 16), w2 = vld1q_s8(wt + 32), w3 = vld1q_s8(wt + 48);
                    const ptrdiff_t o = off[t];
                    DD_DOT(0, e0 + o);
                    DD_DOT(1, e1 + o);
                    DD_DOT(2, e2 + o);
                    DD_DOT(3, e3 + o);
                }
                arm_store(dst, arm_rq16(&rq, cb, a00, a01, a02, a03, &out), nch);
                if (npx > 1) arm_store(dst + p->out_c, arm_rq16(&rq, cb, a10, a11, a12, a13, &out), nch);
                if (npx > 2) arm_store(dst + 2 * p->out_c, arm_rq16(&rq, cb, a20, a21, a22, a23, &out), nch);
                if (npx > 3) arm_store(dst + 3 * p->out_c, arm_rq16(&rq, cb, a30, a31, a32, a33, &out), nch);
            }
        }
    }
}

SIEVE_TARGET_END
#endif
