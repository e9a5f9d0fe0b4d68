// glibc calls Swift does not import (malloc.h is not part of the Glibc module).
#ifndef JOBYLON_BRIDGE_CSYSTEM_SHIM_H
#define JOBYLON_BRIDGE_CSYSTEM_SHIM_H

/// Keeps freed memory in the process instead of handing it back to the kernel
/// on every free (glibc's defaults trim heaps with madvise, and each trim
/// flushes TLBs on every core: measured as ~7% of the daemon's CPU under load).
/// Returns 1 when every setting was accepted.
int jb_tune_allocator(void);

#endif
