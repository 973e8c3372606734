/* kmsctl advisor, IAM: the root user, the users and the password policy (CIS AWS Foundations
 * section 1, as the IAM credential report gives the data). Everything is read through the IAM
 * module's own reads (the credential report's sources: users, login profiles, MFA devices,
 * access keys and their last use), never by a query of its own: GenerateCredentialReport would
 * store a report, and the advisor changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/advisor.h"
#include "util/util.h"

#define DAY 86400
#define ADMIN_POLICY_ARN "arn:aws:iam::aws:policy/AdministratorAccess"
#define ADMIN_GROUP "Admins"
/* init's own IAM setup is recorded as the root user (audit_trail_init.c): the first records of
 * the trail, which are no use of root by a person. */
#define INIT_RECORDS_MAX 16

typedef int (*list_fn)(kms_iam *iam, const char *account_id, const char *path_prefix,
                       const char *marker, size_t max_items, json_t **out);
typedef int (*entity_fn)(kms_advisor *a, json_t *entity);

/* fn for every entity of a List{Users,Groups,Roles} answer's `member`, page by page. */
static int walk(kms_advisor *a, list_fn list, const char *member, entity_fn fn)
{
    int r = -1;
    char *marker = NULL;
    json_t *page = NULL;
    do {
        if (list(a->client->iam, a->client->cfg.account_id, NULL, marker, 100, &page) != 0) {
            goto out;
        }
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(page, member), i, e)
        {
            if (fn(a, e) != 0) {
                goto out;
            }
        }
        const char *next = json_is_true(json_object_get(page, "IsTruncated"))
                               ? json_string_value(json_object_get(page, "Marker"))
                               : NULL;
        free(marker);
        marker = next != NULL ? strdup(next) : NULL;
        json_decref(page);
        page = NULL;
    } while (marker != NULL);
    r = 0;
out:
    json_decref(page);
    free(marker);
    return r;
}

static int64_t int_of(json_t *o, const char *member)
{
    return (int64_t)json_integer_value(json_object_get(o, member));
}

/* Whether the user (NULL: root) has a password (a login profile). */
static int has_password(kms_advisor *a, const char *user, bool *yes)
{
    json_t *p = NULL;
    *yes = false;
    if (kms_iam_login_profile_get(a->client->iam, a->client->cfg.account_id, user, &p) != 0) {
        return kms_last_error() == KMS_ERR_NO_SUCH_ENTITY ? 0 : -1;
    }
    json_decref(p);
    *yes = true;
    return 0;
}

/* Whether the user (NULL: root) has an enabled MFA device. */
static int has_mfa(kms_advisor *a, const char *user, bool *yes)
{
    json_t *l = NULL;
    *yes = false;
    KMS_GUARD(kms_iam_mfa_list(a->client->iam, a->client->cfg.account_id, user, &l));
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(l, "MFADevices"), i, d)
    {
        *yes = *yes || int_of(d, "EnableDate") > 0;
    }
    json_decref(l);
    return 0;
}

/* ---- The root user --------------------------------------------------------------------------- */

/* Counts root's events that are not init's own setup. */
static int root_event(void *arg, json_t *event, json_t *record)
{
    static const char *const init_events[] = {
        "CreateGroup",     "AttachGroupPolicy",           "CreateUser",        "AddUserToGroup",
        "CreateAccessKey", "UpdateAccountPasswordPolicy", "CreateLoginProfile"};
    size_t *count = arg;
    json_int_t seq =
        json_integer_value(json_object_get(json_object_get(record, "auditChain"), "sequence"));
    const char *name = json_string_value(json_object_get(event, "EventName"));
    if (seq > 0 && seq <= INIT_RECORDS_MAX && name != NULL) {
        for (size_t i = 0; i < sizeof init_events / sizeof init_events[0]; i++) {
            if (strcmp(name, init_events[i]) == 0) {
                return 0;
            }
        }
    }
    ++*count;
    return 0;
}

static int root_checks(kms_advisor *a)
{
    int r = -1;
    json_t *keys = NULL;
    bool password = false, mfa = false;
    size_t used = 0;
    char arn[64];
    snprintf(arn, sizeof arn, "arn:aws:iam::%s:root", a->client->cfg.account_id);
    if (kms_iam_access_key_list(a->client->iam, a->client->cfg.account_id, NULL, &keys) != 0) {
        goto out;
    }
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(keys, "AccessKeyMetadata"), i, k)
    {
        if (kms_advisor_add(a, "Root.AccessKeys", KMS_ADVISOR_CRITICAL, arn,
                            "The root user has an access key: a key that can do everything "
                            "in the account and that no policy can limit. Use IAM users or "
                            "roles; run the fix as the root user (kmsctl sign-in, then "
                            "--profile with the profile it saved).",
                            "kmsctl delete-access-key --access-key-id %s",
                            json_string_value(json_object_get(k, "AccessKeyId"))) != 0) {
            goto out;
        }
    }
    if (has_password(a, NULL, &password) != 0 || has_mfa(a, NULL, &mfa) != 0) {
        goto out;
    }
    if (password && !mfa &&
        kms_advisor_add(a, "Root.NoMFA", KMS_ADVISOR_HIGH, arn,
                        "The root user can sign in with a password alone, no MFA device. "
                        "Either enrol one (kmsctl create-virtual-mfa-device, then "
                        "enable-mfa-device, signed in as root), or take away root's console "
                        "access with the fix, run as the root user.",
                        "kmsctl delete-login-profile") != 0) {
        goto out;
    }
    if (kms_advisor_events(a, "Username", "root", a->now - KMS_ADVISOR_RECENT_DAYS * DAY, 1000,
                           root_event, &used) != 0) {
        goto out;
    }
    if (used > 0 &&
        kms_advisor_add(a, "Root.RecentlyUsed", KMS_ADVISOR_WARNING, arn,
                        "The root user made calls in the last 30 days (init's own setup not "
                        "counted). Day-to-day work belongs to IAM users in the Admins group; "
                        "review what root did with the fix's command. The finding clears "
                        "once root has not been used for 30 days.",
                        "kmsctl lookup-events --lookup-attributes "
                        "AttributeKey=Username,AttributeValue=root") != 0) {
        goto out;
    }
    r = 0;
out:
    json_decref(keys);
    return r;
}

/* ---- Users ----------------------------------------------------------------------------------- */

/* The last use of an access key (0: never). */
static int key_last_used(kms_advisor *a, const char *key_id, int64_t *when)
{
    json_t *o = NULL;
    *when = 0;
    KMS_GUARD(kms_iam_access_key_last_used(a->client->iam, a->client->cfg.account_id, key_id, &o));
    *when = int_of(json_object_get(o, "AccessKeyLastUsed"), "LastUsedDate");
    json_decref(o);
    return 0;
}

static int key_checks(kms_advisor *a, const char *user, const char *arn, json_t *keys,
                      int64_t *last_use, char *deactivate, size_t size)
{
    int64_t stale = a->now - KMS_ADVISOR_STALE_DAYS * DAY;
    const char *oldest = NULL;
    int64_t oldest_date = 0;
    size_t active = 0, i;
    json_t *k;
    json_array_foreach(json_object_get(keys, "AccessKeyMetadata"), i, k)
    {
        const char *id = json_string_value(json_object_get(k, "AccessKeyId"));
        int64_t created = int_of(k, "CreateDate"), used = 0;
        if (id == NULL || strcmp(json_string_value(json_object_get(k, "Status")), "Active") != 0) {
            continue;
        }
        KMS_GUARD(key_last_used(a, id, &used));
        *last_use = used > *last_use ? used : *last_use;
        if (oldest == NULL || created < oldest_date) {
            oldest = id;
            oldest_date = created;
        }
        size_t n = strlen(deactivate);
        snprintf(deactivate + n, size - n,
                 "%skmsctl update-access-key --user-name %s --access-key-id %s --status Inactive",
                 n > 0 ? " && " : "", user, id);
        active++;
        if (created < stale) {
            KMS_GUARD(kms_advisor_add(
                a, "IAM.AccessKeyOld", KMS_ADVISOR_WARNING, arn,
                "An active access key is older than 90 days. Rotate it: create a new key "
                "(kmsctl create-access-key), move its users to it, then deactivate and delete "
                "the old one (the fix deactivates it).",
                "kmsctl update-access-key --user-name %s --access-key-id %s --status Inactive",
                user, id));
        }
        if ((used > 0 ? used : created) < stale) {
            KMS_GUARD(kms_advisor_add(
                a, "IAM.AccessKeyUnused", KMS_ADVISOR_WARNING, arn,
                "An active access key has not been used for 90 days: a credential nobody "
                "needs, which can still be stolen and used. Deactivate it (then delete it).",
                "kmsctl update-access-key --user-name %s --access-key-id %s --status Inactive",
                user, id));
        }
    }
    if (active > 1) {
        KMS_GUARD(kms_advisor_add(a, "IAM.TwoActiveKeys", KMS_ADVISOR_WARNING, arn,
                                  "The user has two active access keys. Two are meant for the "
                                  "moment of a rotation only; deactivate the older one once "
                                  "nothing uses it.",
                                  "kmsctl update-access-key --user-name %s --access-key-id %s "
                                  "--status Inactive",
                                  user, oldest));
    }
    return 0;
}

/* Policies attached to the user itself, and AdministratorAccess there. */
static int direct_policy_checks(kms_advisor *a, const char *user, const char *arn)
{
    int r = -1;
    json_t *attached = NULL, *inline_ = NULL;
    const char *acct = a->client->cfg.account_id;
    static const char why[] =
        "A policy is attached to the user directly. Permissions granted through groups (or roles) "
        "are reviewed and taken away in one place; attach the policy to a group, add the user to "
        "it, then remove the direct attachment with the fix.";
    if (kms_iam_policy_list_attached(a->client->iam, acct, KMS_IAM_USER, user, NULL, NULL, 100,
                                     &attached) != 0 ||
        kms_iam_inline_list(a->client->iam, acct, KMS_IAM_USER, user, NULL, 100, &inline_) != 0) {
        goto out;
    }
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(attached, "AttachedPolicies"), i, p)
    {
        const char *parn = json_string_value(json_object_get(p, "PolicyArn"));
        if (kms_advisor_add(a, "IAM.DirectPolicy", KMS_ADVISOR_WARNING, arn, why,
                            "kmsctl detach-user-policy --user-name %s --policy-arn %s", user,
                            parn) != 0) {
            goto out;
        }
        if (strcmp(parn, ADMIN_POLICY_ARN) == 0 &&
            kms_advisor_add(a, "IAM.AdminOutsideAdmins", KMS_ADVISOR_HIGH, arn,
                            "AdministratorAccess is attached to a user directly. Full "
                            "administrators belong in the Admins group, where they are seen; "
                            "add the user to it if it must administer (kmsctl "
                            "add-user-to-group --group-name Admins), and detach the policy.",
                            "kmsctl detach-user-policy --user-name %s --policy-arn %s", user,
                            parn) != 0) {
            goto out;
        }
    }
    json_array_foreach(json_object_get(inline_, "PolicyNames"), i, p)
    {
        if (kms_advisor_add(a, "IAM.DirectPolicy", KMS_ADVISOR_WARNING, arn, why,
                            "kmsctl delete-user-policy --user-name %s --policy-name %s", user,
                            json_string_value(p)) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    json_decref(attached);
    json_decref(inline_);
    return r;
}

static int user_checks(kms_advisor *a, json_t *listed)
{
    int r = -1;
    const char *name = json_string_value(json_object_get(listed, "UserName"));
    const char *arn = json_string_value(json_object_get(listed, "Arn"));
    json_t *user = NULL, *keys = NULL;
    bool password = false, mfa = false;
    char deactivate[2048] = "";
    const char *acct = a->client->cfg.account_id;
    if (name == NULL || arn == NULL) {
        return 0;
    }
    if (kms_iam_user_get(a->client->iam, acct, name, &user) != 0 ||
        kms_iam_access_key_list(a->client->iam, acct, name, &keys) != 0 ||
        has_password(a, name, &password) != 0 || has_mfa(a, name, &mfa) != 0) {
        goto out;
    }
    if (password && !mfa &&
        kms_advisor_add(a, "IAM.ConsoleWithoutMFA", KMS_ADVISOR_HIGH, arn,
                        "The user can sign in with a password alone, no MFA device. Enrol one "
                        "(kmsctl create-virtual-mfa-device, then enable-mfa-device), or take "
                        "the console access away with the fix.",
                        "kmsctl delete-login-profile --user-name %s", name) != 0) {
        goto out;
    }
    int64_t last_use = int_of(user, "PasswordLastUsed");
    if (key_checks(a, name, arn, keys, &last_use, deactivate, sizeof deactivate) != 0) {
        goto out;
    }
    /* Inactive: has a credential, none used for 90 days, and older than that itself. */
    int64_t stale = a->now - KMS_ADVISOR_STALE_DAYS * DAY;
    if ((password || deactivate[0] != '\0') && int_of(user, "CreateDate") < stale &&
        last_use < stale &&
        kms_advisor_add(a, "IAM.UserInactive", KMS_ADVISOR_WARNING, arn,
                        "The user has credentials but has not used any of them for 90 days. "
                        "Take them away (the fix), or delete the user if nobody needs it.",
                        "%s%s%s%s", password ? "kmsctl delete-login-profile --user-name " : "",
                        password ? name : "", password && deactivate[0] != '\0' ? " && " : "",
                        deactivate) != 0) {
        goto out;
    }
    if (direct_policy_checks(a, name, arn) != 0) {
        goto out;
    }
    r = 0;
out:
    json_decref(user);
    json_decref(keys);
    return r;
}

/* AdministratorAccess attached to a group other than Admins, or to a role. */
static int admin_attached(kms_advisor *a, json_t *entity, kms_iam_kind kind)
{
    int r = -1;
    json_t *attached = NULL;
    bool group = kind == KMS_IAM_GROUP;
    const char *name = json_string_value(json_object_get(entity, group ? "GroupName" : "RoleName"));
    const char *arn = json_string_value(json_object_get(entity, "Arn"));
    if (name == NULL || arn == NULL || (group && strcmp(name, ADMIN_GROUP) == 0)) {
        return 0;
    }
    if (kms_iam_policy_list_attached(a->client->iam, a->client->cfg.account_id, kind, name, NULL,
                                     NULL, 100, &attached) != 0) {
        goto out;
    }
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(attached, "AttachedPolicies"), i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "PolicyArn")), ADMIN_POLICY_ARN) == 0 &&
            kms_advisor_add(a, "IAM.AdminOutsideAdmins", KMS_ADVISOR_HIGH, arn,
                            "AdministratorAccess is attached outside the Admins group: full "
                            "administrators are then granted in more than one place. Put the "
                            "people in Admins, give others only what they need, and detach it.",
                            "kmsctl detach-%s-policy --%s-name %s --policy-arn %s",
                            group ? "group" : "role", group ? "group" : "role", name,
                            ADMIN_POLICY_ARN) != 0) {
            goto out;
        }
    }
    r = 0;
out:
    json_decref(attached);
    return r;
}

static int group_checks(kms_advisor *a, json_t *group)
{
    return admin_attached(a, group, KMS_IAM_GROUP);
}

static int role_checks(kms_advisor *a, json_t *role)
{
    return admin_attached(a, role, KMS_IAM_ROLE);
}

/* ---- The password policy --------------------------------------------------------------------- */

static int password_policy_check(kms_advisor *a)
{
    kms_iam_password_policy want, have;
    char why[1024];
    char arn[64];
    kms_iam_password_policy_default(&want);
    snprintf(arn, sizeof arn, "arn:aws:iam::%s:account-password-policy", a->client->cfg.account_id);
    memset(&have, 0, sizeof have);
    int n = snprintf(why, sizeof why,
                     "The account's password policy is weaker than the one "
                     "kmsctl init sets (CIS AWS Foundations 1.8-1.9):");
    size_t before = (size_t)n;
    if (kms_iam_password_policy_get(a->client->iam, a->client->cfg.account_id, &have) != 0) {
        KMS_GUARD(kms_last_error() == KMS_ERR_NO_SUCH_ENTITY ? 0 : -1);
        n += snprintf(why + n, sizeof why - (size_t)n, " there is none.");
    } else {
        struct {
            bool weaker;
            const char *what;
        } rules[] = {
            {have.minimum_password_length < want.minimum_password_length, " shorter minimum;"},
            {want.require_symbols && !have.require_symbols, " no symbol required;"},
            {want.require_numbers && !have.require_numbers, " no digit required;"},
            {want.require_uppercase_characters && !have.require_uppercase_characters,
             " no upper case required;"},
            {want.require_lowercase_characters && !have.require_lowercase_characters,
             " no lower case required;"},
            {have.max_password_age == 0 || have.max_password_age > want.max_password_age,
             " passwords expire later or never;"},
            {have.password_reuse_prevention < want.password_reuse_prevention,
             " fewer old passwords remembered;"},
        };
        for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
            if (rules[i].weaker && (size_t)n < sizeof why) {
                n += snprintf(why + n, sizeof why - (size_t)n, "%s", rules[i].what);
            }
        }
    }
    if ((size_t)n == before) {
        return 0;
    }
    return kms_advisor_add(a, "IAM.PasswordPolicyWeak", KMS_ADVISOR_WARNING, arn, why,
                           "kmsctl update-account-password-policy --minimum-password-length "
                           "%lld --require-symbols --require-numbers "
                           "--require-uppercase-characters --require-lowercase-characters "
                           "--allow-users-to-change-password --max-password-age %lld "
                           "--password-reuse-prevention %lld",
                           (long long)want.minimum_password_length,
                           (long long)want.max_password_age,
                           (long long)want.password_reuse_prevention);
}

int kms_advisor_iam(kms_advisor *a)
{
    KMS_GUARD(root_checks(a));
    KMS_GUARD(walk(a, kms_iam_user_list, "Users", user_checks));
    KMS_GUARD(walk(a, kms_iam_group_list, "Groups", group_checks));
    KMS_GUARD(walk(a, kms_iam_role_list, "Roles", role_checks));
    return password_policy_check(a);
}
