/* The LookupEvents measurement of kmsbench: the audit trail's readers (lookup-events,
 * usage-report, validate-logs) on a large synthetic trail, no KMS home. */
#ifndef KMSBENCH_AUDIT_BENCH_H
#define KMSBENCH_AUDIT_BENCH_H

#include <stdint.h>

/* Writes a trail of `records` records, in segments of `segment_records`, into a new temporary
 * directory (under $TMPDIR, else /tmp), prints one JSON object per measurement on stdout and
 * removes the directory. 0, or -1 with the reason printed on stderr (also when validate-logs
 * does not find the trail valid). */
int audit_bench_run(int64_t records, int64_t segment_records);

#endif
