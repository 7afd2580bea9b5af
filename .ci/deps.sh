# shellcheck shell=bash
# .ci/deps.sh: the packages callcenter needs, per distribution, and
# deps_install, which installs what is missing. Sourced by dev.sh (run, up,
# build, deps) and so by .ci/test.sh; it expects dev.sh's $dev, say, die and
# is_root. Adding a dependency is one word in the tables below.
# shellcheck disable=SC2154 # $dev comes from dev.sh

# Package names per distribution. "build" are needed to compile; "run" to run
# and test (PostgreSQL server, dbus-daemon, busctl, the SMTP test server, clang
# for the fuzzers, rpm tools for the spec check, Twisted for the router
# benchmark's baseline). A missing run dependency only makes the tests that
# need it skip.
DEB_BUILD=(gcc make autoconf automake libtool pkg-config libsystemd-dev libzmq3-dev libpq-dev libjson-c-dev libinih-dev)
DEB_RUN=(postgresql dbus systemd python3 python3-aiosmtpd python3-twisted clang libclang-rt-dev rpm rpmlint systemd-container debootstrap)
# Rocky/RHEL 9: zeromq-devel, inih-devel, python3-aiosmtpd and python3-twisted come from EPEL,
# json-c-devel (and EPEL's own dependencies) from CRB.
RPM_BUILD=(gcc make autoconf automake libtool pkgconf-pkg-config systemd-devel zeromq-devel libpq-devel json-c-devel inih-devel)
RPM_RUN=(postgresql-server postgresql dbus-daemon systemd python3 python3-aiosmtpd python3-twisted clang compiler-rt rpm-build rpmlint util-linux systemd-container debootstrap)
RPM_EPEL=(zeromq-devel inih-devel python3-aiosmtpd python3-twisted debootstrap)
RPM_CRB=(json-c-devel)

distro() {
        if command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; then
                echo debian
        elif command -v dnf >/dev/null && command -v rpm >/dev/null; then
                echo rocky
        else
                echo unknown
        fi
}

deb_missing() {
        local p
        for p in "$@"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
        done
}
rpm_missing() {
        local p
        for p in "$@"; do
                rpm -q --quiet "$p" 2>/dev/null || rpm -q --quiet --whatprovides "$p" 2>/dev/null || echo "$p"
        done
}

# deb_install PKG...: quietly; `apt-get update` first when the package lists
# are empty (fresh container), and once more if an install fails (stale lists).
deb_install() {
        local log=$dev/log/deps.log
        export DEBIAN_FRONTEND=noninteractive
        if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
                apt-get update -qq >>"$log" 2>&1 || true
        fi
        apt-get install -y -qq --no-install-recommends "$@" >>"$log" 2>&1 && return 0
        apt-get update -qq >>"$log" 2>&1 || true
        apt-get install -y -qq --no-install-recommends "$@" >>"$log" 2>&1
}

# rpm_install PKG...: enables EPEL and CRB only when a package needs them.
rpm_install() {
        local log=$dev/log/deps.log p need_epel=0 need_crb=0
        for p in "$@"; do
                [[ " ${RPM_EPEL[*]} " == *" $p "* ]] && need_epel=1
                [[ " ${RPM_CRB[*]} " == *" $p "* ]] && need_crb=1
        done
        # EPEL packages depend on CRB ones, so EPEL implies CRB.
        [ "$need_epel" = 1 ] && need_crb=1
        if [ "$need_crb" = 1 ]; then
                rpm -q --quiet dnf-plugins-core || dnf -y -q install dnf-plugins-core >>"$log" 2>&1 || true
                dnf config-manager --set-enabled crb >>"$log" 2>&1 ||
                        dnf config-manager --set-enabled powertools >>"$log" 2>&1 || true
        fi
        if [ "$need_epel" = 1 ] && ! rpm -q --quiet epel-release; then
                dnf -y -q install epel-release >>"$log" 2>&1 || true
        fi
        dnf -y -q install "$@" >>"$log" 2>&1
}

# The command a non-root user should run for packages PKG...
install_hint() {
        local d=$1; shift
        if [ "$d" = debian ]; then
                echo "sudo apt-get install $*"
        else
                echo "sudo dnf install -y epel-release dnf-plugins-core && sudo dnf config-manager --set-enabled crb && sudo dnf install $*"
        fi
}

# Install what is missing. Root installs; anyone else is told what to run.
# A missing build dependency is fatal; a missing run dependency is not.
deps_install() {
        local d missing_build=() missing_run=()
        mkdir -p "$dev/log"
        d=$(distro)
        case $d in
        debian)
                mapfile -t missing_build < <(deb_missing "${DEB_BUILD[@]}")
                mapfile -t missing_run < <(deb_missing "${DEB_RUN[@]}")
                ;;
        rocky)
                mapfile -t missing_build < <(rpm_missing "${RPM_BUILD[@]}")
                mapfile -t missing_run < <(rpm_missing "${RPM_RUN[@]}")
                ;;
        *)
                say "dev.sh: unknown distribution (no apt-get or dnf): install the build dependencies by hand:"
                say "  gcc make autoconf automake libtool pkg-config, and the -dev(el) packages of"
                say "  libsystemd, libzmq, libpq, json-c, inih; PostgreSQL server, dbus-daemon"
                return 0 ;;
        esac
        [ ${#missing_build[@]} -eq 0 ] && [ ${#missing_run[@]} -eq 0 ] && return 0

        if ! is_root; then
                if [ ${#missing_build[@]} -gt 0 ]; then
                        say "dev.sh: missing build dependencies: ${missing_build[*]}"
                        say "  install them with: $(install_hint "$d" "${missing_build[@]}" "${missing_run[@]}")"
                        exit 1
                fi
                say "dev.sh: missing run/test dependencies (the tests that need them will skip): ${missing_run[*]}"
                say "  install them with: $(install_hint "$d" "${missing_run[@]}")"
                return 0
        fi

        local all=("${missing_build[@]}" "${missing_run[@]}") install=deb_install p
        [ "$d" = debian ] || install=rpm_install
        say "dev.sh: installing ${all[*]} ($d; log in .dev/log/deps.log)"
        # All at once is fastest; if that fails, one package may be unknown on
        # this release: then the build ones together (fatal), the others one
        # by one (not fatal), so one missing package does not block the rest.
        if ! $install "${all[@]}"; then
                if [ ${#missing_build[@]} -gt 0 ]; then
                        $install "${missing_build[@]}" ||
                                die "could not install ${missing_build[*]}; see .dev/log/deps.log"
                fi
                for p in "${missing_run[@]}"; do $install "$p" || true; done
        fi
        # Some run dependencies may not exist on this release: say which.
        if [ "$d" = debian ]; then
                mapfile -t missing_run < <(deb_missing "${DEB_RUN[@]}")
        else
                mapfile -t missing_run < <(rpm_missing "${RPM_RUN[@]}")
        fi
        [ ${#missing_run[@]} -eq 0 ] ||
                say "dev.sh: could not install ${missing_run[*]}; the tests that need them will skip"
}
