#include "CSystemShim.h"

#include <stdlib.h>  /* defines __GLIBC__ on glibc systems */
#if defined(__GLIBC__)
#include <malloc.h>
#endif

int jb_tune_allocator(void) {
#if defined(__GLIBC__)
    int ok = 1;
    ok &= mallopt(M_TRIM_THRESHOLD, 256 << 20);  /* trim only above 256 MiB free at the top */
    ok &= mallopt(M_TOP_PAD, 64 << 20);          /* grow heaps in 64 MiB steps */
    ok &= mallopt(M_MMAP_THRESHOLD, 32 << 20);   /* a fixed threshold also stops glibc's dynamic one */
    return ok;
#else
    return 1;
#endif
}
