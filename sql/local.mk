# sql: schema migrations, NNN-name.sql, applied in file-name order by the
# database link on every connect (libshared/db.c). build-aux/embed-sql.sh
# compiles them into libshared (rule in libshared/db.mk); the whole folder is
# distributed so that a new migration needs no Makefile change.
EXTRA_DIST += sql
