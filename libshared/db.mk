# libshared db: the non-blocking PostgreSQL link and the schema migrations
# compiled into it.
libshared_db_sources = \
	libshared/db.c libshared/db.h \
	libshared/db-migrations.h

# sql/*.sql become libshared/db-migrations.c in the build tree. The list of
# files is read by the script, not by make (a $(wildcard) would need GNU
# make), so the rule runs on every build; the script rewrites its output only
# when it would change, and nothing is recompiled otherwise.
libshared_generated_sources = libshared/db-migrations.c
BUILT_SOURCES += libshared/db-migrations.c
CLEANFILES += libshared/db-migrations.c
EXTRA_DIST += build-aux/embed-sql.sh

libshared/db-migrations.c: db-migrations-always
	$(AM_V_GEN)$(MKDIR_P) libshared && \
	$(SHELL) $(top_srcdir)/build-aux/embed-sql.sh $(top_srcdir)/sql $@
db-migrations-always:
.PHONY: db-migrations-always

# Tests of the link: the COPY escaping (no server needed) and the
# integration script with its driver (needs initdb, skipped otherwise).
check_PROGRAMS += tests/integration/db-copy-escape tests/integration/db-driver
TESTS += tests/integration/db-copy-escape tests/integration/test-db.sh
EXTRA_DIST += tests/integration/test-db.sh

tests_integration_db_copy_escape_SOURCES = tests/integration/db-copy-escape.c
tests_integration_db_copy_escape_LDADD = $(SHARED_LIBS)
tests_integration_db_copy_escape_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests

tests_integration_db_driver_SOURCES = tests/integration/db-driver.c
tests_integration_db_driver_LDADD = $(SHARED_LIBS)
tests_integration_db_driver_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
