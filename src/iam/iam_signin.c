/* Sign-in throttling, as the AWS console throttles repeated failed sign-ins: after
 * KMS_IAM_SIGNIN_USER_FAILURES failures for one user name, or KMS_IAM_SIGNIN_SOURCE_FAILURES
 * from one source address, within KMS_IAM_SIGNIN_WINDOW seconds of the first of them, further
 * attempts are refused until the window has passed, before any password is hashed.
 *
 * An attempt counts as a failure from the moment it starts (kms_iam_signin_begin, in the
 * transaction that checks the counters) until it succeeds (kms_iam_signin_succeed): parallel
 * attempts each count, and so does one whose process is stopped half way. A wrong password, a
 * wrong MFA code and any other failed sign-in all count the same. */
#include <stdio.h>
#include <string.h>

#include "iam/iam_internal.h"
#include "util/util.h"

/* The key of a user's counter: account and name as given (known or not, so that the lockout
 * says nothing about which users exist), compared without case as IAM compares names. */
#define SUBJECT_MAX 200

static const char sql_purge[] =
    "DELETE FROM iam_signin_failures WHERE window_start + ?2 <= ?1 OR window_start > ?1";
static const char sql_get[] = "SELECT failures, window_start FROM iam_signin_failures "
                              "WHERE scope = ?1 AND subject = ?2";
static const char sql_count[] =
    "INSERT INTO iam_signin_failures (scope, subject, failures, window_start) "
    "VALUES (?1, ?2, 1, ?3) ON CONFLICT (scope, subject) DO UPDATE SET failures = failures + 1";
static const char sql_forget_user[] =
    "DELETE FROM iam_signin_failures WHERE scope = 'user' AND subject = ?1";
static const char sql_forgive_source[] = "UPDATE iam_signin_failures SET failures = failures - 1 "
                                         "WHERE scope = 'source' AND subject = ?1 AND failures > 0";

static void user_subject(const char *account_id, const char *user_name, char out[SUBJECT_MAX])
{
    if (user_name == NULL) {
        snprintf(out, SUBJECT_MAX, "%s:root", account_id);
    } else {
        snprintf(out, SUBJECT_MAX, "%s:user/%s", account_id, user_name);
    }
}

/* LimitExceeded when the counter (scope, subject) reached max in the current window (the purge
 * has removed those of past windows); who names the subject in the message. */
static int not_locked(iam_q *q, const char *scope, const char *subject, int64_t max,
                      const char *who)
{
    kms_db_stmt *st = NULL;
    int f = kms_db_first(q->c, sql_get, KMS_DB_PARAMS(kms_db_text(scope), kms_db_text(subject)),
                         &st, IAM_SQL_WHAT);
    KMS_GUARD(f < 0 ? -1 : 0);
    if (f == 0) {
        return 0;
    }
    int64_t failures = kms_db_column_int64(st, 0);
    int64_t until = kms_db_column_int64(st, 1) + KMS_IAM_SIGNIN_WINDOW;
    kms_db_reset(st);
    char when[32];
    kms_time_iso8601(until, when);
    KMS_ENSURE(failures < max, KMS_ERR_LIMIT_EXCEEDED,
               "Too many failed sign-in attempts %s: sign-in is refused until %s. Try again "
               "after that time.",
               who, when);
    return 0;
}

static int count(iam_q *q, const char *scope, const char *subject, int64_t now)
{
    return kms_db_exec_sql(
        q->c, sql_count, KMS_DB_PARAMS(kms_db_text(scope), kms_db_text(subject), kms_db_int64(now)),
        IAM_SQL_WHAT);
}

int kms_iam_signin_begin(kms_iam *iam, const char *account_id, const char *user_name,
                         const char *source, int64_t now)
{
    char subject[SUBJECT_MAX], who[SUBJECT_MAX + 16];
    user_subject(account_id, user_name, subject);
    if (user_name == NULL) {
        snprintf(who, sizeof who, "for the root user");
    } else {
        snprintf(who, sizeof who, "for user %.*s", SUBJECT_MAX - 32, user_name);
    }
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    int r = -1;
    if (kms_db_exec_sql(q.c, sql_purge,
                        KMS_DB_PARAMS(kms_db_int64(now), kms_db_int64(KMS_IAM_SIGNIN_WINDOW)),
                        IAM_SQL_WHAT) != 0) {
        goto out;
    }
    if (not_locked(&q, "user", subject, KMS_IAM_SIGNIN_USER_FAILURES, who) != 0) {
        goto out;
    }
    if (source != NULL) {
        snprintf(who, sizeof who, "from %.*s", SUBJECT_MAX - 32, source);
        if (not_locked(&q, "source", source, KMS_IAM_SIGNIN_SOURCE_FAILURES, who) != 0 ||
            count(&q, "source", source, now) != 0) {
            goto out;
        }
    }
    if (count(&q, "user", subject, now) != 0) {
        goto out;
    }
    if (kms_iam_commit_data(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

int kms_iam_signin_succeed(kms_iam *iam, const char *account_id, const char *user_name,
                           const char *source)
{
    char subject[SUBJECT_MAX];
    user_subject(account_id, user_name, subject);
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    int r = -1;
    if (kms_db_exec_sql(q.c, sql_forget_user, KMS_DB_PARAMS(kms_db_text(subject)), IAM_SQL_WHAT) !=
        0) {
        goto out;
    }
    if (source != NULL && kms_db_exec_sql(q.c, sql_forgive_source,
                                          KMS_DB_PARAMS(kms_db_text(source)), IAM_SQL_WHAT) != 0) {
        goto out;
    }
    if (kms_iam_commit_data(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}

/* A sign-in's session is a GetSessionToken session of the user (or root) whose session name,
 * unused by such sessions (only role sessions have one), says it came from a sign-in. */
static const char sql_session_mark[] =
    "UPDATE iam_sessions SET session_name = ?2 WHERE access_key_id = ?1 AND session_name = '' "
    "AND principal_id NOT LIKE 'AROA%'";

int kms_iam_signin_session_mark(kms_iam *iam, const char *access_key_id)
{
    iam_q q;
    KMS_GUARD(kms_iam_begin(iam, &q, true));
    int r = -1;
    if (kms_db_exec_sql(
            q.c, sql_session_mark,
            KMS_DB_PARAMS(kms_db_text(access_key_id), kms_db_text(KMS_IAM_SIGNIN_SESSION_NAME)),
            IAM_SQL_WHAT) != 0) {
        goto out;
    }
    if (kms_iam_commit_data(&q) != 0) {
        goto out;
    }
    r = 0;
out:
    kms_iam_end(&q);
    return r;
}
