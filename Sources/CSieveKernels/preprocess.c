// Camera frame -> int8 model input: crop, colour, separable resize, table (docs/FRAMES.md).
// Integer arithmetic only, nothing allocated per frame. The crop is converted and resized one
// source row at a time: a row is converted to channel values (0 ... 255), resized along x into
// 64-bit sums, and each output row accumulates its source rows' sums times their y weights, so no
// full-size intermediate exists. The two most recent x-resized rows are kept, which covers every
// source row shared by two output rows (a shrink's boundary rows, an enlargement's pairs).
// The camera's case, one luma channel shrunk along y, has a faster path ("Fast path" below) that
// sums down the columns first; both compute the same integer sums.
#include <string.h>
#include "sieve_frames.h"
#if defined(__x86_64__)
#include <immintrin.h>  // before any target attribute: gcc binds each intrinsic to the target where it is declared
#endif

// ---- Scratch layout ----------------------------------------------------------------------------------
// One output index of a resize axis: its source indices first ... first + count - 1 and their
// weights at `offset` in the axis's weight array.
typedef struct {
    int32_t first, count;
    int64_t offset;
} tap_span;

// YUV -> R, G, B terms in units of 2^-16 (docs/FRAMES.md, "Colour"). y[] also carries the rounding
// half and a bias of 384, so that a channel's sum is 65536 (value + 384) + fraction with value in
// -277 ... 534 for any Y, U, V of either range: clamp[sum >> 16] is the value clamped to 0 ... 255.
enum { colour_bias = 384 };
typedef struct {
    int32_t y[256], rv[256], gu[256], gv[256], bu[256];
    uint8_t clamp[1024];
    uint8_t luma[256]; // Y sample -> luma channel (limited-range expansion, or the identity)
} colour_tables;

typedef struct {
    size_t colour, x_spans, x_weights, y_spans, y_weights, row, x_sums, y_sums, yuv3, total;
} scratch_layout;

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

// Weights an axis can need: one per output when equal, at most src + dst - 1 when shrinking, two per output when enlarging.
static size_t axis_weight_bound(int32_t src, int32_t dst) {
    if (src == dst) return (size_t)dst;
    return src > dst ? (size_t)src + (size_t)dst : 2 * (size_t)dst;
}

// The 4:2:0 R, G, B path's work area ("Fast path: R, G, B" below): 0 for other formats and channels.
static int yuv3_format(const sieve_frame_spec *s) {
    return s->channels == 3 && (s->format == SIEVE_FORMAT_I420 || s->format == SIEVE_FORMAT_NV12);
}
static size_t yuv3_sums_bytes(const sieve_frame_spec *s) { return align64(((size_t)s->crop_w + 16) * sizeof(int32_t)); }
static size_t yuv3_chroma_bytes(const sieve_frame_spec *s) { return align64(((size_t)s->crop_w + 32) * sizeof(int32_t)); }
static size_t yuv3_taps_bytes(const sieve_frame_spec *s) { return ((size_t)s->out_w + 3) / 4 * 4 * 16 * sizeof(uint32_t); }
static size_t yuv3_bytes(const sieve_frame_spec *s) {
    if (!yuv3_format(s)) return 0;
    return 6 * yuv3_sums_bytes(s) + 3 * yuv3_chroma_bytes(s) + align64(((size_t)s->crop_w + 16) * 4 * sizeof(uint32_t))
         + align64(((size_t)s->out_w + 1) / 2 * 32 * sizeof(uint32_t)) + yuv3_taps_bytes(s) + align64(((size_t)s->out_w + 3) * 4);
}
static void yuv3_init(const sieve_frame_spec *s, uint8_t *scratch);

static scratch_layout layout_of(const sieve_frame_spec *s) {
    scratch_layout l;
    const size_t ch = (size_t)s->channels, out_w = (size_t)s->out_w;
    size_t at = 0;
    l.colour = at, at += align64(sizeof(colour_tables));
    l.x_spans = at, at += align64(out_w * sizeof(tap_span));
    l.x_weights = at, at += align64(axis_weight_bound(s->crop_w, s->out_w) * sizeof(uint32_t));
    l.y_spans = at, at += align64((size_t)s->out_h * sizeof(tap_span));
    l.y_weights = at, at += align64(axis_weight_bound(s->crop_h, s->out_h) * sizeof(uint32_t));
    l.row = at, at += align64((size_t)s->crop_w * ch);
    l.x_sums = at, at += 2 * align64(out_w * ch * sizeof(uint64_t));
    l.y_sums = at, at += align64(out_w * ch * sizeof(uint64_t));
    l.yuv3 = at, at += yuv3_bytes(s);
    l.total = at;
    return l;
}

size_t sieve_preprocess_scratch_size(const sieve_frame_spec *spec) { return layout_of(spec).total; }

// ---- Resize weights (docs/FRAMES.md, "Resize") -------------------------------------------------------------
// Weight denominator of an axis: 1 (equal), src (area: overlaps in units of 1/dst), 2 dst (bilinear).
static uint64_t axis_denominator(int32_t src, int32_t dst) {
    if (src == dst) return 1;
    return src > dst ? (uint64_t)src : 2 * (uint64_t)dst;
}

// Shrink: output i covers [i src, (i + 1) src) in units of 1/dst, source j covers [j dst, (j + 1) dst).
static int32_t area_taps(int32_t src, int32_t dst, int32_t i, tap_span *span, uint32_t *weights) {
    const int64_t lo = (int64_t)i * src, hi = lo + src;
    const int64_t first = lo / dst, last = (hi - 1) / dst;
    for (int64_t j = first; j <= last; j++) {
        const int64_t start = j * dst > lo ? j * dst : lo, end = (j + 1) * dst < hi ? (j + 1) * dst : hi;
        weights[j - first] = (uint32_t)(end - start);
    }
    span->first = (int32_t)first, span->count = (int32_t)(last - first + 1);
    return span->count;
}

// Enlarge: source coordinate t / (2 dst) with t = (2 i + 1) src - dst, clamped to [0, src - 1].
static int32_t bilinear_taps(int32_t src, int32_t dst, int32_t i, tap_span *span, uint32_t *weights) {
    const int64_t unit = 2 * (int64_t)dst, last = unit * (src - 1);
    int64_t t = (2 * (int64_t)i + 1) * src - dst;
    t = t < 0 ? 0 : t > last ? last : t;
    const int64_t fraction = t % unit;
    span->first = (int32_t)(t / unit);
    span->count = fraction == 0 ? 1 : 2;
    weights[0] = (uint32_t)(unit - fraction);
    if (fraction != 0) weights[1] = (uint32_t)fraction;
    return span->count;
}

static void axis_init(int32_t src, int32_t dst, tap_span *spans, uint32_t *weights) {
    int64_t at = 0;
    for (int32_t i = 0; i < dst; i++) {
        tap_span *span = &spans[i];
        span->offset = at;
        if (src == dst) span->first = i, span->count = 1, weights[at] = 1, at += 1;
        else if (src > dst) at += area_taps(src, dst, i, span, weights + at);
        else at += bilinear_taps(src, dst, i, span, weights + at);
    }
}

// ---- Colour (docs/FRAMES.md, "Colour") ----------------------------------------------------------------------
// BT.601 YUV -> RGB coefficients in units of 2^-16: Y scale, V to R, U to G, V to G, U to B.
typedef struct { int32_t y, rv, gu, gv, bu; } yuv_coefficients;
static const yuv_coefficients full_coefficients = {65536, 91881, 22553, 46802, 116130};
static const yuv_coefficients limited_coefficients = {76309, 104597, 25675, 53279, 132201};

// Limited-range luma 16 ... 235 -> 0 ... 255: round((y - 16) * 255 / 219) (never a tie), clamped.
static uint8_t limited_luma(int32_t y) {
    if (y <= 16) return 0;
    if (y >= 235) return 255;
    return (uint8_t)(((y - 16) * 510 + 219) / 438);
}

static void colour_init(colour_tables *t, int32_t full_range) {
    const yuv_coefficients *k = full_range ? &full_coefficients : &limited_coefficients;
    const int32_t black = full_range ? 0 : 16;
    for (int32_t v = 0; v < 256; v++) {
        t->y[v] = k->y * (v - black) + (1 << 15) + (colour_bias << 16);
        t->rv[v] = k->rv * (v - 128);
        t->gu[v] = -k->gu * (v - 128);
        t->gv[v] = -k->gv * (v - 128);
        t->bu[v] = k->bu * (v - 128);
        t->luma[v] = full_range ? (uint8_t)v : limited_luma(v);
    }
    for (int32_t i = 0; i < 1024; i++) t->clamp[i] = (uint8_t)(i < colour_bias ? 0 : i > colour_bias + 255 ? 255 : i - colour_bias);
}

static inline uint8_t rgb_luma(int32_t r, int32_t g, int32_t b) { return (uint8_t)((77 * r + 150 * g + 29 * b + 128) >> 8); }

void sieve_preprocess_init(const sieve_frame_spec *spec, void *scratch) {
    const scratch_layout l = layout_of(spec);
    uint8_t *base = scratch;
    colour_init((colour_tables *)(base + l.colour), spec->full_range);
    axis_init(spec->crop_w, spec->out_w, (tap_span *)(base + l.x_spans), (uint32_t *)(base + l.x_weights));
    axis_init(spec->crop_h, spec->out_h, (tap_span *)(base + l.y_spans), (uint32_t *)(base + l.y_weights));
    if (yuv3_format(spec)) yuv3_init(spec, base);
}

// ---- One crop row -> channel values --------------------------------------------------------------------------
// The samples of one frame row of a YUV format: pixel x has Y at y[x * y_step] and U, V at
// u[(x / 2) * c_step], v[(x / 2) * c_step].
typedef struct {
    const uint8_t *y, *u, *v;
    int32_t y_step, c_step;
} yuv_row;

static int64_t pitch_of(const sieve_frame_spec *s) { return s->stride != 0 ? s->stride : sieve_format_row_bytes(s->format, s->width); }

static yuv_row yuv_row_at(const sieve_frame_spec *s, const uint8_t *frame, int32_t y) {
    const int64_t pitch = pitch_of(s), luma_plane = pitch * s->height;
    yuv_row r;
    r.y = frame + y * pitch;
    if (s->format == SIEVE_FORMAT_I420) {
        const int64_t chroma_pitch = pitch / 2;
        r.u = frame + luma_plane + (y / 2) * chroma_pitch;
        r.v = r.u + chroma_pitch * (s->height / 2);
        r.y_step = 1, r.c_step = 1;
    } else if (s->format == SIEVE_FORMAT_NV12) {
        r.u = frame + luma_plane + (y / 2) * pitch;
        r.v = r.u + 1;
        r.y_step = 1, r.c_step = 2;
    } else { // YUYV
        r.u = r.y + 1, r.v = r.y + 3;
        r.y_step = 2, r.c_step = 4;
    }
    return r;
}

static const uint8_t *yuv_crop_row(const sieve_frame_spec *s, const colour_tables *t, yuv_row r, uint8_t *out) {
    const int32_t x0 = s->crop_x, w = s->crop_w;
    if (s->channels == 1) {
        if (s->full_range && r.y_step == 1) return r.y + x0; // the Y samples themselves
        for (int32_t k = 0; k < w; k++) out[k] = t->luma[r.y[(x0 + k) * r.y_step]];
        return out;
    }
    for (int32_t k = 0; k < w; k++) {
        const uint32_t x = (uint32_t)(x0 + k), c = (x / 2) * (uint32_t)r.c_step;
        const int32_t y = t->y[r.y[x * (uint32_t)r.y_step]], u = r.u[c], v = r.v[c];
        out[3 * k] = t->clamp[(uint32_t)(y + t->rv[v]) >> 16];
        out[3 * k + 1] = t->clamp[(uint32_t)(y + t->gu[u] + t->gv[v]) >> 16];
        out[3 * k + 2] = t->clamp[(uint32_t)(y + t->bu[u]) >> 16];
    }
    return out;
}

// RGB24 or BGR24 (red at byte `red`, blue at 2 - red) -> R, G, B or luma.
static const uint8_t *rgb_crop_row(const sieve_frame_spec *s, const uint8_t *row, int32_t red, uint8_t *out) {
    const uint8_t *p = row + 3 * (int64_t)s->crop_x;
    const int32_t w = s->crop_w, blue = 2 - red;
    if (s->channels == 1) {
        for (int32_t k = 0; k < w; k++, p += 3) out[k] = rgb_luma(p[red], p[1], p[blue]);
        return out;
    }
    if (red == 0) return p; // RGB24 is already R, G, B
    for (int32_t k = 0; k < w; k++, p += 3) out[3 * k] = p[2], out[3 * k + 1] = p[1], out[3 * k + 2] = p[0];
    return out;
}

static const uint8_t *gray_crop_row(const sieve_frame_spec *s, const uint8_t *row, uint8_t *out) {
    const uint8_t *p = row + s->crop_x;
    if (s->channels == 1) return p;
    for (int32_t k = 0; k < s->crop_w; k++) out[3 * k] = out[3 * k + 1] = out[3 * k + 2] = p[k];
    return out;
}

// Frame row y's crop as crop_w x channels values: in `out`, or in the frame when it needs no conversion.
static const uint8_t *crop_row(const sieve_frame_spec *s, const colour_tables *t, const uint8_t *frame, int32_t y, uint8_t *out) {
    const uint8_t *row = frame + y * pitch_of(s);
    switch (s->format) {
    case SIEVE_FORMAT_GRAY8: return gray_crop_row(s, row, out);
    case SIEVE_FORMAT_RGB24: return rgb_crop_row(s, row, 0, out);
    case SIEVE_FORMAT_BGR24: return rgb_crop_row(s, row, 2, out);
    default: return yuv_crop_row(s, t, yuv_row_at(s, frame, y), out);
    }
}

// ---- Resize along x: one row of channel values -> out_w x channels sums in units of 1/Dx ----------------------
static void resize_row_1(const uint8_t *row, int32_t out_w, const tap_span *spans, const uint32_t *weights, uint64_t *sums) {
    for (int32_t i = 0; i < out_w; i++) {
        const uint8_t *p = row + spans[i].first;
        const uint32_t *w = weights + spans[i].offset;
        uint64_t sum = 0;
        for (int32_t k = 0; k < spans[i].count; k++) sum += (uint64_t)w[k] * p[k];
        sums[i] = sum;
    }
}

static void resize_row_3(const uint8_t *row, int32_t out_w, const tap_span *spans, const uint32_t *weights, uint64_t *sums) {
    for (int32_t i = 0; i < out_w; i++) {
        const uint8_t *p = row + 3 * (int64_t)spans[i].first;
        const uint32_t *w = weights + spans[i].offset;
        uint64_t r = 0, g = 0, b = 0;
        for (int32_t k = 0; k < spans[i].count; k++, p += 3) r += (uint64_t)w[k] * p[0], g += (uint64_t)w[k] * p[1], b += (uint64_t)w[k] * p[2];
        sums[3 * i] = r, sums[3 * i + 1] = g, sums[3 * i + 2] = b;
    }
}

// Shrinking by long_ratio or more, every span has at least that many sources, and all but its first
// and last weigh dst: those are added plainly and multiplied once, two multiplies per output instead
// of one per source. Their sums fit in uint32 (fewer than 2^24 sources of 255).
enum { long_ratio = 4 };

static int long_spans(int32_t src, int32_t dst) { return src >= long_ratio * (int64_t)dst && src < ((int64_t)dst << 24); }

static void shrink_row_1(const uint8_t *row, int32_t out_w, const tap_span *spans, const uint32_t *weights, uint64_t *sums) {
    for (int32_t i = 0; i < out_w; i++) {
        const uint8_t *p = row + spans[i].first;
        const uint32_t *w = weights + spans[i].offset;
        const int32_t last = spans[i].count - 1;
        uint32_t inner = 0;
        for (int32_t k = 1; k < last; k++) inner += p[k];
        sums[i] = (uint64_t)w[0] * p[0] + (uint64_t)w[1] * inner + (uint64_t)w[last] * p[last];
    }
}

static void shrink_row_3(const uint8_t *row, int32_t out_w, const tap_span *spans, const uint32_t *weights, uint64_t *sums) {
    for (int32_t i = 0; i < out_w; i++) {
        const uint8_t *p = row + 3 * (int64_t)spans[i].first;
        const uint32_t *w = weights + spans[i].offset;
        const int32_t last = spans[i].count - 1;
        uint32_t r = 0, g = 0, b = 0;
        for (int32_t k = 1; k < last; k++) r += p[3 * k], g += p[3 * k + 1], b += p[3 * k + 2];
        const uint8_t *q = p + 3 * last;
        sums[3 * i] = (uint64_t)w[0] * p[0] + (uint64_t)w[1] * r + (uint64_t)w[last] * q[0];
        sums[3 * i + 1] = (uint64_t)w[0] * p[1] + (uint64_t)w[1] * g + (uint64_t)w[last] * q[1];
        sums[3 * i + 2] = (uint64_t)w[0] * p[2] + (uint64_t)w[1] * b + (uint64_t)w[last] * q[2];
    }
}

// ---- One frame ----------------------------------------------------------------------------------------------
typedef struct {
    const sieve_frame_spec *spec;
    const colour_tables *colour;
    const uint8_t *frame;
    const tap_span *x_spans;
    const uint32_t *x_weights;
    uint8_t *row;          // a converted crop row
    uint64_t *x_sums[2];   // two x-resized crop rows ...
    int32_t x_sums_row[2]; // ... and which crop rows they are (-1: none)
} frame_pass;

// Crop row j resized along x, from the two kept rows or made in place of the older one.
static const uint64_t *x_resized(frame_pass *f, int32_t j) {
    if (f->x_sums_row[0] == j) return f->x_sums[0];
    if (f->x_sums_row[1] == j) return f->x_sums[1];
    const int slot = f->x_sums_row[0] < f->x_sums_row[1] ? 0 : 1;
    const sieve_frame_spec *s = f->spec;
    const uint8_t *row = crop_row(s, f->colour, f->frame, s->crop_y + j, f->row);
    const int shrink = long_spans(s->crop_w, s->out_w);
    uint64_t *sums = f->x_sums[slot];
    if (s->channels == 1) {
        if (shrink) shrink_row_1(row, s->out_w, f->x_spans, f->x_weights, sums);
        else resize_row_1(row, s->out_w, f->x_spans, f->x_weights, sums);
    } else {
        if (shrink) shrink_row_3(row, s->out_w, f->x_spans, f->x_weights, sums);
        else resize_row_3(row, s->out_w, f->x_spans, f->x_weights, sums);
    }
    f->x_sums_row[slot] = j;
    return f->x_sums[slot];
}

// sums in units of 1/d -> (sum + d/2) / d, clamped to 255, through the table.
static void finish_row(const uint64_t *sums, int32_t out_w, int32_t channels, uint64_t d, const int8_t *table, int8_t *out) {
    for (int32_t i = 0; i < out_w; i++)
        for (int32_t c = 0; c < channels; c++) {
            const uint64_t v = (sums[i * channels + c] + d / 2) / d;
            out[i * channels + c] = table[c * 256 + (v > 255 ? 255 : (int32_t)v)];
        }
}

// Any format, size and channel count: one crop row at a time (the header comment).
static void preprocess_rows(const sieve_frame_spec *spec, void *scratch, const uint8_t *frame, int8_t *input) {
    const scratch_layout l = layout_of(spec);
    uint8_t *base = scratch;
    const size_t n = (size_t)spec->out_w * (size_t)spec->channels, x_sums_bytes = align64(n * sizeof(uint64_t));
    frame_pass f = {spec, (const colour_tables *)(base + l.colour), frame, (const tap_span *)(base + l.x_spans),
                    (const uint32_t *)(base + l.x_weights), base + l.row,
                    {(uint64_t *)(base + l.x_sums), (uint64_t *)(base + l.x_sums + x_sums_bytes)}, {-1, -1}};
    const tap_span *y_spans = (const tap_span *)(base + l.y_spans);
    const uint32_t *y_weights = (const uint32_t *)(base + l.y_weights);
    uint64_t *sums = (uint64_t *)(base + l.y_sums);
    const uint64_t d = axis_denominator(spec->crop_w, spec->out_w) * axis_denominator(spec->crop_h, spec->out_h);
    for (int32_t oy = 0; oy < spec->out_h; oy++) {
        const tap_span span = y_spans[oy];
        memset(sums, 0, n * sizeof(uint64_t));
        for (int32_t k = 0; k < span.count; k++) {
            const uint64_t *row = x_resized(&f, span.first + k);
            const uint64_t w = y_weights[span.offset + k];
            for (size_t i = 0; i < n; i++) sums[i] += w * row[i];
        }
        finish_row(sums, spec->out_w, spec->channels, d, spec->table, input + (size_t)oy * n);
    }
}

// ---- Fast path: one luma channel of a GRAY8 or YUV frame, shrinking along y ---------------------------------
// The camera case (a 480x480 crop shrunk to 28x28 luma) spends its time on the crop's pixels, so this
// path is organised around them. Per output row, the crop is walked in blocks of `block` columns; in
// a block the span's source rows are added down the columns in 16-bit sums (a shrink's interior
// rows all weigh dst, so they need one multiply per column, not per pixel), and the block's
// weighted column sums are folded into the output row's x sums with the x weights. Every per-pixel
// step is branch-free arithmetic on whole blocks, which the compiler vectorises; the sums are
// exactly the general path's (integer sums do not depend on the order).
enum { block = 16 }; // columns per block: 16 uint16 sums fit in registers (2 SSE or NEON registers)
typedef uint16_t u16x8 __attribute__((vector_size(16)));

// The crop's Y (or gray) samples: crop pixel (x, k) at y[k * pitch + x] (GRAY8, I420, NV12), or
// at y[k * pitch + 2 x] (YUYV).
typedef struct {
    const uint8_t *y;
    int64_t pitch;
} luma_plane;

// Sample x of a row. YUYV's Y is the first byte of each 2-byte pixel: it is read as a 16-bit word (so
// that a vectorised loop loads whole words instead of gathering every other byte).
static inline uint8_t y_sample(const uint8_t *row, int32_t x, int32_t yuyv) {
    if (!yuyv) return row[x];
    uint16_t word;
    memcpy(&word, row + 2 * x, 2);
    return (uint8_t)(__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? word >> 8 : word);
}

// Luma of a Y or gray sample: itself, or the limited-range expansion clamp((510 (Y - 16) + 219) / 438).
// With d = Y - 16 clamped to 0 ... 219 that is (255 d + 109) / 219 (floor(floor(n / 2) / 219) =
// floor(n / 438)) = d + (36 d + 109) / 219, and the last term equals (d + 3) 10776 / 65536 for every
// such d (an exhaustive check of the 220 values): an add, a 16-bit high multiply and an add, which
// vectorise, where a table lookup per pixel cannot. (The 16-bit casts keep the compiler in 16-bit lanes.)
static inline uint16_t luma_of(uint8_t y, int32_t limited) {
    if (!limited) return y;
    uint8_t d = y > 16 ? (uint8_t)(y - 16) : 0;
    d = d < 219 ? d : 219;
    const uint16_t high = (uint16_t)(((uint32_t)(uint16_t)(d + 3) * 10776u) >> 16);
    return (uint16_t)(d + high);
}

// Luma of crop row k, columns x ... x + n - 1 (n <= block).
static inline __attribute__((always_inline)) void luma_row(luma_plane p, int32_t yuyv, int32_t limited, int32_t k, int32_t x, int32_t n,
                                                           uint16_t *out) {
    const uint8_t *row = p.y + k * p.pitch + (yuyv ? 2 * (int64_t)x : x);
    // The blocks walk ~src/dst rows side by side, 16 bytes at a time, which hardware prefetchers
    // follow poorly when the frame is not in cache: ask for each row's data two cache lines ahead.
    __builtin_prefetch(row + 128);
    for (int32_t c = 0; c < n; c++) out[c] = luma_of(y_sample(row, c, yuyv), limited);
}

// Column sums sum_k wy(k) luma(x + c, k) over a y span (count >= 2: a shrink), n <= block columns from x.
static inline __attribute__((always_inline)) void block_sums(luma_plane p, int32_t yuyv, int32_t limited, tap_span span,
                                                             const uint32_t *wy, int32_t x, int32_t n, uint32_t *sums) {
    uint16_t top[block] = {0}, bottom[block] = {0}, mid[block];
    const int32_t last = span.first + span.count - 1;
    luma_row(p, yuyv, limited, span.first, x, n, top);
    luma_row(p, yuyv, limited, last, x, n, bottom);
    // The interior rows' sums are vectors of 8 uint16 lanes, so that they stay in registers (as a
    // plain array, clang may split them into 16 scalar sums, gcc may keep them in memory).
    u16x8 interior[block / 8] = {{0}};
    for (int32_t k = span.first + 1; k < last; k++) {
        uint16_t row[block] = {0};
        luma_row(p, yuyv, limited, k, x, n, row);
        for (int32_t v = 0; v < block / 8; v++) {
            u16x8 lanes;
            memcpy(&lanes, row + 8 * v, sizeof lanes);
            interior[v] += lanes;
        }
    }
    memcpy(mid, interior, sizeof mid);
    // Weights are at most dst <= 65535, so each product is 16 x 16 -> 32 bits, and the sum is at most
    // 255 crop_h < 2^32. wy[1] is the interior rows' weight (or the bottom one's, when mid is 0).
    const uint16_t w_top = (uint16_t)wy[0], w_mid = (uint16_t)wy[1], w_bottom = (uint16_t)wy[span.count - 1];
    for (int32_t c = 0; c < n; c++) sums[c] = (uint32_t)w_top * top[c] + (uint32_t)w_mid * mid[c] + (uint32_t)w_bottom * bottom[c];
}

// Adds a block's column sums (crop columns x ... x + n - 1) into the output row's x sums. Outputs
// are visited in order from *next; one whose span ends in the block is complete, and *next moves past it.
static void fold_block(const uint32_t *col, int32_t x, int32_t n, const tap_span *spans, const uint32_t *weights, int32_t out_w,
                       int32_t *next, uint64_t *sums) {
    const int32_t end = x + n;
    int32_t i = *next;
    for (; i < out_w && spans[i].first < end; i++) {
        const tap_span span = spans[i];
        const int32_t lo = span.first > x ? span.first : x, stop = span.first + span.count, hi = stop < end ? stop : end;
        const uint32_t *w = weights + span.offset + (lo - span.first);
        uint64_t sum = sums[i];
        for (int32_t j = lo; j < hi; j++) sum += (uint64_t)*w++ * col[j - x];
        sums[i] = sum;
        if (stop > end) break; // continues in the next block
    }
    *next = i;
}

// The fast path for one frame; yuyv and limited are constants where it is called, so each of the four
// combinations gets its own loops.
static inline __attribute__((always_inline)) void luma_shrink(const sieve_frame_spec *s, void *scratch, luma_plane p, int32_t yuyv,
                                                              int32_t limited, int8_t *input) {
    const scratch_layout l = layout_of(s);
    uint8_t *base = scratch;
    const tap_span *x_spans = (const tap_span *)(base + l.x_spans), *y_spans = (const tap_span *)(base + l.y_spans);
    const uint32_t *x_weights = (const uint32_t *)(base + l.x_weights), *y_weights = (const uint32_t *)(base + l.y_weights);
    uint64_t *sums = (uint64_t *)(base + l.y_sums);
    const uint64_t d = axis_denominator(s->crop_w, s->out_w) * axis_denominator(s->crop_h, s->out_h);
    const int32_t w = s->crop_w;
    uint32_t col[block];
    for (int32_t oy = 0; oy < s->out_h; oy++) {
        const tap_span span = y_spans[oy];
        const uint32_t *wy = y_weights + span.offset;
        int32_t next = 0, x = 0;
        memset(sums, 0, (size_t)s->out_w * sizeof(uint64_t));
        for (; x + block <= w; x += block) {
            block_sums(p, yuyv, limited, span, wy, x, block, col);
            fold_block(col, x, block, x_spans, x_weights, s->out_w, &next, sums);
        }
        if (x < w) {
            block_sums(p, yuyv, limited, span, wy, x, w - x, col);
            fold_block(col, x, w - x, x_spans, x_weights, s->out_w, &next, sums);
        }
        finish_row(sums, s->out_w, 1, d, s->table, input + (size_t)oy * (size_t)s->out_w);
    }
}

// Whether the fast path applies: one channel of a format whose luma is a sample (GRAY8, YUV), a
// shrink along y and a shrink or none along x (fold_block's order), and at most 256 interior rows per
// output row so that 16-bit column sums cannot overflow (crop_h <= 257 out_h: count <= 258). It
// needs 128-bit vectors (SSE2, NEON): scalar code, such as the armv7 build's, does the general
// path's one lookup per pixel in fewer instructions.
#if defined(__SSE2__) || defined(__ARM_NEON)
enum { have_vectors = 1 };
#else
enum { have_vectors = 0 };
#endif

static int luma_shrink_applies(const sieve_frame_spec *s) {
    return have_vectors && s->channels == 1 && s->format != SIEVE_FORMAT_RGB24 && s->format != SIEVE_FORMAT_BGR24 && s->crop_h > s->out_h &&
           s->crop_w >= s->out_w && (int64_t)s->crop_h <= 257 * (int64_t)s->out_h;
}

// ---- Fast path: R, G, B of a 4:2:0 frame (I420, NV12) -------------------------------------------------------
// The camera case at camera resolution (a 480x480 crop to 224x224x3). Per output row, the span's
// source rows are converted 8 pixels at a time in 32-bit lanes (the formulas of "Colour"; the chroma
// terms are computed once per chroma row, per sample) and added times their y weight into
// per-channel column sums. The column sums are then interleaved as (R, G, B, 0) per column, so that
// the x resize is one 4-lane multiply-add per tap for all three channels, and each output is rounded
// with an exact reciprocal multiply instead of a 64-bit division. Integer sums do not depend on the
// order, so this equals the general path; it needs every sum below 2^31 (see yuv3_applies).
typedef int32_t i32x8 __attribute__((vector_size(32)));
typedef uint32_t u32x4 __attribute__((vector_size(16)));
typedef uint64_t u64x4 __attribute__((vector_size(32)));
typedef uint8_t u8x8 __attribute__((vector_size(8)));
typedef uint32_t u32x8 __attribute__((vector_size(32)));

#if defined(__x86_64__) && !defined(SIEVE_PREPROCESS_NO_AVX512)
#define YUV3_VBMI_TARGET "avx2,avx512f,avx512bw,avx512vl,avx512vbmi"
#endif

typedef struct {
    int32_t *sums[2][3];  // column sums of R, G, B of this output row and the next: crop_w + 16 each
    int32_t *chroma[3];   // V to R, U and V to G, U to B terms, each twice (yuv3_chroma): crop_w + 32 each
    u32x4 *columns;       // the column sums as (R, G, B, 0): crop_w rounded up to 16, and more read with weight 0
    u32x8 *x_pairs;       // per pair of output columns, per tap 0 ... 3: (4 x the first's weight, 4 x the second's)
    uint32_t *x_taps;     // per output column (out_w rounded up to 4, the extra ones 0): taps 0 ... 3, each weight 4 times
    uint8_t *values;      // one output row's R, G, B, 0 values before the table: out_w + 3 columns
} yuv3_work;

static yuv3_work yuv3_layout(const sieve_frame_spec *s, uint8_t *at) {
    yuv3_work w;
    const size_t n = yuv3_sums_bytes(s), m = yuv3_chroma_bytes(s);
    for (int c = 0; c < 3; c++) {
        w.sums[0][c] = (int32_t *)(at + c * n), w.sums[1][c] = (int32_t *)(at + (3 + c) * n);
        w.chroma[c] = (int32_t *)(at + 6 * n + c * m);
    }
    w.columns = (u32x4 *)(at + 6 * n + 3 * m);
    w.x_pairs = (u32x8 *)(at + 6 * n + 3 * m + align64(((size_t)s->crop_w + 16) * 4 * sizeof(uint32_t)));
    w.x_taps = (uint32_t *)((uint8_t *)w.x_pairs + align64(((size_t)s->out_w + 1) / 2 * 32 * sizeof(uint32_t)));
    w.values = (uint8_t *)w.x_taps + yuv3_taps_bytes(s);
    return w;
}

// When every output column has at most 4 x taps (a shrink by up to 3, any enlargement), two
// columns are resized at once in 8 lanes, (R, G, B, 0) of each: their weights are kept zero-padded
// to 4 taps and spread over the lanes, so the resize is 4 multiply-adds with no branch on a tap
// count (which varies irregularly from column to column). An odd last column is paired with
// itself at weight 0.
static int yuv3_paired(const sieve_frame_spec *s) { return s->crop_w <= 3 * (int64_t)s->out_w; }
static void yuv3_init(const sieve_frame_spec *s, uint8_t *scratch) {
    const scratch_layout l = layout_of(s);
    const yuv3_work w = yuv3_layout(s, scratch + l.yuv3);
    const tap_span *spans = (const tap_span *)(scratch + l.x_spans);
    const uint32_t *weights = (const uint32_t *)(scratch + l.x_weights);
    // Columns past the last block are only ever read with weight 0: defined once here.
    memset(w.columns, 0, ((size_t)s->crop_w + 16) * sizeof(u32x4));
    if (!yuv3_paired(s)) return;
    for (int32_t i = 0; i < s->out_w; i++)
        for (int32_t t = 0; t < 4; t++) {
            const uint32_t weight = t < spans[i].count ? weights[spans[i].offset + t] : 0;
            for (int32_t lane = 0; lane < 4; lane++) w.x_pairs[4 * (i / 2) + t][4 * (i % 2) + lane] = weight;
        }
    if (s->out_w % 2 != 0)
        for (int32_t t = 0; t < 4; t++)
            for (int32_t lane = 4; lane < 8; lane++) w.x_pairs[4 * (s->out_w / 2) + t][lane] = 0;
    for (int32_t i = 0; i < (s->out_w + 3) / 4 * 4; i++)
        for (int32_t t = 0; t < 4; t++) {
            const uint32_t weight = i < s->out_w && t < spans[i].count ? weights[spans[i].offset + t] : 0;
            for (int32_t lane = 0; lane < 4; lane++) w.x_taps[16 * i + 4 * t + lane] = weight;
        }
}

// floor(n / d) = (n m) >> shift for every n < 256 d: m = floor(2^shift / d) + 1 errs by less than
// n / 2^shift < 1 / d when 2^shift > 256 d^2; m < 2^32 and n m < 2^64 for d < 2^22.
typedef struct { uint64_t m; int32_t shift; } reciprocal;

static reciprocal reciprocal_of(uint64_t d) {
    reciprocal r = {0, 0};
    while (((uint64_t)1 << r.shift) <= 256 * d * d) r.shift++;
    r.m = ((uint64_t)1 << r.shift) / d + 1;
    return r;
}

static int yuv3_applies(const sieve_frame_spec *s) {
    // Column sums below 256 dy, outputs below 256 dx dy < 2^30; y weights (at most dy) below 2^15.
    const uint64_t dy = axis_denominator(s->crop_h, s->out_h);
    return yuv3_format(s) && axis_denominator(s->crop_w, s->out_w) * dy < ((uint64_t)1 << 22) && dy < 32768;
}

// Chroma terms of frame row r, each written twice, for the two luma pixels it serves: entries 2j
// and 2j + 1 hold sample j of the crop (frame sample crop_x / 2 + j), 16 entries past the last.
// So crop pixel x reads entry x (crop_x even) or x + 1 (odd), 8 pixels in one load, no shuffle.
static inline __attribute__((always_inline)) void yuv3_chroma(const sieve_frame_spec *s, yuv_row r, const yuv_coefficients *k, yuv3_work w) {
    const int32_t first = s->crop_x / 2, samples = (s->crop_x + s->crop_w + 1) / 2 - first;
    int32_t j = 0;
    if (r.c_step == 1) {  // I420: 8 samples at a time
        const i32x8 krv = (i32x8){0} + k->rv, kgu = (i32x8){0} - k->gu, kgv = (i32x8){0} - k->gv, kbu = (i32x8){0} + k->bu;
        for (; j + 8 <= samples; j += 8) {
            u8x8 ub, vb;
            memcpy(&ub, r.u + first + j, 8), memcpy(&vb, r.v + first + j, 8);
            const i32x8 u = __builtin_convertvector(ub, i32x8) - 128, v = __builtin_convertvector(vb, i32x8) - 128;
            const i32x8 terms[3] = {krv * v, kgu * u + kgv * v, kbu * u};
            for (int c = 0; c < 3; c++) {
                const i32x8 lo = __builtin_shufflevector(terms[c], terms[c], 0, 0, 1, 1, 2, 2, 3, 3);
                const i32x8 hi = __builtin_shufflevector(terms[c], terms[c], 4, 4, 5, 5, 6, 6, 7, 7);
                memcpy(w.chroma[c] + 2 * j, &lo, sizeof lo), memcpy(w.chroma[c] + 2 * j + 8, &hi, sizeof hi);
            }
        }
    }
    for (; j < samples + 8; j++) {
        const int32_t at = (first + (j < samples ? j : samples - 1)) * r.c_step, u = r.u[at] - 128, v = r.v[at] - 128;
        const int32_t terms[3] = {k->rv * v, -k->gu * u - k->gv * v, k->bu * u};
        for (int c = 0; c < 3; c++) w.chroma[c][2 * j] = w.chroma[c][2 * j + 1] = terms[c];
    }
}

// v clamped to 0 ... 255 (compare masks: vpmaxsd / vpminsd, smax / smin); a macro, as gcc notes an ABI
// change for a function returning a 32-byte vector where AVX is off.
#if defined(__clang__)
#define CLAMP255(v, out) ((out) = __builtin_elementwise_min(__builtin_elementwise_max((v), (i32x8){0}), (i32x8){0} + 255))
#else
#define CLAMP255(v, out)                                  \
    do {                                                  \
        const i32x8 zero_ = {0}, top_ = zero_ + 255;      \
        i32x8 v_ = (v);                                   \
        v_ = v_ & ~(v_ < zero_);                          \
        const i32x8 over_ = v_ > top_;                    \
        (out) = (v_ & ~over_) | (top_ & over_);           \
    } while (0)
#endif

// The 8 columns' sums (R, G, B in 8 lanes each) as (R, G, B, 0) per column, stored at `to`.
static inline __attribute__((always_inline)) void yuv3_store_columns(const i32x8 *rgb, u32x4 *to) {
    const i32x8 zero = {0};
    const i32x8 rg_lo = __builtin_shufflevector(rgb[0], rgb[1], 0, 8, 1, 9, 4, 12, 5, 13);
    const i32x8 rg_hi = __builtin_shufflevector(rgb[0], rgb[1], 2, 10, 3, 11, 6, 14, 7, 15);
    const i32x8 bz_lo = __builtin_shufflevector(rgb[2], zero, 0, 8, 1, 9, 4, 12, 5, 13);
    const i32x8 bz_hi = __builtin_shufflevector(rgb[2], zero, 2, 10, 3, 11, 6, 14, 7, 15);
    // Columns 0 and 4, 1 and 5, 2 and 6, 3 and 7 of the block, each in one 8-lane vector.
    const i32x8 p[4] = {__builtin_shufflevector(rg_lo, bz_lo, 0, 1, 8, 9, 4, 5, 12, 13), __builtin_shufflevector(rg_lo, bz_lo, 2, 3, 10, 11, 6, 7, 14, 15),
                        __builtin_shufflevector(rg_hi, bz_hi, 0, 1, 8, 9, 4, 5, 12, 13), __builtin_shufflevector(rg_hi, bz_hi, 2, 3, 10, 11, 6, 7, 14, 15)};
    for (int i = 0; i < 4; i++) {
        to[i] = (u32x4)__builtin_shufflevector(p[i], p[i], 0, 1, 2, 3);
        to[i + 4] = (u32x4)__builtin_shufflevector(p[i], p[i], 4, 5, 6, 7);
    }
}

// Adds weight times R, G, B of a frame row into an output row's column sums. `first`: the row is
// the output row's first, so its products start the sums (no load). `last`: its last, so the
// finished sums go straight to the interleaved columns instead of back to `sums`. When next is not
// NULL, next_weight times the values start the next output row's sums (a row shared by the two:
// converted once; always that row's first). odd: crop_x is odd, so crop pixel x has chroma sample
// (x + 1) / 2 of the crop, else x / 2.
static inline __attribute__((always_inline)) void yuv3_add_row8(const sieve_frame_spec *s, const uint8_t *luma, const yuv_coefficients *k,
                                                                int32_t y0, int32_t weight, int32_t *const *sums, int first, int last,
                                                                int32_t next_weight, int32_t *const *next, yuv3_work w, const int odd) {
    // The weights are below 2^15 (yuv3_applies) and the values in 0 ... 255: masked to 15 bits, both
    // are visibly 16-bit numbers, so clang multiplies them with vpmaddwd (one cheap instruction; the
    // 32-bit vpmulld is two slow ones on Intel cores, and SSE2 has none).
    const i32x8 ky = (i32x8){0} + k->y, offset = (i32x8){0} + (32768 - k->y * y0), wy = (i32x8){0} + (weight & 0x7fff);
    const i32x8 wn = (i32x8){0} + (next_weight & 0x7fff);
    // Local copies of the pointers: with -fno-strict-aliasing every store to the sums would otherwise
    // make the compiler reload them.
    int32_t *const chroma[3] = {w.chroma[0], w.chroma[1], w.chroma[2]}, *const to[3] = {sums[0], sums[1], sums[2]};
    int32_t *const also[3] = {next ? next[0] : NULL, next ? next[1] : NULL, next ? next[2] : NULL};
    u32x4 *const columns = w.columns;
    const int32_t width = s->crop_w;
    for (int32_t x = 0; x < width; x += 8) {
        u8x8 bytes = {0};
        // A constant-size copy is one load; a variable one is a call to memmove per 8 pixels.
        if (width - x >= 8) memcpy(&bytes, luma + x, 8);
        else for (int32_t i = 0; i < width - x; i++) bytes[i] = luma[x + i];  // a partial last block: its extra sums are not used
        const i32x8 yt = __builtin_convertvector(bytes, i32x8) * ky + offset;
        i32x8 rgb[3];
        for (int c = 0; c < 3; c++) {
            i32x8 term;
            memcpy(&term, chroma[c] + x + odd, sizeof term);
            i32x8 value;
            CLAMP255((yt + term) >> 16, value);
            rgb[c] = value * wy;
            if (!first) {
                i32x8 sum;
                memcpy(&sum, to[c] + x, sizeof sum);
                rgb[c] += sum;
            }
            if (!last) memcpy(to[c] + x, &rgb[c], sizeof rgb[c]);
            if (next != NULL) {
                const i32x8 start = value * wn;
                memcpy(also[c] + x, &start, sizeof start);
            }
        }
        if (last) yuv3_store_columns(rgb, columns + x);
    }
}

#if defined(__x86_64__) && !defined(SIEVE_PREPROCESS_NO_AVX512)
// yuv3_add_row with AVX-512, 16 pixels a step: the same arithmetic in 16 lanes (the partial last
// block read under a mask, so nothing past the row is touched), and the last row's sums
// interleaved by two 2-source permutes per 4 columns: (R, G) pairs, then B and a zeroed lane.
__attribute__((target(YUV3_VBMI_TARGET))) static inline void yuv3_add_row16(
    const sieve_frame_spec *s, const uint8_t *luma, const yuv_coefficients *k, int32_t y0, int32_t weight, int32_t *const *sums, int first,
    int last, int32_t next_weight, int32_t *const *next, yuv3_work w, const int odd) {
    const __m512i ky = _mm512_set1_epi32(k->y), offset = _mm512_set1_epi32(32768 - k->y * y0);
    const __m512i wy = _mm512_set1_epi32(weight & 0x7fff), wn = _mm512_set1_epi32(next_weight & 0x7fff);  // vpmaddwd: below 2^15
    const __m512i zero = _mm512_setzero_si512(), top = _mm512_set1_epi32(255);
    // Output vector j holds columns 4j ... 4j + 3. pairs: R (lane 4q) from the first source, G (the
    // rest) from the second; blues: R and G kept (lanes 4q, 4q + 1), B from the second source.
    static const int32_t pairs[4][16] = {
        {0, 16, 16, 16, 1, 17, 17, 17, 2, 18, 18, 18, 3, 19, 19, 19},
        {4, 20, 20, 20, 5, 21, 21, 21, 6, 22, 22, 22, 7, 23, 23, 23},
        {8, 24, 24, 24, 9, 25, 25, 25, 10, 26, 26, 26, 11, 27, 27, 27},
        {12, 28, 28, 28, 13, 29, 29, 29, 14, 30, 30, 30, 15, 31, 31, 31},
    };
    static const int32_t blues[4][16] = {
        {0, 1, 16, 1, 4, 5, 17, 5, 8, 9, 18, 9, 12, 13, 19, 13},
        {0, 1, 20, 1, 4, 5, 21, 5, 8, 9, 22, 9, 12, 13, 23, 13},
        {0, 1, 24, 1, 4, 5, 25, 5, 8, 9, 26, 9, 12, 13, 27, 13},
        {0, 1, 28, 1, 4, 5, 29, 5, 8, 9, 30, 9, 12, 13, 31, 13},
    };
    int32_t *const chroma[3] = {w.chroma[0], w.chroma[1], w.chroma[2]}, *const to[3] = {sums[0], sums[1], sums[2]};
    int32_t *const also[3] = {next ? next[0] : NULL, next ? next[1] : NULL, next ? next[2] : NULL};
    u32x4 *const columns = w.columns;
    const int32_t width = s->crop_w;
    for (int32_t x = 0; x < width; x += 16) {
        const __m128i bytes = width - x >= 16 ? _mm_loadu_si128((const __m128i *)(luma + x)) : _mm_maskz_loadu_epi8((__mmask16)((1u << (width - x)) - 1), luma + x);
        const __m512i yt = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_cvtepu8_epi32(bytes), ky), offset);
        __m512i rgb[3];
        for (int c = 0; c < 3; c++) {
            const __m512i term = _mm512_loadu_si512(chroma[c] + x + odd);
            const __m512i value = _mm512_min_epi32(_mm512_max_epi32(_mm512_srai_epi32(_mm512_add_epi32(yt, term), 16), zero), top);
            rgb[c] = _mm512_madd_epi16(value, wy);
            if (!first) rgb[c] = _mm512_add_epi32(rgb[c], _mm512_loadu_si512(to[c] + x));
            if (!last) _mm512_storeu_si512(to[c] + x, rgb[c]);
            if (next != NULL) _mm512_storeu_si512(also[c] + x, _mm512_madd_epi16(value, wn));
        }
        if (last)
            for (int j = 0; j < 4; j++) {
                const __m512i rg = _mm512_permutex2var_epi32(rgb[0], _mm512_loadu_si512(pairs[j]), rgb[1]);
                _mm512_storeu_si512(columns + x + 4 * j, _mm512_maskz_permutex2var_epi32(0x7777, rg, _mm512_loadu_si512(blues[j]), rgb[2]));
            }
    }
}
#endif

static inline __attribute__((always_inline)) void yuv3_add_row(const sieve_frame_spec *s, const uint8_t *luma, const yuv_coefficients *k,
                                                               int32_t y0, int32_t weight, int32_t *const *sums, int first, int last,
                                                               int32_t next_weight, int32_t *const *next, yuv3_work w, const int odd,
                                                               const int vbmi) {
#if defined(__x86_64__) && !defined(SIEVE_PREPROCESS_NO_AVX512)
    if (vbmi) {
        yuv3_add_row16(s, luma, k, y0, weight, sums, first, last, next_weight, next, w, odd);
        return;
    }
#endif
    (void)vbmi;
    yuv3_add_row8(s, luma, k, y0, weight, sums, first, last, next_weight, next, w, odd);
}

// The column sums as (R, G, B, 0) per column, 8 columns at a time (an output row whose rows were
// all added by the previous one, as when enlarging).
static inline __attribute__((always_inline)) void yuv3_interleave(const sieve_frame_spec *s, int32_t *const *sums, yuv3_work w) {
    for (int32_t x = 0; x < s->crop_w; x += 8) {
        i32x8 rgb[3];
        for (int c = 0; c < 3; c++) memcpy(&rgb[c], sums[c] + x, sizeof rgb[c]);
        yuv3_store_columns(rgb, w.columns + x);
    }
}

// The table lookups of one output row: values (R, G, B, 0 per column) -> out (R, G, B per column).
// Scalar: two columns' values per 8-byte load, taken apart by shifts (loads, not ALU ops, are the
// limit here).
static inline __attribute__((always_inline)) void yuv3_lookup(const uint8_t *values, int32_t out_w, const int8_t *table, int8_t *out) {
    int32_t i = 0;
    for (; i + 2 <= out_w; i += 2) {
        uint64_t v;
        memcpy(&v, values + 4 * i, sizeof v);
        const int8_t r0 = table[v & 255], g0 = table[256 + ((v >> 8) & 255)], b0 = table[512 + ((v >> 16) & 255)];
        const int8_t r1 = table[(v >> 32) & 255], g1 = table[256 + ((v >> 40) & 255)], b1 = table[512 + ((v >> 48) & 255)];
        out[3 * i] = r0, out[3 * i + 1] = g0, out[3 * i + 2] = b0, out[3 * i + 3] = r1, out[3 * i + 4] = g1, out[3 * i + 5] = b1;
    }
    if (i < out_w) out[3 * i] = table[values[4 * i]], out[3 * i + 1] = table[256 + values[4 * i + 1]], out[3 * i + 2] = table[512 + values[4 * i + 2]];
}

#if defined(__x86_64__) && !defined(SIEVE_PREPROCESS_NO_AVX512)
// The same with AVX-512 VBMI, 16 columns a step: each channel's 256-entry table is two 128-byte
// halves in registers, and vpermi2b looks up 64 bytes in one half at once (index bits 0-6); bit 7
// picks the half and the byte's place in its column the channel. A byte permute then drops every
// fourth byte (the 0 channel), leaving 48 output bytes. (The scalar loop takes about 15
// instructions a column: a fifth of the 224x224x3 case's.)
__attribute__((target(YUV3_VBMI_TARGET))) static inline void yuv3_lookup_vbmi(const uint8_t *values, int32_t out_w, const int8_t *table,
                                                                              int8_t *out) {
    __m512i halves[3][2][2];  // [channel][entries 0-127, 128-255][first, second 64]
    for (int c = 0; c < 3; c++)
        for (int h = 0; h < 2; h++)
            for (int q = 0; q < 2; q++) halves[c][h][q] = _mm512_loadu_si512(table + 256 * c + 128 * h + 64 * q);
    const __mmask64 green = 0x2222222222222222ull, blue = 0x4444444444444444ull;
    uint8_t order[64];
    for (int i = 0; i < 64; i++) order[i] = (uint8_t)(i < 48 ? i / 3 * 4 + i % 3 : 0);
    const __m512i pack = _mm512_loadu_si512(order);
    for (int32_t i = 0; i < out_w; i += 16) {
        const int32_t n = out_w - i < 16 ? out_w - i : 16;
        const __m512i v = _mm512_maskz_loadu_epi8(n == 16 ? ~(__mmask64)0 : ((__mmask64)1 << (4 * n)) - 1, values + 4 * i);
        const __mmask64 high = _mm512_movepi8_mask(v);
        __m512i rgb[3];
        for (int c = 0; c < 3; c++)
            rgb[c] = _mm512_mask_mov_epi8(_mm512_permutex2var_epi8(halves[c][0][0], v, halves[c][0][1]), high,
                                          _mm512_permutex2var_epi8(halves[c][1][0], v, halves[c][1][1]));
        const __m512i bytes = _mm512_mask_mov_epi8(_mm512_mask_mov_epi8(rgb[0], green, rgb[1]), blue, rgb[2]);
        _mm512_mask_storeu_epi8(out + 3 * i, ((__mmask64)1 << (3 * n)) - 1, _mm512_permutexvar_epi8(pack, bytes));
    }
}

// The x resize of one output row, four columns a step (yuv3_paired: at most 4 taps a column). A
// column's 4 taps are 4 consecutive interleaved columns, so one 64-byte load holds them all; times
// their weights (x_taps), the four 128-bit quarters of the four products are summed across by two
// rounds of quarter shuffles, leaving (R, G, B, 0) of the 4 columns in one register.
__attribute__((target(YUV3_VBMI_TARGET))) static inline void yuv3_resize_quads(const sieve_frame_spec *s, const tap_span *x_spans, yuv3_work w,
                                                                               uint64_t d, reciprocal q, uint8_t *values) {
    const __m512i half = _mm512_set1_epi32((int32_t)(d / 2)), m = _mm512_set1_epi64((int64_t)q.m);
    const __m128i shift = _mm_cvtsi32_si128(q.shift);
    const int32_t out_w = s->out_w, last = out_w - 1;
    for (int32_t i = 0; i < out_w; i += 4) {
        __m512i p[4];
        for (int k = 0; k < 4; k++) {
            const int32_t c = i + k < last ? i + k : last;  // past the last column: its taps at weight 0
            p[k] = _mm512_mullo_epi32(_mm512_loadu_si512(w.columns + x_spans[c].first), _mm512_loadu_si512(w.x_taps + 16 * (i + k)));
        }
        const __m512i s01 = _mm512_add_epi32(_mm512_shuffle_i32x4(p[0], p[1], 0x44), _mm512_shuffle_i32x4(p[0], p[1], 0xee));
        const __m512i s23 = _mm512_add_epi32(_mm512_shuffle_i32x4(p[2], p[3], 0x44), _mm512_shuffle_i32x4(p[2], p[3], 0xee));
        const __m512i sum = _mm512_add_epi32(_mm512_add_epi32(_mm512_shuffle_i32x4(s01, s23, 0x88), _mm512_shuffle_i32x4(s01, s23, 0xdd)), half);
        // floor(sum / d) by the reciprocal, in 64-bit lanes: the even 32-bit lanes, then the odd.
        const __m512i even = _mm512_srl_epi64(_mm512_mul_epu32(sum, m), shift);
        const __m512i odd = _mm512_srl_epi64(_mm512_mul_epu32(_mm512_srli_epi64(sum, 32), m), shift);
        _mm_storeu_si128((__m128i *)(values + 4 * i), _mm512_cvtepi32_epi8(_mm512_or_si512(even, _mm512_slli_epi64(odd, 32))));
    }
}
#endif

// One output row from the interleaved column sums, two columns at a time (yuv3_paired). Each
// value is rounded by the reciprocal multiply, in 64-bit lanes: the even 32-bit lanes, then the odd.
static inline __attribute__((always_inline)) void yuv3_resize_pairs(const sieve_frame_spec *s, const tap_span *x_spans, yuv3_work w, uint64_t d,
                                                                    reciprocal q, const int8_t *table, int8_t *out, const int vbmi) {
    // m < 2^32, zero-extended so that the compiler multiplies 32 x 32 -> 64 bits (one vpmuludq).
    const u64x4 m = __builtin_convertvector((u32x4){0} + (uint32_t)q.m, u64x4), low = (u64x4){0} + 0xffffffffu;
    const int32_t out_w = s->out_w;  // (a local: the byte stores below could alias the spec)
#if defined(__x86_64__) && !defined(SIEVE_PREPROCESS_NO_AVX512)
    if (vbmi) {
        yuv3_resize_quads(s, x_spans, w, d, q, w.values);
        yuv3_lookup_vbmi(w.values, out_w, table, out);
        return;
    }
#endif
    for (int32_t i = 0; i < out_w; i += 2) {
        const u32x4 *first = w.columns + x_spans[i].first;
        const u32x4 *second = w.columns + x_spans[i + 1 < out_w ? i + 1 : i].first;
        const u32x8 *weights = w.x_pairs + 2 * i;
        u32x8 sum = (u32x8){0} + (uint32_t)(d / 2);
        for (int32_t t = 0; t < 4; t++) sum += weights[t] * __builtin_shufflevector(first[t], second[t], 0, 1, 2, 3, 4, 5, 6, 7);
        const u64x4 wide = (u64x4)sum;
        const u64x4 even = ((wide & low) * m) >> q.shift, odd = ((wide >> 32) * m) >> q.shift;
        const u32x8 v = (u32x8)(even | (odd << 32));
        const u8x8 bytes = __builtin_convertvector(v, u8x8);
        memcpy(w.values + 4 * i, &bytes, sizeof bytes);
    }
    // The table lookups in a loop of their own, free of the vector extracts.
    yuv3_lookup(w.values, out_w, table, out);
}

// One output row, one column at a time: any number of x taps.
static inline __attribute__((always_inline)) void yuv3_resize_columns(const sieve_frame_spec *s, const tap_span *x_spans, const uint32_t *x_weights,
                                                                      yuv3_work w, uint64_t d, reciprocal q, const int8_t *table, int8_t *out) {
    // m < 2^32: zero-extended so that the compiler multiplies 32 x 32 -> 64 bits (one vpmuludq).
    const u64x4 m = __builtin_convertvector((u32x4){0} + (uint32_t)q.m, u64x4);
    for (int32_t i = 0; i < s->out_w; i++) {
        const tap_span xs = x_spans[i];
        const uint32_t *wx = x_weights + xs.offset;
        const u32x4 *col = w.columns + xs.first;
        u32x4 sum = (u32x4){0} + (uint32_t)(d / 2);
        for (int32_t t = 0; t < xs.count; t++) sum += wx[t] * col[t];
        const u64x4 v = (__builtin_convertvector(sum, u64x4) * m) >> q.shift;
        const int8_t r = table[v[0]], g = table[256 + v[1]], b = table[512 + v[2]];
        out[3 * i] = r, out[3 * i + 1] = g, out[3 * i + 2] = b;
    }
}

static inline __attribute__((always_inline)) void yuv3_frame(const sieve_frame_spec *s, void *scratch, const uint8_t *frame, int8_t *input,
                                                             const int odd, const int vbmi) {
    const scratch_layout l = layout_of(s);
    uint8_t *base = scratch;
    const yuv3_work w = yuv3_layout(s, base + l.yuv3);
    const tap_span *x_spans = (const tap_span *)(base + l.x_spans), *y_spans = (const tap_span *)(base + l.y_spans);
    const uint32_t *x_weights = (const uint32_t *)(base + l.x_weights), *y_weights = (const uint32_t *)(base + l.y_weights);
    const uint64_t d = axis_denominator(s->crop_w, s->out_w) * axis_denominator(s->crop_h, s->out_h);
    const reciprocal q = reciprocal_of(d);
    const int paired = yuv3_paired(s);
    const yuv_coefficients *k = s->full_range ? &full_coefficients : &limited_coefficients;
    const int32_t y0 = s->full_range ? 0 : 16;
    const int8_t *table = s->table;
    int32_t chroma_row = -1, carried = -1;  // carried: the crop row whose products started this output row's sums
    int cur = 0;
    for (int32_t oy = 0; oy < s->out_h; oy++) {
        const tap_span span = y_spans[oy];
        const int32_t shared = oy + 1 < s->out_h && y_spans[oy + 1].first == span.first + span.count - 1;
        const int32_t next_weight = oy + 1 < s->out_h ? (int32_t)y_weights[y_spans[oy + 1].offset] : 0;
        int32_t next_carried = -1;
        const int32_t skip = span.first == carried;  // row 0 is already in the sums
        if (skip && span.count == 1) yuv3_interleave(s, w.sums[cur], w);
        for (int32_t j = skip; j < span.count; j++) {
            const int32_t y = s->crop_y + span.first + j;
            const yuv_row r = yuv_row_at(s, frame, y);
            if (y / 2 != chroma_row) yuv3_chroma(s, r, k, w), chroma_row = y / 2;
            const int32_t weight = (int32_t)y_weights[span.offset + j], first = j == 0, last = j == span.count - 1;
            // Each combination of first, last and shared is its own loop (constants inlined), so that
            // the per-block work has no branches on them.
            const uint8_t *luma = r.y + s->crop_x;
            int32_t *const *sums = w.sums[cur], *const *next = w.sums[1 - cur];
            if (shared && last) {
                if (first) yuv3_add_row(s, luma, k, y0, weight, sums, 1, 1, next_weight, next, w, odd, vbmi);
                else yuv3_add_row(s, luma, k, y0, weight, sums, 0, 1, next_weight, next, w, odd, vbmi);
                next_carried = span.first + j;
            } else if (first) {
                if (last) yuv3_add_row(s, luma, k, y0, weight, sums, 1, 1, 0, NULL, w, odd, vbmi);
                else yuv3_add_row(s, luma, k, y0, weight, sums, 1, 0, 0, NULL, w, odd, vbmi);
            } else {
                if (last) yuv3_add_row(s, luma, k, y0, weight, sums, 0, 1, 0, NULL, w, odd, vbmi);
                else yuv3_add_row(s, luma, k, y0, weight, sums, 0, 0, 0, NULL, w, odd, vbmi);
            }
        }
        int8_t *out = input + (size_t)oy * s->out_w * 3;
        if (paired) yuv3_resize_pairs(s, x_spans, w, d, q, table, out, vbmi);
        else yuv3_resize_columns(s, x_spans, x_weights, w, d, q, table, out);
        cur = 1 - cur, carried = next_carried;
    }
}

#if defined(__x86_64__) && !defined(SIEVE_PREPROCESS_NO_AVX2)
__attribute__((target("avx2"))) static void yuv3_frame_avx2(const sieve_frame_spec *s, void *scratch, const uint8_t *frame, int8_t *input) {
    if (s->crop_x & 1) yuv3_frame(s, scratch, frame, input, 1, 0);
    else yuv3_frame(s, scratch, frame, input, 0, 0);
}
#endif

#if defined(__x86_64__) && !defined(SIEVE_PREPROCESS_NO_AVX512)
__attribute__((target(YUV3_VBMI_TARGET))) static void yuv3_frame_vbmi(const sieve_frame_spec *s, void *scratch, const uint8_t *frame,
                                                                      int8_t *input) {
    if (s->crop_x & 1) yuv3_frame(s, scratch, frame, input, 1, 1);
    else yuv3_frame(s, scratch, frame, input, 0, 1);
}

static int have_vbmi(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512vbmi");
}
#endif

// 128-bit vectors: SSE2 (x86 without AVX2), NEON.
static void yuv3_frame_plain(const sieve_frame_spec *s, void *scratch, const uint8_t *frame, int8_t *input) {
    if (s->crop_x & 1) yuv3_frame(s, scratch, frame, input, 1, 0);
    else yuv3_frame(s, scratch, frame, input, 0, 0);
}

int32_t sieve_preprocess_path(const sieve_frame_spec *spec) {
    if (have_vectors && yuv3_applies(spec)) return SIEVE_PREPROCESS_RGB420;
    return luma_shrink_applies(spec) ? SIEVE_PREPROCESS_LUMA : SIEVE_PREPROCESS_GENERAL;
}

void sieve_preprocess(const sieve_frame_spec *spec, void *scratch, const uint8_t *frame, int8_t *input) {
    if (have_vectors && yuv3_applies(spec)) {
#if defined(__x86_64__) && !defined(SIEVE_PREPROCESS_NO_AVX512)  // (defined by the test to check the AVX2 build here)
        if (have_vbmi()) { yuv3_frame_vbmi(spec, scratch, frame, input); return; }
#endif
#if defined(__x86_64__) && !defined(SIEVE_PREPROCESS_NO_AVX2)  // (defined by the test to check the SSE2 build)
        if (__builtin_cpu_supports("avx2")) { yuv3_frame_avx2(spec, scratch, frame, input); return; }
#endif
        yuv3_frame_plain(spec, scratch, frame, input);
        return;
    }
    if (!luma_shrink_applies(spec)) {
        preprocess_rows(spec, scratch, frame, input);
        return;
    }
    const int64_t pitch = pitch_of(spec);
    const int32_t limited = spec->format != SIEVE_FORMAT_GRAY8 && !spec->full_range;
    if (spec->format == SIEVE_FORMAT_YUYV) {
        const luma_plane p = {frame + spec->crop_y * pitch + 2 * (int64_t)spec->crop_x, pitch};
        if (limited) luma_shrink(spec, scratch, p, 1, 1, input);
        else luma_shrink(spec, scratch, p, 1, 0, input);
    } else {
        const luma_plane p = {frame + spec->crop_y * pitch + spec->crop_x, pitch};
        if (limited) luma_shrink(spec, scratch, p, 0, 1, input);
        else luma_shrink(spec, scratch, p, 0, 0, input);
    }
}
