/* Sign-in for people: password, then MFA once enrolled, then a session saved as a profile.
 * AWS's console sign-in (signin.amazonaws.com ConsoleLogin) followed by GetSessionToken. */
#include <stdlib.h>
#include <string.h>

#include "service/credentials.h"
#include "service/audit_trail.h"
#include "util/util.h"

/* Where an in-process sign-in comes from, as its audit record says (sourceIPAddress): the
 * source whose failures kms_iam_signin_begin counts. */
/* The per-source limit needs a real source address: every in-process caller would be the same
 * "127.0.0.1", and twenty failures under any names would lock every user of the home out. Here
 * only the per-user limit applies; a server passes its caller's address. */
#define SIGN_IN_SOURCE NULL

/* The serial number of the user's first MFA device, "" when it has none. */
static int first_mfa_device(kms_iam *iam, const char *account, const char *user, char *out,
                            size_t n)
{
    json_t *list = NULL;
    out[0] = '\0';
    KMS_GUARD(kms_iam_mfa_list(iam, account, user, &list));
    const char *serial = json_string_value(
        json_object_get(json_array_get(json_object_get(list, "MFADevices"), 0), "SerialNumber"));
    if (serial != NULL) {
        snprintf(out, n, "%s", serial);
    }
    json_decref(list);
    return 0;
}

/* CloudTrail records sign-ins as signin.amazonaws.com ConsoleLogin, successful or not
 * (CloudTrail User Guide, "AWS Management Console sign-in events"): eventType AwsConsoleSignIn,
 * requestParameters null, responseElements {"ConsoleLogin": "Success" | "Failure"},
 * additionalEventData {LoginTo, MobileVersion, MFAUsed}. LoginTo is where the session went: the
 * profile it was saved as. */
static int audit_sign_in(kms_client *c, const kms_sign_in_options *o, const kms_identity *id,
                         const char *profile, bool mfa_used, int64_t now, int rc)
{
    char login_to[160];
    snprintf(login_to, sizeof login_to, "kmsctl --profile %.128s", profile);
    kms_request rq;
    kms_principal_snapshot who;
    memset(&rq, 0, sizeof rq);
    memset(&who, 0, sizeof who);
    rq.client = c;
    rq.operation = "signin:ConsoleLogin";
    rq.started = now;
    rq.authorized = true; /* a password check, not a policy decision */
    if (rc == 0) {
        who.id = *id; /* borrowed for the record */
    } else {
        /* Who tried, as CloudTrail shows a failed ConsoleLogin: the name given, no access key
         * (the client's own profile has nothing to do with it). */
        const char *acct = c->cfg.account_id;
        snprintf(who.id.type, sizeof who.id.type, "%s", o->user_name ? "IAMUser" : "Root");
        snprintf(who.id.account_id, sizeof who.id.account_id, "%s", acct);
        snprintf(who.id.principal_id, sizeof who.id.principal_id, "%s", o->user_name ? "" : acct);
        if (o->user_name != NULL) {
            snprintf(who.id.user_name, sizeof who.id.user_name, "%s", o->user_name);
            snprintf(who.id.arn, sizeof who.id.arn, "arn:aws:iam::%s:user/%.128s", acct,
                     o->user_name);
        } else {
            snprintf(who.id.arn, sizeof who.id.arn, "arn:aws:iam::%s:root", acct);
        }
    }
    rq.who = &who;
    json_t *resp = json_pack("{s:s}", "ConsoleLogin", rc == 0 ? "Success" : "Failure");
    json_t *extra = json_pack("{s:s, s:s, s:s}", "LoginTo", login_to, "MobileVersion", "No",
                              "MFAUsed", mfa_used ? "Yes" : "No");
    if (resp == NULL || extra == NULL) {
        /* What the record says cannot be built: the sign-in fails (recorded without it). */
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        rc = -1;
    } else {
        rq.resp = resp;
        rq.additional_event_data = extra;
    }
    rc = kms_audit_trail_request(&rq, rc);
    json_decref(resp);
    json_decref(extra);
    return rc;
}

static int sign_in(kms_client *c, const kms_sign_in_options *o, int64_t *expiration)
{
    int r = -1;
    bool must_change = false, mfa_required = false;
    char serial[600];
    kms_identity id;
    kms_iam_credentials creds;
    memset(&id, 0, sizeof id);
    memset(&creds, 0, sizeof creds);
    const char *account = c->cfg.account_id;
    const char *password = o->password;
    int64_t now = kms_now();
    kms_audit *audit = NULL;
    const char *profile = o->save_profile ? o->save_profile : "signin";
    /* Before anything else: a refused profile is a local mistake, not a sign-in attempt, and the
     * person should not spend an MFA code on it. */
    if (!o->force) {
        KMS_GUARD(kms_credentials_check_replace(c->home, profile));
    }
    KMS_GUARD(kms_audit_trail_of_client(c, &audit));
    /* Room for the record before a session exists or a profile is saved. */
    KMS_GUARD(kms_audit_announce(audit));
    /* Every outcome from here on is recorded (ConsoleLogin Success or Failure). */
    if (password == NULL || password[0] == '\0') {
        kms_raise(KMS_ERR_VALIDATION, "a password is required to sign in");
        goto out;
    }
    /* Throttled before any password is hashed; from here on the attempt counts as a failure
     * until it succeeds (wrong passwords and wrong MFA codes alike). */
    if (kms_iam_signin_begin(c->iam, account, o->user_name, SIGN_IN_SOURCE, now) != 0) {
        goto out;
    }
    if (kms_iam_password_check(c->iam, account, o->user_name, password, now, &must_change,
                               &mfa_required) != 0) {
        goto out;
    }
    if (mfa_required && (o->mfa_code == NULL || o->mfa_code[0] == '\0')) {
        kms_raise(KMS_ERR_ACCESS_DENIED,
                  "%s has an MFA device: give its current code (--token-code)",
                  o->user_name ? o->user_name : "the root user");
        goto out;
    }
    if (must_change && o->new_password == NULL) {
        kms_raise(KMS_ERR_PASSWORD_POLICY,
                  "the password must be changed before signing in: give a new one "
                  "(--new-password-file) that obeys the account's password policy");
        goto out;
    }
    if (mfa_required &&
        first_mfa_device(c->iam, account, o->user_name, serial, sizeof serial) != 0) {
        goto out;
    }
    /* The session is made first: it checks the MFA code, so that the password alone never
     * changes the password. */
    if ((o->user_name ? kms_iam_user_identity(c->iam, account, o->user_name, &id)
                      : kms_iam_root_identity(c->iam, account, &id)) != 0 ||
        kms_iam_session_token(c->iam, &id, o->duration_seconds, mfa_required ? serial : NULL,
                              mfa_required ? o->mfa_code : NULL, now, &creds) != 0 ||
        kms_iam_signin_session_mark(c->iam, creds.access_key_id) != 0) {
        goto out;
    }
    if (must_change && kms_iam_password_change(c->iam, account, o->user_name, password,
                                               o->new_password, now) != 0) {
        goto out;
    }
    /* Again, as the file may have changed while the password was checked. */
    if (!o->force && kms_credentials_check_replace(c->home, profile) != 0) {
        goto out;
    }
    if (kms_credentials_save(c->home, profile, creds.access_key_id, creds.secret_access_key,
                             creds.session_token) != 0) {
        goto out;
    }
    /* Only a sign-in that completed clears the failures counted against it. */
    if (kms_iam_signin_succeed(c->iam, account, o->user_name, SIGN_IN_SOURCE) != 0) {
        goto out;
    }
    if (expiration != NULL) {
        *expiration = creds.expiration;
    }
    r = 0;
out:
    r = audit_sign_in(c, o, &id, profile, mfa_required && r == 0, now, r);
    kms_iam_credentials_clean_up(&creds);
    kms_iam_identity_clean_up(&id);
    return r;
}

int kms_sign_in(const kms_sign_in_options *o, int64_t *expiration)
{
    kms_error_clear();
    KMS_ENSURE(o != NULL, KMS_ERR_VALIDATION, "no sign-in options");
    /* The client's own credentials are never used: sign-in is what gets some. */
    kms_client_options co = {.home = o->home, .profile = NULL};
    kms_client *c = kms_client_open(&co);
    if (c == NULL) {
        return -1;
    }
    int r = sign_in(c, o, expiration);
    kms_client_free(c);
    return r;
}

int kms_profile_save(const char *home, const char *profile, const char *access_key_id,
                     const char *secret, const char *session_token)
{
    kms_error_clear();
    KMS_ENSURE(profile != NULL && access_key_id != NULL && secret != NULL, KMS_ERR_VALIDATION,
               "a profile name, an access key id and a secret access key are needed");
    return kms_credentials_save(home ? home : kms_home_default(), profile, access_key_id, secret,
                                session_token);
}
