// OpenBLAS's CBLAS interface (Debian: libopenblas-dev).
#include <cblas.h>
// Thread control lives outside the CBLAS standard; declared here so Swift can call it.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
