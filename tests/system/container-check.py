#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Static checks of container/ (no container engine runs on the build hosts).

  container-check.py TOP_SRCDIR SPEC

Containerfile: a Rocky Linux 9 build stage that runs `make rpm` and a
runtime stage that installs the RPM from it; every file it COPYs from the
tree exists. compose.yaml: parses, has PostgreSQL and one service per
daemon, builds from container/Containerfile, and runs only commands the
entrypoint knows, whose binaries the spec's %files installs; entrypoint.sh
execs /usr/sbin/<daemon> --user. Prints one line per problem; exit 1 if any.
"""
import os
import re
import sys

DAEMONS = ["callcenter-eventd", "callcenter-routerd", "callcenter-taskd"]


def main(top, spec_path):
    problems = []
    cdir = os.path.join(top, "container")
    cf = open(os.path.join(cdir, "Containerfile")).read()
    lines = [l.strip() for l in re.sub(r"\\\n", " ", cf).splitlines()
             if l.strip() and not l.strip().startswith("#")]
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", "\n".join(lines), re.M))
    froms = [l.split()[1:] for l in lines if l.startswith("FROM ")]
    stages = [f[2] for f in froms if len(f) == 3 and f[1].upper() == "AS"]
    if stages != ["build", "runtime"]:
        problems.append("Containerfile stages %s, expected build and runtime" % stages)
    for f in froms:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), "?"), f[0])
        if not re.search(r"rockylinux.*:9", image):
            problems.append("Containerfile: FROM %s is not Rocky Linux 9" % image)
    build = cf.split(" AS runtime")[0]
    if "make" not in build or " rpm" not in build:
        problems.append("Containerfile: the build stage does not run make rpm")
    runtime = cf.split(" AS runtime")[-1]
    if "COPY --from=build" not in runtime or not re.search(r"dnf -y install /tmp/rpms/\*\.rpm", runtime):
        problems.append("Containerfile: the runtime stage does not install the RPM of the build stage")
    for l in lines:
        if l.startswith("COPY ") and "--from=" not in l:
            for src in l.split()[1:-1]:
                if src != "." and not os.path.exists(os.path.join(top, src)):
                    problems.append("Containerfile: COPY %s: no such file in the tree" % src)

    spec = open(spec_path).read()
    entry = open(os.path.join(cdir, "entrypoint.sh")).read()
    if 'exec "/usr/sbin/$d" --user' not in entry:
        problems.append("entrypoint.sh does not exec /usr/sbin/<daemon> --user")
    for d in DAEMONS:
        if d not in entry:
            problems.append("entrypoint.sh does not know %s" % d)
        if "%%{_sbindir}/%s\n" % d not in spec:
            problems.append("the spec does not install %%{_sbindir}/%s" % d)

    try:
        import yaml
    except ImportError:
        print("# python3-yaml not found: compose.yaml not parsed")
        return problems
    compose = yaml.safe_load(open(os.path.join(cdir, "compose.yaml")))
    services = compose.get("services", {})
    for want in ["postgres", "bus", "eventd", "routerd", "taskd"]:
        if want not in services:
            problems.append("compose.yaml: no service %s" % want)
    builders = [s for s in services.values() if "build" in s]
    for s in builders:
        b = s["build"]
        path = os.path.normpath(os.path.join(cdir, b.get("context", "."), b.get("dockerfile", "")))
        if path != os.path.join(os.path.normpath(cdir), "Containerfile"):
            problems.append("compose.yaml builds %s, not container/Containerfile" % path)
    images = {s.get("image") for s in builders}
    for name, s in services.items():
        if name == "postgres":
            if "postgres" not in s.get("image", ""):
                problems.append("compose.yaml: service postgres does not run PostgreSQL")
            continue
        if s.get("image") not in images:
            problems.append("compose.yaml: %s does not use the image built from the Containerfile" % name)
        cmd = s.get("command", [])
        if not cmd or (cmd[0] != "bus" and cmd[0] not in DAEMONS):
            problems.append("compose.yaml: %s runs %s, which the entrypoint does not know" % (name, cmd))
        env = s.get("environment", {})
        if cmd and cmd[0] in DAEMONS and "@postgres:" not in env.get("CALLCENTER_DATABASE_URL", ""):
            problems.append("compose.yaml: %s has no CALLCENTER_DATABASE_URL to the postgres service" % name)
        if "run:/run/callcenter" not in s.get("volumes", []):
            problems.append("compose.yaml: %s does not share /run/callcenter" % name)
    return problems


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    found = main(sys.argv[1], sys.argv[2])
    for p in found:
        print(p)
    sys.exit(1 if found else 0)
