// zlib (Debian: zlib1g-dev), for the quantiser's gzipped IDX calibration files. Host only.
#include <zlib.h>
