libshared_db_sources =
libshared_generated_sources =
