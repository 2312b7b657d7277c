// Compiles the rest of a file for one instruction set, with clang (SwiftPM) or gcc (cross builds):
//   SIEVE_TARGET_BEGIN("avx512f,avx512bw")  ... SIEVE_TARGET_END
// so each path's file carries its own ISA while the binary still runs on any core.
#ifndef SIEVE_TARGET_H
#define SIEVE_TARGET_H

#define SIEVE_PRAGMA(x) _Pragma(#x)
#if defined(__clang__)
#define SIEVE_TARGET_BEGIN(isa) SIEVE_PRAGMA(clang attribute push(__attribute__((target(isa))), apply_to = function))
#define SIEVE_TARGET_END SIEVE_PRAGMA(clang attribute pop)
#else
#define SIEVE_TARGET_BEGIN(isa) SIEVE_PRAGMA(GCC push_options) SIEVE_PRAGMA(GCC target(isa))
#define SIEVE_TARGET_END SIEVE_PRAGMA(GCC pop_options)
#endif

#endif
