# dbus rules
