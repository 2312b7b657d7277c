// Head scores: a handful of floats per head, so plain libm is fine.
#include <math.h>
#include "sieve_kernels.h"

void sieve_sigmoid_scores(const int8_t *logits, int32_t count, float scale, int32_t zero_point, float *scores) {
    for (int32_t i = 0; i < count; i++) {
        const float z = scale * (float)(logits[i] - zero_point);
        scores[i] = 1.0f / (1.0f + expf(-z));
    }
}

void sieve_softmax_scores(const int8_t *logits, int32_t count, float scale, int32_t zero_point, float *scores) {
    int32_t top = -128;
    for (int32_t i = 0; i < count; i++) if (logits[i] > top) top = logits[i];
    float total = 0.0f;
    for (int32_t i = 0; i < count; i++) {
        scores[i] = expf(scale * (float)(logits[i] - top));
        total += scores[i];
    }
    for (int32_t i = 0; i < count; i++) scores[i] /= total;
    (void)zero_point; // softmax is shift-invariant: the zero point cancels
}

float sieve_expf(float x) { return expf(x); }
