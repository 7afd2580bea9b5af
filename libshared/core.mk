libshared_core_sources =
