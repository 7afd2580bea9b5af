# systemd rules
