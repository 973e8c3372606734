/* kmsctl's IAM, STS and Organizations commands, named as in `aws iam`, `aws sts` and
 * `aws organizations`. Each maps its options to the members of the request of the operation
 * "iam:NAME", "sts:NAME" or "organizations:NAME" that kms_call runs through the gate. */
#include "kmsctl.h"

/* clang-format off */
const struct command kmsctl_iam_commands[] = {
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
/* clang-format on */
