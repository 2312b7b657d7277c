// Head scores: a handful of floats per head, so plain libm is fine.
#include <math.h>
#include "sieve_kernels.h"

float sieve_sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

void sieve_sigmoid_scores(const float *logits, int32_t count, float *scores) {
    for (int32_t i = 0; i < count; i++) scores[i] = sieve_sigmoid(logits[i]);
}

void sieve_softmax_scores(const float *logits, int32_t count, float *scores) {
    float top = -INFINITY;
    for (int32_t i = 0; i < count; i++) if (logits[i] > top) top = logits[i];
    float total = 0.0f;
    for (int32_t i = 0; i < count; i++) {
        scores[i] = expf(logits[i] - top);
        total += scores[i];
    }
    for (int32_t i = 0; i < count; i++) scores[i] /= total;
}

float sieve_expf(float x) { return expf(x); }
