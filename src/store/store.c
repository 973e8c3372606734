/* Metadata store on SQLite: a small pool of connections, each with its prepared statements
 * cached, borrowed by one thread at a time (so each connection is opened SQLITE_OPEN_NOMUTEX).
 *
 * Recognising the file: a KMS metadata database carries our application_id in its header and a
 * `meta` table with the schema version. Until both are seen, nothing is written to the file
 * (https://www.sqlite.org/pragma.html#pragma_application_id). Creation runs the same migration
 * steps as an upgrade, from version 0 (a `meta` table and nothing else) to the current one. */
#include "store/store.h"
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

/* "KMS1" (0x4B4D5331): tells our database from any other SQLite file before we touch it. */
#define STORE_APPLICATION_ID 1263358769
#define STORE_APPLICATION_ID_SQL "1263358769"
_Static_assert(STORE_APPLICATION_ID == 0x4B4D5331, "application id");
#define POOL_MAX 4
#define BUSY_TIMEOUT_MS 5000

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
};

typedef enum stmt_id {
    STMT_BEGIN_IMMEDIATE,
    STMT_COMMIT,
    STMT_KEY_INSERT,
    STMT_VERSION_INSERT,
    STMT_KEY_GET,
    STMT_KEY_EXISTS,
    STMT_KEY_SET_DESCRIPTION,
    STMT_KEY_SET_STATE,
    STMT_KEY_LIST,
    STMT_KEY_POLICY_GET,
    STMT_KEY_POLICY_PUT,
    STMT_ALIAS_INSERT,
    STMT_ALIAS_UPDATE,
    STMT_ALIAS_DELETE,
    STMT_ALIAS_GET,
    STMT_ALIAS_LIST,
    STMT_ALIAS_LIST_BY_KEY,
    STMT__COUNT
} stmt_id;

#define KEY_COLUMNS                                                                                \
    "key_id, account_id, description, key_spec, key_usage, key_state, origin, creation_date, "     \
    "deletion_date, pending_window_days, current_version, public_key"
#define ALIAS_COLUMNS "alias_name, key_id, creation_date, last_updated_date"

/* Parameters: ?1 is always the subject (key id or alias name); lists bind the marker as ?1 ("" for
 * the start: every id sorts after it) and the row limit as ?2. */
static const char *const stmt_sql[STMT__COUNT] = {
    [STMT_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_KEY_INSERT] = "INSERT INTO keys (" KEY_COLUMNS ", policy) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [STMT_VERSION_INSERT] = "INSERT INTO key_versions (key_id, version, creation_date, "
                            "rotation_type) VALUES (?1, ?2, ?3, NULL)",
    [STMT_KEY_GET] = "SELECT " KEY_COLUMNS ", policy_version FROM keys WHERE key_id = ?1",
    [STMT_KEY_EXISTS] = "SELECT 1 FROM keys WHERE key_id = ?1",
    [STMT_KEY_SET_DESCRIPTION] = "UPDATE keys SET description = ?2 WHERE key_id = ?1",
    [STMT_KEY_SET_STATE] = "UPDATE keys SET key_state = ?2, deletion_date = ?3, "
                           "pending_window_days = ?4 WHERE key_id = ?1",
    [STMT_KEY_LIST] = "SELECT key_id FROM keys WHERE key_id > ?1 ORDER BY key_id LIMIT ?2",
    [STMT_KEY_POLICY_GET] = "SELECT policy, policy_version FROM keys WHERE key_id = ?1",
    [STMT_KEY_POLICY_PUT] = "UPDATE keys SET policy = ?2, policy_version = policy_version + 1 "
                            "WHERE key_id = ?1",
    [STMT_ALIAS_INSERT] = "INSERT INTO aliases (" ALIAS_COLUMNS ") VALUES (?1, ?2, ?3, ?3)",
    [STMT_ALIAS_UPDATE] = "UPDATE aliases SET key_id = ?2, last_updated_date = ?3 "
                          "WHERE alias_name = ?1",
    [STMT_ALIAS_DELETE] = "DELETE FROM aliases WHERE alias_name = ?1",
    [STMT_ALIAS_GET] = "SELECT " ALIAS_COLUMNS " FROM aliases WHERE alias_name = ?1",
    [STMT_ALIAS_LIST] = "SELECT " ALIAS_COLUMNS " FROM aliases WHERE alias_name > ?1 "
                        "ORDER BY alias_name LIMIT ?2",
    [STMT_ALIAS_LIST_BY_KEY] = "SELECT " ALIAS_COLUMNS " FROM aliases "
                               "WHERE key_id = ?3 AND alias_name > ?1 "
                               "ORDER BY alias_name LIMIT ?2",
};

/* ---- The pool ----------------------------------------------------------------------------- */

/* Statements of other modules (store_internal.h), cached by the address of their SQL text in an
 * open-addressing table: a few hundred statements at most, looked up without a lock. */
#define SQL_CACHE_SLOTS 512

typedef struct sql_slot {
    const char *sql;
    sqlite3_stmt *st;
} sql_slot;

typedef struct kms_store_conn {
    sqlite3 *db;
    sqlite3_stmt *stmts[STMT__COUNT];
    sql_slot sql_cache[SQL_CACHE_SLOTS];
    size_t sql_cached;
    struct kms_store_conn *next_free;
    struct kms_store_conn *next_all;
} conn;

struct kms_store {
    char *path;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    conn *free_list;
    conn *all;     /* every open connection, for close */
    size_t opened; /* connections open or being opened, at most POOL_MAX */
};

/* ---- Errors ------------------------------------------------------------------------------- */

static bool is_home_error(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
        return true;
    default:
        return false;
    }
}

/* Raises the error of a failed SQLite call. `what` names the operation and its subject (key id,
 * alias); SQLite's own message names columns and constraints, never values. */
static int raise_sqlite(const kms_store *store, const conn *c, int rc, const char *what)
{
    const char *msg = c && c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc);
    if ((rc & 0xff) == SQLITE_NOTADB) {
        return kms_raise(KMS_ERR_HOME, "%s: metadata database %s is not a SQLite database", what,
                         store->path);
    }
    if (is_home_error(rc)) {
        return kms_raise(KMS_ERR_HOME, "%s: metadata database %s is unusable: %s", what,
                         store->path, msg);
    }
    return kms_raise(KMS_ERR_INTERNAL, "%s: metadata database %s: %s", what, store->path, msg);
}

/* ---- Connections -------------------------------------------------------------------------- */

static void conn_free(conn *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < STMT__COUNT; i++) {
        sqlite3_finalize(c->stmts[i]);
    }
    for (size_t i = 0; i < SQL_CACHE_SLOTS; i++) {
        sqlite3_finalize(c->sql_cache[i].st);
    }
    sqlite3_close_v2(c->db);
    free(c);
}

/* The cached statement `id` of c, prepared on first use. */
static int conn_stmt(const kms_store *store, conn *c, stmt_id id, const char *what,
                     sqlite3_stmt **out)
{
    if (c->stmts[id] == NULL) {
        int rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &c->stmts[id], NULL);
        if (rc != SQLITE_OK) {
            return raise_sqlite(store, c, rc, what);
        }
    }
    *out = c->stmts[id];
    return 0;
}

/* Opens a connection to an existing file (never creates it) with the per-connection settings.
 * Nothing here writes to the file. */
static int conn_open(const kms_store *store, conn **out)
{
    int r = -1;
    conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    int rc =
        sqlite3_open_v2(store->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        raise_sqlite(store, c, rc, "cannot open");
        goto out;
    }
    if (sqlite3_db_readonly(c->db, "main") != 0) {
        kms_raise(KMS_ERR_HOME, "metadata database %s is not writable", store->path);
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    rc = sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    if (rc == SQLITE_OK) {
        /* synchronous=FULL: a key whose metadata is lost after a crash would orphan its HSM
         * objects, so every commit reaches the disk. */
        rc = sqlite3_exec(c->db,
                          "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL; "
                          "PRAGMA secure_delete=ON;",
                          NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        raise_sqlite(store, c, rc, "cannot configure connection");
        goto out;
    }
    *out = c;
    c = NULL;
    r = 0;
out:
    conn_free(c);
    return r;
}

/* Borrows a connection: a free one, else a new one while fewer than POOL_MAX exist, else waits.
 * New connections are opened outside the lock. */
static int conn_borrow(kms_store *store, conn **out)
{
    pthread_mutex_lock(&store->lock);
    while (store->free_list == NULL && store->opened == POOL_MAX) {
        pthread_cond_wait(&store->freed, &store->lock);
    }
    conn *c = store->free_list;
    if (c != NULL) {
        store->free_list = c->next_free;
        pthread_mutex_unlock(&store->lock);
        *out = c;
        return 0;
    }
    store->opened++;
    pthread_mutex_unlock(&store->lock);

    int r = conn_open(store, &c);
    pthread_mutex_lock(&store->lock);
    if (r == 0) {
        c->next_all = store->all;
        store->all = c;
        *out = c;
    } else {
        store->opened--;
        pthread_cond_signal(&store->freed);
    }
    pthread_mutex_unlock(&store->lock);
    return r;
}

static void conn_return(kms_store *store, conn *c)
{
    pthread_mutex_lock(&store->lock);
    c->next_free = store->free_list;
    store->free_list = c;
    pthread_cond_signal(&store->freed);
    pthread_mutex_unlock(&store->lock);
}

/* ---- Statement helpers -------------------------------------------------------------------- */

/* Runs a statement that returns no rows (or whose rows are ignored) to completion and resets it. */
static int stmt_run(const kms_store *store, conn *c, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        r = raise_sqlite(store, c, rc, what);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

static int run_cached(const kms_store *store, conn *c, stmt_id id, const char *what)
{
    sqlite3_stmt *st = NULL;
    KMS_GUARD(conn_stmt(store, c, id, what, &st));
    return stmt_run(store, c, st, what);
}

static int tx_begin(const kms_store *store, conn *c, const char *what)
{
    return run_cached(store, c, STMT_BEGIN_IMMEDIATE, what);
}

static int tx_commit(const kms_store *store, conn *c, const char *what)
{
    return run_cached(store, c, STMT_COMMIT, what);
}

/* Rolls back if a transaction is open; keeps the error already raised. */
static void tx_rollback(conn *c)
{
    if (sqlite3_get_autocommit(c->db) == 0) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    }
}

static int bind_text(const kms_store *store, conn *c, sqlite3_stmt *st, int i, const char *s,
                     const char *what)
{
    int rc = sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    return rc == SQLITE_OK ? 0 : raise_sqlite(store, c, rc, what);
}

static int bind_int64(const kms_store *store, conn *c, sqlite3_stmt *st, int i, int64_t v,
                      const char *what)
{
    int rc = sqlite3_bind_int64(st, i, v);
    return rc == SQLITE_OK ? 0 : raise_sqlite(store, c, rc, what);
}

/* Copies a NOT NULL text column into a fixed field; a value that does not fit means the file
 * was not written by us. */
static int column_text(const kms_store *store, sqlite3_stmt *st, int col, char *dst, size_t size,
                       const char *subject)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (s == NULL || n >= size) {
        return kms_raise(KMS_ERR_HOME, "metadata database %s holds an invalid %s for %s",
                         store->path, sqlite3_column_name(st, col), subject);
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

/* A NUL-terminated string of at most size-1 bytes, and not empty. */
static bool field_ok(const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    return n > 0 && n < size;
}

static const char *const key_states[] = {
    /* AWS KMS KeyState; the store accepts all of them so that later features need no schema
     * change, the keystore decides which transitions are legal. */
    "Creating",        "Enabled",       "Disabled",
    "PendingDeletion", "PendingImport", "PendingReplicaDeletion",
    "Unavailable",     "Updating",
};

static bool key_state_known(const char *state)
{
    for (size_t i = 0; i < sizeof key_states / sizeof key_states[0]; i++) {
        if (strcmp(state, key_states[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- Schema and migrations ---------------------------------------------------------------- */

/* WAL is a property of the file: set at creation, and again on a recognised database that lost
 * it. A query of the mode alone writes nothing. */
static int wal_ensure(const kms_store *store, conn *c)
{
    int r = -1;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (rc != SQLITE_ROW) {
            raise_sqlite(store, c, rc, "cannot enable WAL");
            goto out;
        }
        const unsigned char *mode = sqlite3_column_text(st, 0);
        if (mode != NULL && strcmp((const char *)mode, "wal") == 0) {
            r = 0;
            goto out;
        }
        sqlite3_finalize(st);
        st = NULL;
        rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(st);
        }
    }
    kms_raise(KMS_ERR_HOME, "metadata database %s: cannot enable WAL on this file system",
              store->path);
out:
    sqlite3_finalize(st);
    return r;
}

/* Reads the schema version in *version; KMS_ERR_HOME unless the file is ours. Only reads. */
static int schema_version_read(const kms_store *store, conn *c, int64_t *version)
{
    int r = -1;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, "PRAGMA application_id", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    if (rc != SQLITE_ROW) {
        raise_sqlite(store, c, rc, "cannot read");
        goto out;
    }
    int64_t app_id = sqlite3_column_int64(st, 0);
    if (app_id != STORE_APPLICATION_ID) {
        kms_raise(KMS_ERR_HOME,
                  "metadata database %s is not a KMS metadata database (application id 0x%08" PRIx64
                  ")",
                  store->path, (uint64_t)app_id);
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = sqlite3_prepare_v2(c->db, "SELECT value FROM meta WHERE name = 'schema_version'", -1, &st,
                            NULL);
    if (rc != SQLITE_OK) {
        kms_raise(KMS_ERR_HOME, "metadata database %s has no schema version table: %s", store->path,
                  sqlite3_errmsg(c->db));
        goto out;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE || (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_INTEGER)) {
        kms_raise(KMS_ERR_HOME, "metadata database %s has no valid schema version", store->path);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        raise_sqlite(store, c, rc, "cannot read the schema version");
        goto out;
    }
    *version = sqlite3_column_int64(st, 0);
    if (*version < 0 || *version > KMS_STORE_SCHEMA_VERSION) {
        kms_raise(KMS_ERR_HOME,
                  "metadata database %s has schema version %" PRId64
                  ", this build knows versions up to %d: upgrade kms",
                  store->path, *version, KMS_STORE_SCHEMA_VERSION);
        goto out;
    }
    r = 0;
out:
    sqlite3_finalize(st);
    return r;
}

/* Applies the migration steps from `from` to the current version inside the caller's
 * transaction and records the new version. */
static int schema_migrate(const kms_store *store, conn *c, int64_t from)
{
    for (int64_t v = from; v < KMS_STORE_SCHEMA_VERSION; v++) {
        int rc = sqlite3_exec(c->db, migrations[v], NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            char what[64];
            snprintf(what, sizeof what, "migration to schema version %" PRId64, v + 1);
            return raise_sqlite(store, c, rc, what);
        }
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, "UPDATE meta SET value = ?1 WHERE name = 'schema_version'",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(st, 1, KMS_STORE_SCHEMA_VERSION);
        rc = sqlite3_step(st);
    }
    int r = rc == SQLITE_DONE ? 0 : raise_sqlite(store, c, rc, "cannot record schema version");
    sqlite3_finalize(st);
    return r;
}

/* Brings a recognised database to the current schema. Another process may be migrating at the
 * same time: the version is read again under the write lock. */
static int schema_upgrade(const kms_store *store, conn *c)
{
    int64_t version = 0;
    KMS_GUARD(schema_version_read(store, c, &version));
    KMS_GUARD(wal_ensure(store, c));
    if (version == KMS_STORE_SCHEMA_VERSION) {
        return 0;
    }
    int r = -1;
    if (tx_begin(store, c, "cannot start the migration") != 0 ||
        schema_version_read(store, c, &version) != 0 ||
        (version < KMS_STORE_SCHEMA_VERSION && schema_migrate(store, c, version) != 0) ||
        tx_commit(store, c, "cannot commit the migration") != 0) {
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        tx_rollback(c);
    }
    return r;
}

/* Fills a new, empty file: WAL (persistent, outside the transaction), then application id,
 * meta table and every migration in one transaction. */
static int schema_create(const kms_store *store, conn *c)
{
    int r = -1;
    if (wal_ensure(store, c) != 0 || tx_begin(store, c, "cannot create the schema") != 0) {
        goto out;
    }
    int rc = sqlite3_exec(c->db, sql_init, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        raise_sqlite(store, c, rc, "cannot create the schema");
        goto out;
    }
    if (schema_migrate(store, c, 0) != 0 || tx_commit(store, c, "cannot create the schema") != 0) {
        goto out;
    }
    r = 0;
out:
    if (r != 0) {
        tx_rollback(c);
    }
    return r;
}

/* ---- Open and close ----------------------------------------------------------------------- */

static void remove_db_files(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char *p = kms_strdup_printf("%s%s", path, suffixes[i]);
        if (p != NULL) {
            unlink(p);
            free(p);
        }
    }
}

/* Creates the file exclusively, so that an existing file is never touched. */
static int create_empty_file(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST) {
            return kms_raise(KMS_ERR_ALREADY_EXISTS, "metadata database %s already exists", path);
        }
        return kms_raise(KMS_ERR_HOME, "cannot create metadata database %s: %s", path,
                         strerror(errno));
    }
    close(fd);
    return 0;
}

static int check_existing_file(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT) {
            return kms_raise(KMS_ERR_HOME,
                             "metadata database %s not found: run `kmsctl init` to create the "
                             "KMS home",
                             path);
        }
        return kms_raise(KMS_ERR_HOME, "cannot access metadata database %s: %s", path,
                         strerror(errno));
    }
    KMS_ENSURE(S_ISREG(sb.st_mode), KMS_ERR_HOME, "metadata database %s is not a regular file",
               path);
    return 0;
}

kms_store *kms_store_open(const char *path, bool create)
{
    kms_store *store = NULL;
    conn *c = NULL;
    bool created = false;
    bool ok = false;

    if (path == NULL || path[0] == '\0') {
        kms_raise(KMS_ERR_VALIDATION, "no metadata database path given");
        goto out;
    }
    if (sqlite3_threadsafe() == 0) {
        /* Connections are used from several threads, one at a time. */
        kms_raise(KMS_ERR_INTERNAL, "SQLite was built without thread support");
        goto out;
    }
    store = calloc(1, sizeof *store);
    if (store == NULL || (store->path = strdup(path)) == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    pthread_mutex_init(&store->lock, NULL);
    pthread_cond_init(&store->freed, NULL);

    if (create) {
        if (create_empty_file(path) != 0) {
            goto out;
        }
        created = true;
    } else if (check_existing_file(path) != 0) {
        goto out;
    }
    if (conn_open(store, &c) != 0) {
        goto out;
    }
    if (create ? schema_create(store, c) != 0 : schema_upgrade(store, c) != 0) {
        goto out;
    }
    store->all = c;
    store->opened = 1;
    store->free_list = c;
    c = NULL;
    ok = true;
out:
    conn_free(c);
    if (!ok) {
        if (created) {
            remove_db_files(path);
        }
        kms_store_close(store);
        store = NULL;
    }
    return store;
}

void kms_store_close(kms_store *store)
{
    if (store == NULL) {
        return;
    }
    while (store->all != NULL) {
        conn *c = store->all;
        store->all = c->next_all;
        conn_free(c);
    }
    if (store->path != NULL) {
        pthread_mutex_destroy(&store->lock);
        pthread_cond_destroy(&store->freed);
    }
    free(store->path);
    free(store);
}

/* ---- Keys --------------------------------------------------------------------------------- */

void kms_key_record_clean_up(kms_key_record *rec)
{
    if (rec == NULL) {
        return;
    }
    free(rec->description);
    free(rec->public_key);
    free(rec->policy);
    memset(rec, 0, sizeof *rec);
}

static int key_record_check(const kms_key_record *rec)
{
    KMS_ENSURE(field_ok(rec->key_id, sizeof rec->key_id), KMS_ERR_VALIDATION,
               "invalid key id for the metadata store");
    KMS_ENSURE(field_ok(rec->account_id, sizeof rec->account_id) &&
                   field_ok(rec->key_spec, sizeof rec->key_spec) &&
                   field_ok(rec->key_usage, sizeof rec->key_usage) &&
                   field_ok(rec->key_state, sizeof rec->key_state) &&
                   field_ok(rec->origin, sizeof rec->origin),
               KMS_ERR_VALIDATION, "key %s: a metadata field is empty or too long", rec->key_id);
    KMS_ENSURE(key_state_known(rec->key_state), KMS_ERR_VALIDATION, "key %s: unknown key state %s",
               rec->key_id, rec->key_state);
    KMS_ENSURE(rec->current_version == 1, KMS_ERR_VALIDATION,
               "key %s: a new key starts at material version 1", rec->key_id);
    KMS_ENSURE(rec->public_key_len == 0 || rec->public_key != NULL, KMS_ERR_VALIDATION,
               "key %s: public key length without data", rec->key_id);
    KMS_ENSURE(rec->public_key_len <= INT32_MAX, KMS_ERR_VALIDATION, "key %s: public key too long",
               rec->key_id);
    return 0;
}

static int key_bind_insert(const kms_store *store, conn *c, sqlite3_stmt *st,
                           const kms_key_record *rec, const char *what)
{
    KMS_GUARD(bind_text(store, c, st, 1, rec->key_id, what));
    KMS_GUARD(bind_text(store, c, st, 2, rec->account_id, what));
    KMS_GUARD(bind_text(store, c, st, 3, rec->description ? rec->description : "", what));
    KMS_GUARD(bind_text(store, c, st, 4, rec->key_spec, what));
    KMS_GUARD(bind_text(store, c, st, 5, rec->key_usage, what));
    KMS_GUARD(bind_text(store, c, st, 6, rec->key_state, what));
    KMS_GUARD(bind_text(store, c, st, 7, rec->origin, what));
    KMS_GUARD(bind_int64(store, c, st, 8, rec->creation_date, what));
    KMS_GUARD(bind_int64(store, c, st, 9, rec->deletion_date, what));
    KMS_GUARD(bind_int64(store, c, st, 10, rec->pending_window_days, what));
    KMS_GUARD(bind_int64(store, c, st, 11, rec->current_version, what));
    KMS_GUARD(bind_text(store, c, st, 13, rec->policy ? rec->policy : "", what));
    int rc = rec->public_key_len > 0 ? sqlite3_bind_blob(st, 12, rec->public_key,
                                                         (int)rec->public_key_len, SQLITE_STATIC)
                                     : sqlite3_bind_null(st, 12);
    return rc == SQLITE_OK ? 0 : raise_sqlite(store, c, rc, what);
}

/* Steps an INSERT; a primary key clash becomes AlreadyExistsException with `exists_msg`. */
static int insert_step(const kms_store *store, conn *c, sqlite3_stmt *st, const char *what,
                       const char *exists_msg)
{
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        r = kms_raise(KMS_ERR_ALREADY_EXISTS, "%s", exists_msg);
    } else if (rc != SQLITE_DONE) {
        r = raise_sqlite(store, c, rc, what);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

int kms_store_key_insert(kms_store *store, const kms_key_record *rec)
{
    KMS_GUARD(key_record_check(rec));
    char what[80];
    snprintf(what, sizeof what, "cannot insert key %s", rec->key_id);
    char exists[80];
    snprintf(exists, sizeof exists, "key %s already exists", rec->key_id);

    conn *c = NULL;
    KMS_GUARD(conn_borrow(store, &c));
    int r = -1;
    sqlite3_stmt *st = NULL;
    if (tx_begin(store, c, what) != 0 || conn_stmt(store, c, STMT_KEY_INSERT, what, &st) != 0 ||
        key_bind_insert(store, c, st, rec, what) != 0 ||
        insert_step(store, c, st, what, exists) != 0) {
        goto out;
    }
    if (conn_stmt(store, c, STMT_VERSION_INSERT, what, &st) != 0 ||
        bind_text(store, c, st, 1, rec->key_id, what) != 0 ||
        bind_int64(store, c, st, 2, rec->current_version, what) != 0 ||
        bind_int64(store, c, st, 3, rec->creation_date, what) != 0 ||
        insert_step(store, c, st, what, exists) != 0 || tx_commit(store, c, what) != 0) {
        goto out;
    }
    r = 0;
out:
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    if (r != 0) {
        tx_rollback(c);
    }
    conn_return(store, c);
    return r;
}

static int key_row_read(const kms_store *store, sqlite3_stmt *st, kms_key_record *out,
                        const char *key_id)
{
    const char *what = key_id;
    KMS_GUARD(column_text(store, st, 0, out->key_id, sizeof out->key_id, what));
    KMS_GUARD(column_text(store, st, 1, out->account_id, sizeof out->account_id, what));
    KMS_GUARD(column_text(store, st, 3, out->key_spec, sizeof out->key_spec, what));
    KMS_GUARD(column_text(store, st, 4, out->key_usage, sizeof out->key_usage, what));
    KMS_GUARD(column_text(store, st, 5, out->key_state, sizeof out->key_state, what));
    KMS_GUARD(column_text(store, st, 6, out->origin, sizeof out->origin, what));
    out->creation_date = sqlite3_column_int64(st, 7);
    out->deletion_date = sqlite3_column_int64(st, 8);
    out->pending_window_days = sqlite3_column_int(st, 9);
    out->current_version = (uint32_t)sqlite3_column_int64(st, 10);
    out->policy_version = sqlite3_column_int64(st, 12);

    const unsigned char *desc = sqlite3_column_text(st, 2);
    size_t desc_len = (size_t)sqlite3_column_bytes(st, 2);
    out->description = malloc(desc_len + 1);
    KMS_ENSURE(out->description != NULL, KMS_ERR_INTERNAL, "out of memory");
    if (desc_len > 0) {
        memcpy(out->description, desc, desc_len);
    }
    out->description[desc_len] = '\0';

    const void *pk = sqlite3_column_blob(st, 11);
    size_t pk_len = (size_t)sqlite3_column_bytes(st, 11);
    if (pk != NULL && pk_len > 0) {
        out->public_key = malloc(pk_len);
        KMS_ENSURE(out->public_key != NULL, KMS_ERR_INTERNAL, "out of memory");
        memcpy(out->public_key, pk, pk_len);
        out->public_key_len = pk_len;
    }
    return 0;
}

int kms_store_key_get(kms_store *store, const char *key_id, kms_key_record *out)
{
    memset(out, 0, sizeof *out);
    KMS_ENSURE(key_id != NULL, KMS_ERR_VALIDATION, "no key id given");
    const char *what = "cannot read key";
    conn *c = NULL;
    KMS_GUARD(conn_borrow(store, &c));
    int r = -1;
    sqlite3_stmt *st = NULL;
    if (conn_stmt(store, c, STMT_KEY_GET, what, &st) != 0 ||
        bind_text(store, c, st, 1, key_id, what) != 0) {
        goto out;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        kms_raise(KMS_ERR_NOT_FOUND, "key %s does not exist", key_id);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        char w[80];
        snprintf(w, sizeof w, "cannot read key %s", key_id);
        raise_sqlite(store, c, rc, w);
        goto out;
    }
    if (key_row_read(store, st, out, key_id) != 0) {
        goto out;
    }
    r = 0;
out:
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    conn_return(store, c);
    if (r != 0) {
        kms_key_record_clean_up(out);
    }
    return r;
}

/* Runs an UPDATE whose parameters `bind` sets; NotFoundException naming the key if no row
 * changed. */
typedef int (*bind_fn)(const kms_store *store, conn *c, sqlite3_stmt *st, const void *arg,
                       const char *what);

static int key_update(kms_store *store, stmt_id id, const char *key_id, bind_fn bind,
                      const void *arg)
{
    KMS_ENSURE(key_id != NULL, KMS_ERR_VALIDATION, "no key id given");
    char what[80];
    snprintf(what, sizeof what, "cannot update key %s", key_id);
    conn *c = NULL;
    KMS_GUARD(conn_borrow(store, &c));
    int r = -1;
    sqlite3_stmt *st = NULL;
    if (conn_stmt(store, c, id, what, &st) != 0 || bind(store, c, st, arg, what) != 0 ||
        bind_text(store, c, st, 1, key_id, what) != 0 || stmt_run(store, c, st, what) != 0) {
        goto out;
    }
    if (sqlite3_changes(c->db) == 0) {
        kms_raise(KMS_ERR_NOT_FOUND, "key %s does not exist", key_id);
        goto out;
    }
    r = 0;
out:
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    conn_return(store, c);
    return r;
}

/* Binds one text (NULL as "") as the second parameter of a key update: the description or the
 * key policy. */
static int bind_second_text(const kms_store *store, conn *c, sqlite3_stmt *st, const void *arg,
                            const char *what)
{
    const char *text = arg;
    return bind_text(store, c, st, 2, text ? text : "", what);
}

int kms_store_key_set_description(kms_store *store, const char *key_id, const char *description)
{
    return key_update(store, STMT_KEY_SET_DESCRIPTION, key_id, bind_second_text, description);
}

typedef struct state_args {
    const char *state;
    int64_t deletion_date;
    int pending_window_days;
} state_args;

static int bind_state(const kms_store *store, conn *c, sqlite3_stmt *st, const void *arg,
                      const char *what)
{
    const state_args *a = arg;
    KMS_GUARD(bind_text(store, c, st, 2, a->state, what));
    KMS_GUARD(bind_int64(store, c, st, 3, a->deletion_date, what));
    return bind_int64(store, c, st, 4, a->pending_window_days, what);
}

int kms_store_key_set_state(kms_store *store, const char *key_id, const char *state,
                            int64_t deletion_date, int pending_window_days)
{
    KMS_ENSURE(key_id != NULL, KMS_ERR_VALIDATION, "no key id given");
    KMS_ENSURE(state != NULL && key_state_known(state), KMS_ERR_VALIDATION,
               "key %s: unknown key state %s", key_id, state ? state : "(null)");
    state_args a = {state, deletion_date, pending_window_days};
    return key_update(store, STMT_KEY_SET_STATE, key_id, bind_state, &a);
}

/* ---- Key policies ------------------------------------------------------------------------- */

int kms_store_key_policy_get(kms_store *store, const char *key_id, char **doc, int64_t *version)
{
    *doc = NULL;
    KMS_ENSURE(key_id != NULL, KMS_ERR_VALIDATION, "no key id given");
    const char *what = "cannot read key policy";
    conn *c = NULL;
    KMS_GUARD(conn_borrow(store, &c));
    int r = -1;
    sqlite3_stmt *st = NULL;
    if (conn_stmt(store, c, STMT_KEY_POLICY_GET, what, &st) != 0 ||
        bind_text(store, c, st, 1, key_id, what) != 0) {
        goto out;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        kms_raise(KMS_ERR_NOT_FOUND, "key %s does not exist", key_id);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        raise_sqlite(store, c, rc, what);
        goto out;
    }
    const unsigned char *text = sqlite3_column_text(st, 0);
    *doc = strdup(text ? (const char *)text : "");
    if (*doc == NULL) {
        kms_raise(KMS_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (version != NULL) {
        *version = sqlite3_column_int64(st, 1);
    }
    r = 0;
out:
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    conn_return(store, c);
    return r;
}

int kms_store_key_policy_put(kms_store *store, const char *key_id, const char *doc)
{
    return key_update(store, STMT_KEY_POLICY_PUT, key_id, bind_second_text, doc);
}

/* ---- Listing ------------------------------------------------------------------------------
 * Rows are collected first and the callbacks run after the connection went back to the pool,
 * so that a callback may call the store again (e.g. kms_store_key_get for each id). */

typedef struct row_list {
    void *items;
    size_t item_size;
    size_t count;
    size_t cap;
} row_list;

static int row_list_push(row_list *l, const void *item)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *p = realloc(l->items, cap * l->item_size);
        KMS_ENSURE(p != NULL, KMS_ERR_INTERNAL, "out of memory");
        l->items = p;
        l->cap = cap;
    }
    memcpy((char *)l->items + l->count * l->item_size, item, l->item_size);
    l->count++;
    return 0;
}

/* LIMIT ?: one more row than asked tells whether the listing is truncated. */
static int64_t fetch_limit(size_t limit)
{
    return limit >= (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit + 1;
}

typedef struct key_id_item {
    char key_id[37];
} key_id_item;

static int key_list_fetch(kms_store *store, const char *marker, size_t limit, row_list *rows,
                          bool *more)
{
    const char *what = "cannot list keys";
    conn *c = NULL;
    KMS_GUARD(conn_borrow(store, &c));
    int r = -1;
    sqlite3_stmt *st = NULL;
    if (conn_stmt(store, c, STMT_KEY_LIST, what, &st) != 0 ||
        bind_text(store, c, st, 1, marker ? marker : "", what) != 0 ||
        bind_int64(store, c, st, 2, fetch_limit(limit), what) != 0) {
        goto out;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (rows->count == limit) {
            *more = true;
            break;
        }
        key_id_item item;
        if (column_text(store, st, 0, item.key_id, sizeof item.key_id, "a key") != 0 ||
            row_list_push(rows, &item) != 0) {
            goto out;
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        raise_sqlite(store, c, rc, what);
        goto out;
    }
    r = 0;
out:
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    conn_return(store, c);
    return r;
}

int kms_store_key_list(kms_store *store, const char *marker, size_t limit, kms_store_key_cb cb,
                       void *arg, bool *truncated)
{
    KMS_ENSURE(limit > 0, KMS_ERR_VALIDATION, "the list limit must be at least 1");
    row_list rows = {.item_size = sizeof(key_id_item)};
    bool more = false;
    int r = -1;
    if (key_list_fetch(store, marker, limit, &rows, &more) != 0) {
        goto out;
    }
    const key_id_item *items = rows.items;
    for (size_t i = 0; i < rows.count; i++) {
        if (cb(arg, items[i].key_id) != 0) {
            goto out;
        }
    }
    if (truncated != NULL) {
        *truncated = more;
    }
    r = 0;
out:
    free(rows.items);
    return r;
}

/* ---- Aliases ------------------------------------------------------------------------------ */

static int alias_name_check(const char *alias_name)
{
    KMS_ENSURE(alias_name != NULL &&
                   field_ok(alias_name, sizeof((kms_alias_record *)0)->alias_name),
               KMS_ERR_VALIDATION, "invalid alias name for the metadata store");
    return 0;
}

static int key_id_check(const char *key_id)
{
    KMS_ENSURE(key_id != NULL && field_ok(key_id, sizeof((kms_key_record *)0)->key_id),
               KMS_ERR_VALIDATION, "invalid key id for the metadata store");
    return 0;
}

/* NotFoundException unless the key exists (inside the caller's transaction). */
static int key_must_exist(const kms_store *store, conn *c, const char *key_id, const char *what)
{
    sqlite3_stmt *st = NULL;
    KMS_GUARD(conn_stmt(store, c, STMT_KEY_EXISTS, what, &st));
    int r = -1;
    if (bind_text(store, c, st, 1, key_id, what) != 0) {
        goto out;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        kms_raise(KMS_ERR_NOT_FOUND, "%s: key %s does not exist", what, key_id);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        raise_sqlite(store, c, rc, what);
        goto out;
    }
    r = 0;
out:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

/* CreateAlias and UpdateAlias: one statement in a transaction that first checks the key.
 * create: an existing alias is AlreadyExists; else a missing alias is NotFound. */
static int alias_write(kms_store *store, const char *alias_name, const char *key_id, int64_t now,
                       bool create)
{
    KMS_GUARD(alias_name_check(alias_name));
    KMS_GUARD(key_id_check(key_id));
    char what[300];
    snprintf(what, sizeof what, "cannot %s alias %s", create ? "create" : "update", alias_name);
    char exists[300];
    snprintf(exists, sizeof exists, "alias %s already exists", alias_name);

    conn *c = NULL;
    KMS_GUARD(conn_borrow(store, &c));
    int r = -1;
    sqlite3_stmt *st = NULL;
    if (tx_begin(store, c, what) != 0 || key_must_exist(store, c, key_id, what) != 0 ||
        conn_stmt(store, c, create ? STMT_ALIAS_INSERT : STMT_ALIAS_UPDATE, what, &st) != 0 ||
        bind_text(store, c, st, 1, alias_name, what) != 0 ||
        bind_text(store, c, st, 2, key_id, what) != 0 ||
        bind_int64(store, c, st, 3, now, what) != 0) {
        goto out;
    }
    if (create ? insert_step(store, c, st, what, exists) != 0 : stmt_run(store, c, st, what) != 0) {
        goto out;
    }
    if (!create && sqlite3_changes(c->db) == 0) {
        kms_raise(KMS_ERR_NOT_FOUND, "alias %s does not exist", alias_name);
        goto out;
    }
    if (tx_commit(store, c, what) != 0) {
        goto out;
    }
    r = 0;
out:
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    if (r != 0) {
        tx_rollback(c);
    }
    conn_return(store, c);
    return r;
}

int kms_store_alias_create(kms_store *store, const char *alias_name, const char *key_id,
                           int64_t now)
{
    return alias_write(store, alias_name, key_id, now, true);
}

int kms_store_alias_update(kms_store *store, const char *alias_name, const char *key_id,
                           int64_t now)
{
    return alias_write(store, alias_name, key_id, now, false);
}

int kms_store_alias_delete(kms_store *store, const char *alias_name)
{
    KMS_GUARD(alias_name_check(alias_name));
    char what[300];
    snprintf(what, sizeof what, "cannot delete alias %s", alias_name);

    conn *c = NULL;
    KMS_GUARD(conn_borrow(store, &c));
    int r = -1;
    sqlite3_stmt *st = NULL;
    if (conn_stmt(store, c, STMT_ALIAS_DELETE, what, &st) != 0 ||
        bind_text(store, c, st, 1, alias_name, what) != 0 || stmt_run(store, c, st, what) != 0) {
        goto out;
    }
    if (sqlite3_changes(c->db) == 0) {
        kms_raise(KMS_ERR_NOT_FOUND, "alias %s does not exist", alias_name);
        goto out;
    }
    r = 0;
out:
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    conn_return(store, c);
    return r;
}

static int alias_row_read(const kms_store *store, sqlite3_stmt *st, kms_alias_record *out,
                          const char *subject)
{
    const char *what = subject;
    KMS_GUARD(column_text(store, st, 0, out->alias_name, sizeof out->alias_name, what));
    KMS_GUARD(column_text(store, st, 1, out->key_id, sizeof out->key_id, what));
    out->creation_date = sqlite3_column_int64(st, 2);
    out->last_updated_date = sqlite3_column_int64(st, 3);
    return 0;
}

int kms_store_alias_get(kms_store *store, const char *alias_name, kms_alias_record *out)
{
    memset(out, 0, sizeof *out);
    KMS_GUARD(alias_name_check(alias_name));
    const char *what = "cannot read alias";
    conn *c = NULL;
    KMS_GUARD(conn_borrow(store, &c));
    int r = -1;
    sqlite3_stmt *st = NULL;
    if (conn_stmt(store, c, STMT_ALIAS_GET, what, &st) != 0 ||
        bind_text(store, c, st, 1, alias_name, what) != 0) {
        goto out;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        kms_raise(KMS_ERR_NOT_FOUND, "alias %s does not exist", alias_name);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        raise_sqlite(store, c, rc, what);
        goto out;
    }
    if (alias_row_read(store, st, out, alias_name) != 0) {
        goto out;
    }
    r = 0;
out:
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    conn_return(store, c);
    if (r != 0) {
        memset(out, 0, sizeof *out);
    }
    return r;
}

static int alias_list_fetch(kms_store *store, const char *key_id, const char *marker, size_t limit,
                            row_list *rows, bool *more)
{
    const char *what = "cannot list aliases";
    conn *c = NULL;
    KMS_GUARD(conn_borrow(store, &c));
    int r = -1;
    sqlite3_stmt *st = NULL;
    stmt_id id = key_id ? STMT_ALIAS_LIST_BY_KEY : STMT_ALIAS_LIST;
    if (conn_stmt(store, c, id, what, &st) != 0 ||
        bind_text(store, c, st, 1, marker ? marker : "", what) != 0 ||
        bind_int64(store, c, st, 2, fetch_limit(limit), what) != 0 ||
        (key_id && bind_text(store, c, st, 3, key_id, what) != 0)) {
        goto out;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (rows->count == limit) {
            *more = true;
            break;
        }
        kms_alias_record item;
        if (alias_row_read(store, st, &item, "an alias") != 0 || row_list_push(rows, &item) != 0) {
            goto out;
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        raise_sqlite(store, c, rc, what);
        goto out;
    }
    r = 0;
out:
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    conn_return(store, c);
    return r;
}

int kms_store_alias_list(kms_store *store, const char *key_id, const char *marker, size_t limit,
                         kms_store_alias_cb cb, void *arg, bool *truncated)
{
    KMS_ENSURE(limit > 0, KMS_ERR_VALIDATION, "the list limit must be at least 1");
    row_list rows = {.item_size = sizeof(kms_alias_record)};
    bool more = false;
    int r = -1;
    if (alias_list_fetch(store, key_id, marker, limit, &rows, &more) != 0) {
        goto out;
    }
    const kms_alias_record *items = rows.items;
    for (size_t i = 0; i < rows.count; i++) {
        if (cb(arg, &items[i]) != 0) {
            goto out;
        }
    }
    if (truncated != NULL) {
        *truncated = more;
    }
    r = 0;
out:
    free(rows.items);
    return r;
}

/* ---- Connections for other modules (store_internal.h) ------------------------------------- */

int kms_store_conn_borrow(kms_store *store, kms_store_conn **out)
{
    return conn_borrow(store, out);
}

void kms_store_conn_return(kms_store *store, kms_store_conn *c)
{
    if (c == NULL) {
        return;
    }
    /* A statement left mid-step would hold a read transaction open for the next borrower. */
    for (sqlite3_stmt *st = sqlite3_next_stmt(c->db, NULL); st != NULL;
         st = sqlite3_next_stmt(c->db, st)) {
        if (sqlite3_stmt_busy(st)) {
            sqlite3_reset(st);
        }
    }
    tx_rollback(c);
    conn_return(store, c);
}

sqlite3 *kms_store_conn_db(kms_store_conn *c)
{
    return c->db;
}

int kms_store_conn_prepare(kms_store *store, kms_store_conn *c, const char *sql, sqlite3_stmt **out)
{
    /* Fibonacci hashing of the address: literals are spread over the table well enough. */
    size_t h = (size_t)(((uintptr_t)sql * UINT64_C(11400714819323198485)) >> 55) % SQL_CACHE_SLOTS;
    for (size_t i = 0; i < SQL_CACHE_SLOTS; i++) {
        sql_slot *slot = &c->sql_cache[(h + i) % SQL_CACHE_SLOTS];
        if (slot->sql == sql) {
            sqlite3_reset(slot->st);
            sqlite3_clear_bindings(slot->st);
            *out = slot->st;
            return 0;
        }
        if (slot->sql == NULL) {
            /* Keep the table at most three quarters full so that probes stay short. */
            KMS_ENSURE(c->sql_cached < SQL_CACHE_SLOTS * 3 / 4, KMS_ERR_INTERNAL,
                       "too many distinct SQL statements");
            int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &slot->st, NULL);
            if (rc != SQLITE_OK) {
                slot->st = NULL;
                return raise_sqlite(store, c, rc, "cannot prepare a statement");
            }
            slot->sql = sql;
            c->sql_cached++;
            *out = slot->st;
            return 0;
        }
    }
    return kms_raise(KMS_ERR_INTERNAL, "statement cache full");
}

int kms_store_conn_begin(kms_store *store, kms_store_conn *c)
{
    return tx_begin(store, c, "cannot begin a transaction");
}

int kms_store_conn_commit(kms_store *store, kms_store_conn *c)
{
    return tx_commit(store, c, "cannot commit");
}

void kms_store_conn_rollback(kms_store_conn *c)
{
    tx_rollback(c);
}

int kms_store_raise(const kms_store *store, kms_store_conn *c, int rc, const char *what)
{
    return raise_sqlite(store, c, rc, what);
}

int kms_store_step(kms_store *store, kms_store_conn *c, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        return 1;
    }
    if (rc == SQLITE_DONE) {
        return 0;
    }
    return kms_store_raise(store, c, rc, what);
}
