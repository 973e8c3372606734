/* Which condition keys a compiled policy reads: the service asks before it spends a query on
 * facts that only some policies use (aws:ResourceTag/, kms:ResourceAliases). */
#include <string.h>

#include "policy/policy_internal.h"

static bool starts_with(const char *lower_key, const char *lower_prefix)
{
    return lower_key != NULL && strncmp(lower_key, lower_prefix, strlen(lower_prefix)) == 0;
}

static bool pattern_mentions(const pol_pattern *p, const char *lower_prefix)
{
    for (size_t i = 0; i < p->nvars; i++) {
        if (starts_with(p->vars[i].key, lower_prefix)) {
            return true;
        }
    }
    return false;
}

static bool patterns_mention(const pol_pattern *p, size_t n, const char *lower_prefix)
{
    for (size_t i = 0; i < n; i++) {
        if (pattern_mentions(&p[i], lower_prefix)) {
            return true;
        }
    }
    return false;
}

static bool cond_mentions(const pol_cond *c, const char *lower_prefix)
{
    if (starts_with(c->key, lower_prefix)) {
        return true;
    }
    for (size_t i = 0; i < c->nvalues; i++) {
        if (pattern_mentions(&c->values[i].pat, lower_prefix)) {
            return true;
        }
    }
    return false;
}

bool kms_policy_mentions(const kms_policy *policy, const char *lower_prefix)
{
    for (size_t s = 0; policy != NULL && s < policy->nstmts; s++) {
        const pol_stmt *st = &policy->stmts[s];
        if (patterns_mention(st->actions, st->nactions, lower_prefix) ||
            patterns_mention(st->resources, st->nresources, lower_prefix)) {
            return true;
        }
        for (size_t c = 0; c < st->nconds; c++) {
            if (cond_mentions(&st->conds[c], lower_prefix)) {
                return true;
            }
        }
    }
    return false;
}
