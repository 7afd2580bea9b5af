# Container images (no engine runs at build time: files are shipped in the
# tarball and checked statically by tests/system/test-units.sh).
EXTRA_DIST += container/Containerfile container/compose.yaml container/README.md \
	container/entrypoint.sh container/bus.conf
