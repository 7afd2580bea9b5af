/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Schema migrations compiled into libshared (private to the database link
 * and its tests).
 *
 * build-aux/embed-sql.sh turns sql/NNN-name.sql, sorted by file name, into
 * the generated libshared/db-migrations.c. The link applies them on every
 * (re)connect, inside one transaction that holds an advisory lock, and
 * records each one in schema_migrations(version) under its name ("002-tasks"
 * for sql/002-tasks.sql). Because they run inside that transaction a
 * migration must not contain BEGIN/COMMIT, COPY FROM STDIN or anything that
 * refuses to run in a transaction block (CREATE INDEX CONCURRENTLY, VACUUM).
 */

#include "db.h"

typedef struct DbMigration {
        const char *name;   /* file name without ".sql"; the recorded version */
        const char *file;   /* "sql/002-tasks.sql", for messages */
        const char *sql;    /* the file's text */
} DbMigration;

/* In file-name order, terminated by an entry whose name is NULL. */
extern const DbMigration db_migrations[];

/*
 * Tests only: apply migrations (same layout, NULL-terminated, borrowed for
 * the life of the link) instead of db_migrations. Call it right after
 * db_link_new(), before the loop runs: the first connection is made from
 * the loop, so no migration has started yet.
 */
void db_link_set_migrations(DbLink *l, const DbMigration *migrations);
