// Reads from a read-only file mapping that survive the file being truncated under it.
//
// A mapped page past the end of its file raises SIGBUS when touched. A collector that keeps
// metric files mapped between scrapes reads through `pmp_guarded_gather`, which catches that
// signal for the thread reading (and only while it reads) and reports the read as failed;
// every other SIGBUS goes to the handler that was installed before (the Swift runtime's
// backtracer, or the default action).
#ifndef PMP_GUARDED_READ_H
#define PMP_GUARDED_READ_H

#include <stdint.h>

/// Copies, for each `i < count`, the 8 bytes at `base + offsets[i]` to `values[i]` and the 8
/// bytes after them to `stamps[i]`.
///
/// Returns 0 when every read succeeded; -1 when one raised SIGBUS (the mapped file no longer
/// reaches it: the values copied are then incomplete); -2 when the guard is not in place
/// (another SIGBUS handler replaced it since it was installed), and nothing was read.
int pmp_guarded_gather(const unsigned char *base, const uint32_t *offsets, long count, double *values,
                       double *stamps);

#endif
