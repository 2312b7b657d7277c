// An ADD input's term rq((x - zp) << left_shift, M, s) (docs/FORMAT.md) in its cheapest exact form,
// chosen once per op by both x86 ADD kernels. With M = 2^30 (the quantiser gives it to the input of
// the larger scale), d = x - zp (|d| <= 255) and left_shift <= 22 (d << left_shift cannot wrap),
// the term is exactly d << e for e = left_shift + 30 - s >= 0 (the low 32 bits: 0 from e >= 32),
// else (d + 2^(k-1)) >> k for k = -e, which is 0 from k >= 9. Other multipliers requantise.
#ifndef SIEVE_ADD_TERM_H
#define SIEVE_ADD_TERM_H

#include <stdint.h>

typedef enum { ADD_TERM_REQUANTIZE, ADD_TERM_SHIFT_LEFT, ADD_TERM_ROUND_RIGHT, ADD_TERM_ZERO } add_term_mode;

typedef struct {
    add_term_mode mode;
    int32_t count;  // the shift: left_shift (requantise), e (left) or k (right)
    int32_t round;  // 2^(k-1) for a right shift
} add_term_plan;

static inline add_term_plan add_term_plan_for(int32_t multiplier, int32_t shift, int32_t left_shift) {
    add_term_plan t = {ADD_TERM_REQUANTIZE, left_shift, 0};
    if (multiplier != 1 << 30 || left_shift > 22) return t;
    const int32_t e = left_shift + 30 - shift;
    if (e >= 0) {
        t.mode = ADD_TERM_SHIFT_LEFT;
        t.count = e;
    } else if (-e >= 9) {
        t.mode = ADD_TERM_ZERO;
    } else {
        t.mode = ADD_TERM_ROUND_RIGHT;
        t.count = -e;
        t.round = 1 << (-e - 1);
    }
    return t;
}

// rq(d << L, M, s) == rq(d << (L + k), M, s + k) exactly; the k >= 0 that gives s + k >= 33 (the
// 32-bit requantisation form), or -1 when d << (L + k) could wrap (|d| <= 255: L + k <= 23).
static inline int32_t add_term_high_k(int32_t shift, int32_t left_shift) {
    const int32_t k = shift >= 33 ? 0 : 33 - shift;
    return left_shift + k <= 23 ? k : -1;
}

#endif
