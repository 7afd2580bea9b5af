# bench rules
include bench/router.mk
