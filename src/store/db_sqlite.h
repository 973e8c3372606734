/* The SQLite handles behind db.h, for the store_internal.h connection functions that src/iam
 * still calls until it moves onto db.h. Nothing new may include this. */
#ifndef KMS_STORE_DB_SQLITE_H
#define KMS_STORE_DB_SQLITE_H

#include <sqlite3.h>

#include "store/db.h"

sqlite3 *kms_db_conn_sqlite(kms_db_conn *c);
sqlite3_stmt *kms_db_stmt_sqlite(kms_db_stmt *st);
/* Raises the error of the failed SQLite call that returned rc on c (db.h "Errors"); -1. */
int kms_db_raise_rc(kms_db_conn *c, int rc, const char *what);

#endif
