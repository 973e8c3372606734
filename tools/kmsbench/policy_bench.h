/* The PolicyEvaluate measurement of kmsbench: kms_policy_evaluate alone, no KMS home. */
#ifndef KMSBENCH_POLICY_BENCH_H
#define KMSBENCH_POLICY_BENCH_H

typedef struct policy_bench policy_bench;

/* Compiles the policies and builds the request once; NULL on failure (message printed). */
policy_bench *policy_bench_new(void);
void policy_bench_free(policy_bench *pb);
/* One evaluation; 0 when it gives the expected decision (allowed), else -1 (printed). */
int policy_bench_run(const policy_bench *pb);

#endif
