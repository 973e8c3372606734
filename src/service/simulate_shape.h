/* IAM's EvaluationResult for the simulators (SimulateCustomPolicy, SimulatePrincipalPolicy):
 * the response shape only; the decisions are src/policy's. Private to src/service. */
#ifndef KMS_SERVICE_SIMULATE_SHAPE_H
#define KMS_SERVICE_SIMULATE_SHAPE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "policy/policy.h"

/* One policy a simulation evaluates: compiled, its text (for the statements' StartPosition and
 * EndPosition, and the condition keys of MissingContextValues; NULL: unknown), IAM's
 * SourcePolicyType (NULL: left out) and SourcePolicyId (NULL: the policy's label). */
typedef struct kms_sim_source {
    const kms_policy *policy;
    const char *text;
    const char *type;
    const char *id;
} kms_sim_source;

/* The EvaluationResult of in's action on in's resource, decided as res says: EvalActionName,
 * EvalResourceName, EvalDecision, MatchedStatements ({SourcePolicyId, SourcePolicyType,
 * StartPosition, EndPosition}), MissingContextValues (condition keys of the statements that
 * apply to the action, absent from the context), EvalDecisionDetails (present, empty, for a
 * resource ARN), PermissionsBoundaryDecisionDetail and OrganizationsDecisionDetail when those
 * policies took part, and ResourceSpecificResults when the caller named resources
 * (resources_given). NULL when out of memory. */
json_t *kms_sim_result_json(const kms_eval_input *in, const kms_eval_result *res,
                            const kms_sim_source *sources, size_t nsources, bool resources_given);

#endif
