// OpenBLAS's CBLAS (Debian: libopenblas-dev), for the quantiser's float convolutions. Host only.
#include <cblas.h>
