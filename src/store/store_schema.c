/* The metadata database's schema: its SQL text, creation and migrations.
 *
 * Recognising the file: a KMS metadata database carries our application_id in its header and a
 * `meta` table with the schema version. Until both are seen, nothing is written to the file
 * (https://www.sqlite.org/pragma.html#pragma_application_id). Creation runs the same migration
 * steps as an upgrade, from version 0 (a `meta` table and nothing else) to the current one. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/util.h"

/* "KMS1" (0x4B4D5331): tells our database from any other SQLite file before we touch it. */
#define STORE_APPLICATION_ID 1263358769
#define STORE_APPLICATION_ID_SQL "1263358769"
_Static_assert(STORE_APPLICATION_ID == 0x4B4D5331, "application id");

/* ---- SQL ---------------------------------------------------------------------------------- */

/* Version 0: our application id and the meta table, nothing else. Creation starts here and runs
 * every migration, so that a new database and an upgraded one went through the same steps. */
static const char sql_init[] =
    "PRAGMA application_id = " STORE_APPLICATION_ID_SQL ";"
    "CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value ANY NOT NULL) STRICT;"
    "INSERT INTO meta (name, value) VALUES ('schema_version', 0);";

/* migrations[v] takes the schema from version v to v + 1; each runs inside the transaction that
 * also records the new version. Append only: never edit a step that has shipped. */
static const char *const migrations[KMS_STORE_SCHEMA_VERSION] = {
    /* 0 -> 1. Key states: the AWS KMS KeyState enumeration. */
    "CREATE TABLE keys ("
    "  key_id TEXT PRIMARY KEY NOT NULL CHECK (length(key_id) BETWEEN 1 AND 36),"
    "  account_id TEXT NOT NULL,"
    "  description TEXT NOT NULL DEFAULT '',"
    "  key_spec TEXT NOT NULL,"
    "  key_usage TEXT NOT NULL,"
    "  key_state TEXT NOT NULL CHECK (key_state IN ('Creating', 'Enabled', 'Disabled',"
    "    'PendingDeletion', 'PendingImport', 'PendingReplicaDeletion', 'Unavailable',"
    "    'Updating')),"
    "  origin TEXT NOT NULL,"
    "  creation_date INTEGER NOT NULL,"
    "  deletion_date INTEGER NOT NULL DEFAULT 0,"
    "  pending_window_days INTEGER NOT NULL DEFAULT 0 CHECK (pending_window_days >= 0),"
    "  current_version INTEGER NOT NULL CHECK (current_version >= 1),"
    "  public_key BLOB"
    ") STRICT;"
    "CREATE TABLE key_versions ("
    "  key_id TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL CHECK (version >= 1),"
    "  creation_date INTEGER NOT NULL,"
    "  rotation_type TEXT,"
    "  PRIMARY KEY (key_id, version)"
    ") STRICT;"
    "CREATE TABLE aliases ("
    "  alias_name TEXT PRIMARY KEY NOT NULL CHECK (length(alias_name) BETWEEN 1 AND 256),"
    "  key_id TEXT NOT NULL REFERENCES keys (key_id),"
    "  creation_date INTEGER NOT NULL,"
    "  last_updated_date INTEGER NOT NULL"
    ") STRICT;"
    /* Serves both the foreign key check and ListAliases filtered by key, in name order. */
    "CREATE INDEX aliases_by_key ON aliases (key_id, alias_name);",

    /* 1 -> 2. Key policies and grants (the gate's data), IAM, STS and Organizations. IAM names
     * compare case-insensitively (COLLATE NOCASE), as AWS makes them unique regardless of case.
     * Secrets are never stored in the clear: access key secrets and MFA seeds sealed under an
     * internal CMK, session tokens and grant tokens as SHA-256, passwords as Argon2id. */
    "ALTER TABLE keys ADD COLUMN policy TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE keys ADD COLUMN policy_version INTEGER NOT NULL DEFAULT 1;"
    "CREATE TABLE grants ("
    "  grant_id TEXT PRIMARY KEY NOT NULL,"
    "  key_id TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  grantee_principal TEXT NOT NULL,"
    "  retiring_principal TEXT NOT NULL DEFAULT '',"
    "  issuing_account TEXT NOT NULL,"
    "  operations TEXT NOT NULL,"
    "  constraints TEXT NOT NULL DEFAULT '',"
    "  creation_date INTEGER NOT NULL,"
    "  token_hash BLOB"
    ") STRICT;"
    /* The gate's per-request lookup, ListGrants, and the cascade from keys. */
    "CREATE INDEX grants_by_key ON grants (key_id, grantee_principal, grant_id);"
    "CREATE INDEX grants_by_retiring ON grants (retiring_principal, grant_id);"
    "INSERT INTO meta (name, value) VALUES ('iam_generation', 0);"
    /* Accounts known here; org_id/parent_id when in an organization. */
    "CREATE TABLE iam_accounts ("
    "  account_id TEXT PRIMARY KEY NOT NULL CHECK (length(account_id) = 12),"
    "  name TEXT NOT NULL DEFAULT '',"
    "  email TEXT NOT NULL DEFAULT '',"
    "  org_id TEXT,"
    "  parent_id TEXT,"
    "  joined_method TEXT NOT NULL DEFAULT '',"
    "  joined_date INTEGER NOT NULL DEFAULT 0,"
    "  creation_date INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE iam_password_policies ("
    "  account_id TEXT PRIMARY KEY NOT NULL,"
    "  min_length INTEGER NOT NULL,"
    "  require_symbols INTEGER NOT NULL,"
    "  require_numbers INTEGER NOT NULL,"
    "  require_uppercase INTEGER NOT NULL,"
    "  require_lowercase INTEGER NOT NULL,"
    "  allow_change INTEGER NOT NULL,"
    "  max_age INTEGER NOT NULL,"
    "  reuse_prevention INTEGER NOT NULL,"
    "  hard_expiry INTEGER NOT NULL"
    ") STRICT;"
    /* Managed policies; AWS managed ones have account_id 'aws'. */
    "CREATE TABLE iam_policies ("
    "  policy_id TEXT PRIMARY KEY NOT NULL,"
    "  account_id TEXT NOT NULL,"
    "  arn TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL COLLATE NOCASE,"
    "  path TEXT NOT NULL,"
    "  description TEXT NOT NULL DEFAULT '',"
    "  default_version INTEGER NOT NULL,"
    "  next_version INTEGER NOT NULL,"
    "  creation_date INTEGER NOT NULL,"
    "  update_date INTEGER NOT NULL,"
    "  UNIQUE (account_id, name)"
    ") STRICT;"
    "CREATE TABLE iam_policy_versions ("
    "  policy_id TEXT NOT NULL REFERENCES iam_policies (policy_id) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  document TEXT NOT NULL,"
    "  creation_date INTEGER NOT NULL,"
    "  PRIMARY KEY (policy_id, version)"
    ") STRICT;"
    /* Users, and each account's root user (is_root, name '<root>', which no user name can be). */
    "CREATE TABLE iam_users ("
    "  user_id TEXT PRIMARY KEY NOT NULL,"
    "  account_id TEXT NOT NULL REFERENCES iam_accounts (account_id),"
    "  name TEXT NOT NULL COLLATE NOCASE,"
    "  path TEXT NOT NULL DEFAULT '/',"
    "  is_root INTEGER NOT NULL DEFAULT 0,"
    "  boundary_id TEXT REFERENCES iam_policies (policy_id),"
    "  creation_date INTEGER NOT NULL,"
    "  password_last_used INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (account_id, name)"
    ") STRICT;"
    "CREATE TABLE iam_groups ("
    "  group_id TEXT PRIMARY KEY NOT NULL,"
    "  account_id TEXT NOT NULL,"
    "  name TEXT NOT NULL COLLATE NOCASE,"
    "  path TEXT NOT NULL DEFAULT '/',"
    "  creation_date INTEGER NOT NULL,"
    "  UNIQUE (account_id, name)"
    ") STRICT;"
    "CREATE TABLE iam_group_members ("
    "  group_id TEXT NOT NULL REFERENCES iam_groups (group_id),"
    "  user_id TEXT NOT NULL REFERENCES iam_users (user_id),"
    "  PRIMARY KEY (group_id, user_id)"
    ") STRICT;"
    "CREATE INDEX iam_group_members_by_user ON iam_group_members (user_id, group_id);"
    "CREATE TABLE iam_roles ("
    "  role_id TEXT PRIMARY KEY NOT NULL,"
    "  account_id TEXT NOT NULL,"
    "  name TEXT NOT NULL COLLATE NOCASE,"
    "  path TEXT NOT NULL DEFAULT '/',"
    "  trust_policy TEXT NOT NULL,"
    "  description TEXT NOT NULL DEFAULT '',"
    "  max_session_duration INTEGER NOT NULL,"
    "  boundary_id TEXT REFERENCES iam_policies (policy_id),"
    "  creation_date INTEGER NOT NULL,"
    "  UNIQUE (account_id, name)"
    ") STRICT;"
    /* Inline policies, attachments and tags of users, groups and roles, by entity id (AIDA,
     * AGPA, AROA prefixes keep them apart). */
    "CREATE TABLE iam_inline_policies ("
    "  entity_id TEXT NOT NULL,"
    "  name TEXT NOT NULL COLLATE NOCASE,"
    "  document TEXT NOT NULL,"
    "  PRIMARY KEY (entity_id, name)"
    ") STRICT;"
    "CREATE TABLE iam_attachments ("
    "  entity_id TEXT NOT NULL,"
    "  policy_id TEXT NOT NULL REFERENCES iam_policies (policy_id),"
    "  PRIMARY KEY (entity_id, policy_id)"
    ") STRICT;"
    "CREATE INDEX iam_attachments_by_policy ON iam_attachments (policy_id);"
    "CREATE TABLE iam_tags ("
    "  entity_id TEXT NOT NULL,"
    "  key TEXT NOT NULL COLLATE NOCASE,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (entity_id, key)"
    ") STRICT;"
    "CREATE TABLE iam_access_keys ("
    "  access_key_id TEXT PRIMARY KEY NOT NULL,"
    "  user_id TEXT NOT NULL REFERENCES iam_users (user_id),"
    "  status TEXT NOT NULL CHECK (status IN ('Active', 'Inactive')),"
    "  secret_sealed BLOB NOT NULL,"
    "  creation_date INTEGER NOT NULL,"
    "  last_used_date INTEGER NOT NULL DEFAULT 0,"
    "  last_used_service TEXT NOT NULL DEFAULT '',"
    "  last_used_region TEXT NOT NULL DEFAULT ''"
    ") STRICT;"
    "CREATE INDEX iam_access_keys_by_user ON iam_access_keys (user_id);"
    "CREATE TABLE iam_login_profiles ("
    "  user_id TEXT PRIMARY KEY NOT NULL REFERENCES iam_users (user_id),"
    "  password_hash TEXT NOT NULL,"
    "  creation_date INTEGER NOT NULL,"
    "  password_date INTEGER NOT NULL,"
    "  reset_required INTEGER NOT NULL"
    ") STRICT;"
    /* Hashes of earlier passwords, for the password policy's reuse prevention. */
    "CREATE TABLE iam_password_history ("
    "  user_id TEXT NOT NULL REFERENCES iam_users (user_id) ON DELETE CASCADE,"
    "  password_hash TEXT NOT NULL,"
    "  password_date INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX iam_password_history_by_user ON iam_password_history (user_id, password_date);"
    "CREATE TABLE iam_mfa_devices ("
    "  serial_number TEXT PRIMARY KEY NOT NULL COLLATE NOCASE,"
    "  account_id TEXT NOT NULL,"
    "  seed_sealed BLOB NOT NULL,"
    "  user_id TEXT REFERENCES iam_users (user_id),"
    "  enable_date INTEGER NOT NULL DEFAULT 0,"
    "  last_step INTEGER NOT NULL DEFAULT 0,"
    "  creation_date INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX iam_mfa_devices_by_user ON iam_mfa_devices (user_id);"
    /* Temporary credentials: principal_id is the user (GetSessionToken) or role (AssumeRole). */
    "CREATE TABLE iam_sessions ("
    "  access_key_id TEXT PRIMARY KEY NOT NULL,"
    "  account_id TEXT NOT NULL,"
    "  principal_id TEXT NOT NULL,"
    "  session_name TEXT NOT NULL DEFAULT '',"
    "  secret_sealed BLOB NOT NULL,"
    "  token_hash BLOB NOT NULL,"
    "  policy TEXT,"
    "  mfa_time INTEGER NOT NULL DEFAULT 0,"
    "  issued INTEGER NOT NULL,"
    "  expiry INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX iam_sessions_by_principal ON iam_sessions (principal_id);"
    "CREATE INDEX iam_sessions_by_expiry ON iam_sessions (expiry);"
    "CREATE TABLE org_organizations ("
    "  org_id TEXT PRIMARY KEY NOT NULL,"
    "  management_account_id TEXT NOT NULL UNIQUE,"
    "  root_id TEXT NOT NULL UNIQUE,"
    "  creation_date INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE org_units ("
    "  ou_id TEXT PRIMARY KEY NOT NULL,"
    "  org_id TEXT NOT NULL REFERENCES org_organizations (org_id),"
    "  parent_id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  creation_date INTEGER NOT NULL,"
    "  UNIQUE (parent_id, name)"
    ") STRICT;"
    /* SCPs; the AWS managed FullAWSAccess has org_id NULL. */
    "CREATE TABLE org_policies ("
    "  policy_id TEXT PRIMARY KEY NOT NULL,"
    "  org_id TEXT,"
    "  name TEXT NOT NULL,"
    "  description TEXT NOT NULL DEFAULT '',"
    "  type TEXT NOT NULL,"
    "  content TEXT NOT NULL"
    ") STRICT;"
    "CREATE TABLE org_attachments ("
    "  policy_id TEXT NOT NULL REFERENCES org_policies (policy_id),"
    "  target_id TEXT NOT NULL,"
    "  PRIMARY KEY (target_id, policy_id)"
    ") STRICT;"
    "CREATE INDEX org_attachments_by_policy ON org_attachments (policy_id);"
    /* The AWS managed policies every account sees. */
    "INSERT INTO iam_policies (policy_id, account_id, arn, name, path, description,"
    "  default_version, next_version, creation_date, update_date) VALUES"
    "  ('ANPAIWMBCKSKIEE64ZLYK', 'aws', 'arn:aws:iam::aws:policy/AdministratorAccess',"
    "   'AdministratorAccess', '/', 'Provides full access to AWS services and resources.',"
    "   1, 2, 1423526400, 1423526400);"
    "INSERT INTO iam_policy_versions (policy_id, version, document, creation_date) VALUES"
    "  ('ANPAIWMBCKSKIEE64ZLYK', 1, '{\"Version\":\"2012-10-17\",\"Statement\":"
    "[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}', 1423526400);"
    "INSERT INTO org_policies (policy_id, org_id, name, description, type, content) VALUES"
    "  ('p-FullAWSAccess', NULL, 'FullAWSAccess', 'Allows access to every operation',"
    "   'SERVICE_CONTROL_POLICY', '{\"Version\":\"2012-10-17\",\"Statement\":"
    "[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}');",

    /* 2 -> 3. Rotation and deletion (store_rotation.c). Automatic rotation: a period (0 = off)
     * and the next due date. A rotation under way holds a claim on the version it makes, so
     * that two schedulers (or a scheduler and RotateKeyOnDemand) never make it twice and a
     * crash between the HSM and the metadata is finished or undone by the next run. Each
     * version counts its encryptions (reserved in blocks, so never under-counted). A key whose
     * deletion window ended leaves a row in deleted_keys and nothing else. */
    "ALTER TABLE keys ADD COLUMN rotation_period_days INTEGER NOT NULL DEFAULT 0"
    "  CHECK (rotation_period_days = 0 OR rotation_period_days BETWEEN 90 AND 2560);"
    "ALTER TABLE keys ADD COLUMN next_rotation_date INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE keys ADD COLUMN rotation_claim INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE keys ADD COLUMN rotation_claim_date INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE keys ADD COLUMN rotation_claim_type TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE key_versions ADD COLUMN encryptions INTEGER NOT NULL DEFAULT 0"
    "  CHECK (encryptions >= 0);"
    "CREATE INDEX keys_rotation_due ON keys (next_rotation_date) WHERE rotation_period_days > 0;"
    "CREATE INDEX keys_deletion_due ON keys (deletion_date) WHERE key_state = 'PendingDeletion';"
    "CREATE INDEX keys_rotation_claims ON keys (rotation_claim_date) WHERE rotation_claim > 0;"
    "CREATE TABLE deleted_keys ("
    "  key_id TEXT PRIMARY KEY NOT NULL,"
    "  account_id TEXT NOT NULL,"
    "  deletion_date INTEGER NOT NULL,"
    "  versions INTEGER NOT NULL"
    ") STRICT;",

    /* 3 -> 4. Sign-in throttling (iam_signin.c): failed sign-ins counted per user name (known
     * or not, compared as IAM compares names) and per source address, in a window that starts
     * at the first failure. Here rather than in each process, so that separate kmsctl
     * processes share them. */
    "CREATE TABLE iam_signin_failures ("
    "  scope TEXT NOT NULL CHECK (scope IN ('user', 'source')),"
    "  subject TEXT NOT NULL COLLATE NOCASE,"
    "  failures INTEGER NOT NULL CHECK (failures >= 0),"
    "  window_start INTEGER NOT NULL,"
    "  PRIMARY KEY (scope, subject)"
    ") STRICT;",

    /* 4 -> 5. The credential report (iam_credential_report.c): the last one generated in each
     * account, as its CSV, so that GetCredentialReport in another process finds it. */
    "CREATE TABLE iam_credential_reports ("
    "  account_id TEXT PRIMARY KEY NOT NULL,"
    "  generated_time INTEGER NOT NULL,"
    "  content BLOB NOT NULL"
    ") STRICT;",

    /* 5 -> 6. Private certificate authorities (src/pki): each CA (its configuration as given,
     * its public key, its certificate as DER and the chain above it as PEM once installed, the
     * number of its last CRL; the private key is in the HSM, "pca:CA_ID") and every certificate it
     * issued, by serial (lower-case hex, no leading zeros), with its revocation if it was revoked.
     */
    "CREATE TABLE pca_authorities ("
    "  ca_id TEXT PRIMARY KEY NOT NULL,"
    "  account_id TEXT NOT NULL,"
    "  ca_type TEXT NOT NULL CHECK (ca_type IN ('ROOT', 'SUBORDINATE')),"
    "  status TEXT NOT NULL,"
    "  key_algorithm TEXT NOT NULL,"
    "  signing_algorithm TEXT NOT NULL,"
    "  usage_mode TEXT NOT NULL,"
    "  configuration TEXT NOT NULL,"
    "  certificate BLOB,"
    "  serial TEXT NOT NULL DEFAULT '',"
    "  not_before INTEGER NOT NULL DEFAULT 0,"
    "  not_after INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  last_state_change_at INTEGER NOT NULL,"
    "  crl_number INTEGER NOT NULL DEFAULT 0,"
    "  public_key BLOB NOT NULL,"
    "  chain BLOB,"
    "  restorable_until INTEGER NOT NULL DEFAULT 0,"
    "  revocation_configuration TEXT NOT NULL DEFAULT ''"
    ") STRICT;"
    "CREATE TABLE pca_certificates ("
    "  ca_id TEXT NOT NULL REFERENCES pca_authorities (ca_id),"
    "  serial TEXT NOT NULL,"
    "  template TEXT NOT NULL,"
    "  certificate BLOB NOT NULL,"
    "  not_before INTEGER NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  issued_at INTEGER NOT NULL,"
    "  revoked_at INTEGER NOT NULL DEFAULT 0,"
    "  revocation_reason TEXT NOT NULL DEFAULT '',"
    "  PRIMARY KEY (ca_id, serial)"
    ") STRICT;",

    /* 6 -> 7. Managed certificates (ACM, src/pki/acm.h): each certificate by id (its ARN's
     * UUID), requested from a CA of this home (PRIVATE) or imported; its key in the HSM
     * ("acm:KEY_NAME", key_name; prev_key_name the one before a renewal) or sealed (sealed_key: the
     * PKCS#8 DER under a data key of alias/aws/acm); the certificate (DER) and the chain above it
     * (PEM); generation counts renewals and reimports; in_use_by is a JSON array of strings; the
     * renewal columns are RenewalSummary's. Their tags; the serials a CA of this home issued
     * for them (acm_serials: those certificates warn of their expiry as managed ones, not as
     * IssueCertificate's); the day of the last expiry warning of every certificate the home
     * knows (by ARN). */
    "CREATE TABLE acm_certificates ("
    "  cert_id TEXT PRIMARY KEY NOT NULL,"
    "  account_id TEXT NOT NULL,"
    "  domain_name TEXT NOT NULL,"
    "  sans TEXT NOT NULL DEFAULT '[]',"
    "  key_algorithm TEXT NOT NULL,"
    "  key_storage TEXT NOT NULL CHECK (key_storage IN ('HSM', 'SEALED')),"
    "  key_name TEXT NOT NULL DEFAULT '',"
    "  prev_key_name TEXT NOT NULL DEFAULT '',"
    "  sealed_key BLOB,"
    "  certificate BLOB,"
    "  chain BLOB,"
    "  serial TEXT NOT NULL DEFAULT '',"
    "  not_before INTEGER NOT NULL DEFAULT 0,"
    "  not_after INTEGER NOT NULL DEFAULT 0,"
    "  status TEXT NOT NULL,"
    "  cert_type TEXT NOT NULL CHECK (cert_type IN ('PRIVATE', 'IMPORTED')),"
    "  ca_arn TEXT NOT NULL DEFAULT '',"
    "  renewal_eligibility TEXT NOT NULL,"
    "  renewal_status TEXT NOT NULL DEFAULT '',"
    "  renewal_reason TEXT NOT NULL DEFAULT '',"
    "  renewal_updated_at INTEGER NOT NULL DEFAULT 0,"
    "  in_use_by TEXT NOT NULL DEFAULT '[]',"
    "  generation INTEGER NOT NULL DEFAULT 1,"
    "  created_at INTEGER NOT NULL,"
    "  issued_at INTEGER NOT NULL DEFAULT 0,"
    "  imported_at INTEGER NOT NULL DEFAULT 0,"
    "  idempotency_token TEXT NOT NULL DEFAULT ''"
    ") STRICT;"
    "CREATE INDEX acm_certificates_expiry ON acm_certificates (account_id, not_after);"
    "CREATE TABLE acm_tags ("
    "  cert_id TEXT NOT NULL REFERENCES acm_certificates (cert_id) ON DELETE CASCADE,"
    "  tag_key TEXT NOT NULL,"
    "  tag_value TEXT NOT NULL DEFAULT '',"
    "  PRIMARY KEY (cert_id, tag_key)"
    ") STRICT;"
    "CREATE TABLE acm_serials ("
    "  ca_id TEXT NOT NULL,"
    "  serial TEXT NOT NULL,"
    "  cert_id TEXT NOT NULL,"
    "  PRIMARY KEY (ca_id, serial)"
    ") STRICT;"
    "CREATE TABLE acm_expiry_warnings ("
    "  arn TEXT PRIMARY KEY NOT NULL,"
    "  last_day INTEGER NOT NULL"
    ") STRICT;",

    /* 7 -> 8. Tags of keys (store_tags.c; TagResource): tag keys case-sensitive (binary
     * collation) and unique per key, lengths in characters as AWS counts them. They go with the
     * key's row, as grants do. */
    "CREATE TABLE key_tags ("
    "  key_id TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,"
    "  tag_key TEXT NOT NULL CHECK (length(tag_key) BETWEEN 1 AND 128),"
    "  tag_value TEXT NOT NULL DEFAULT '' CHECK (length(tag_value) <= 256),"
    "  PRIMARY KEY (key_id, tag_key)"
    ") STRICT;",
};

static const char sql_journal_mode[] = "PRAGMA journal_mode";
static const char sql_journal_wal[] = "PRAGMA journal_mode=WAL";
static const char sql_application_id[] = "PRAGMA application_id";
static const char sql_has_meta[] =
    "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'";
static const char sql_version_get[] = "SELECT value, typeof(value) = 'integer' FROM meta "
                                      "WHERE name = 'schema_version'";
static const char sql_version_set[] = "UPDATE meta SET value = ?1 WHERE name = 'schema_version'";

/* ---- Schema and migrations ---------------------------------------------------------------- */

/* The text of the one row of a query without parameters into buf ("" when it has none). */
static int query_text(kms_db_conn *c, const char *sql, char *buf, size_t size, const char *what)
{
    kms_db_stmt *st = NULL;
    buf[0] = '\0';
    KMS_GUARD(kms_db_prepare(c, sql, &st));
    int s = kms_db_step(st, what);
    if (s == 1) {
        snprintf(buf, size, "%s", kms_db_column_text(st, 0));
    }
    kms_db_reset(st);
    return s < 0 ? -1 : 0;
}

/* WAL is a property of the file: set at creation, and again on a recognised database that lost
 * it. A query of the mode alone writes nothing. */
static int wal_ensure(kms_db_conn *c, const char *path)
{
    char mode[16];
    KMS_GUARD(query_text(c, sql_journal_mode, mode, sizeof mode, "cannot enable WAL"));
    if (strcmp(mode, "wal") == 0) {
        return 0;
    }
    KMS_GUARD(query_text(c, sql_journal_wal, mode, sizeof mode, "cannot enable WAL"));
    KMS_ENSURE(strcmp(mode, "wal") == 0, KMS_ERR_HOME,
               "metadata database %s: cannot enable WAL on this file system", path);
    return 0;
}

/* Reads the schema version in *version; KMS_ERR_HOME unless the file is ours. Only reads. */
static int schema_version_read(kms_db_conn *c, const char *path, int64_t *version)
{
    char text[24];
    KMS_GUARD(query_text(c, sql_application_id, text, sizeof text, "cannot read"));
    int64_t app_id = strtoll(text, NULL, 10);
    KMS_ENSURE(app_id == STORE_APPLICATION_ID, KMS_ERR_HOME,
               "metadata database %s is not a KMS metadata database (application id 0x%08" PRIx64
               ")",
               path, (uint64_t)app_id);
    KMS_GUARD(query_text(c, sql_has_meta, text, sizeof text, "cannot read"));
    KMS_ENSURE(text[0] != '\0', KMS_ERR_HOME, "metadata database %s has no schema version table",
               path);
    kms_db_stmt *st = NULL;
    KMS_GUARD(kms_db_prepare(c, sql_version_get, &st));
    int s = kms_db_step(st, "cannot read the schema version");
    bool valid = s == 1 && kms_db_column_int64(st, 1) == 1;
    *version = s == 1 ? kms_db_column_int64(st, 0) : 0;
    kms_db_reset(st);
    if (s < 0) {
        return -1;
    }
    KMS_ENSURE(valid, KMS_ERR_HOME, "metadata database %s has no valid schema version", path);
    KMS_ENSURE(*version >= 0 && *version <= KMS_STORE_SCHEMA_VERSION, KMS_ERR_HOME,
               "metadata database %s has schema version %" PRId64
               ", this build knows versions up to %d: upgrade kms",
               path, *version, KMS_STORE_SCHEMA_VERSION);
    return 0;
}

/* Applies the migration steps from `from` to the current version inside the caller's
 * transaction and records the new version. */
static int schema_migrate(kms_db_conn *c, int64_t from)
{
    for (int64_t v = from; v < KMS_STORE_SCHEMA_VERSION; v++) {
        char what[64];
        snprintf(what, sizeof what, "migration to schema version %" PRId64, v + 1);
        KMS_GUARD(kms_db_exec_script(c, migrations[v], what));
    }
    return kms_db_exec_sql(c, sql_version_set,
                           KMS_DB_PARAMS(kms_db_int64(KMS_STORE_SCHEMA_VERSION)),
                           "cannot record schema version");
}

typedef struct upgrade_args {
    const char *path;
} upgrade_args;

/* Inside the write lock: another process may have migrated in the meantime. */
static int upgrade_locked(kms_db_conn *c, void *arg)
{
    const upgrade_args *a = arg;
    int64_t version = 0;
    KMS_GUARD(schema_version_read(c, a->path, &version));
    return version < KMS_STORE_SCHEMA_VERSION ? schema_migrate(c, version) : 0;
}

int kms_store_schema_upgrade(kms_db_conn *c, const char *path)
{
    int64_t version = 0;
    KMS_GUARD(schema_version_read(c, path, &version));
    KMS_GUARD(wal_ensure(c, path));
    if (version == KMS_STORE_SCHEMA_VERSION) {
        return 0;
    }
    upgrade_args a = {path};
    return kms_db_transaction(c, upgrade_locked, &a, "cannot migrate the schema");
}

static int create_locked(kms_db_conn *c, void *arg)
{
    (void)arg;
    KMS_GUARD(kms_db_exec_script(c, sql_init, "cannot create the schema"));
    return schema_migrate(c, 0);
}

int kms_store_schema_create(kms_db_conn *c, const char *path)
{
    /* WAL first: it is persistent, and cannot change inside a transaction. */
    KMS_GUARD(wal_ensure(c, path));
    return kms_db_transaction(c, create_locked, NULL, "cannot create the schema");
}
