#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Static and live checks of the D-Bus data in dbus/ (used by test-units.sh).

  dbus-check.py policy CONF XML
      The system-bus policy CONF for the name in XML: only user callcenter may
      own the name; root and group callcenter may send it anything; everyone
      else may only read: Introspectable, Peer, Properties.Get/GetAll,
      ObjectManager.GetManagedObjects and exactly the methods of XML named
      List* or Get* (GetStats included), plus Subscribe/Unsubscribe (a
      subscription only asks for signals). Prints one line per problem.

  dbus-check.py activation SERVICEFILE UNITDIR
      The system activation file names a SystemdService= that exists in
      UNITDIR, has Exec=/bin/false, and the unit has a matching BusName=.

  dbus-check.py introspect XML BUSNAME ROOTPATH [busctl options...]
      Walk the live object tree under ROOTPATH with busctl and compare every
      interface of XML (methods with argument types and directions, signals
      with argument types, properties with type and access) with the first
      object that implements it.

Exit status 0 when all is well, 1 with the problems on stdout.
"""
import configparser
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

READ_INTERFACES = {"org.freedesktop.DBus.Introspectable", "org.freedesktop.DBus.Peer"}
READ_MEMBERS = {
    "org.freedesktop.DBus.Properties": {"Get", "GetAll"},
    "org.freedesktop.DBus.ObjectManager": {"GetManagedObjects"},
}


def is_reader_method(name):
    return name.startswith("List") or name.startswith("Get") or name in ("Subscribe", "Unsubscribe")


def xml_interfaces(root):
    """{interface: {('method'|'signal'|'property', name): signature string}}"""
    out = {}
    for iface in root.iter("interface"):
        members = {}
        for m in iface.findall("method"):
            args = ["%s:%s" % (a.get("direction", "in"), a.get("type")) for a in m.findall("arg")]
            members[("method", m.get("name"))] = ",".join(args)
        for s in iface.findall("signal"):
            members[("signal", s.get("name"))] = ",".join(a.get("type") for a in s.findall("arg"))
        for p in iface.findall("property"):
            members[("property", p.get("name"))] = "%s %s" % (p.get("type"), p.get("access"))
        out[iface.get("name")] = members
    return out


def check_policy(conf_path, xml_path):
    problems = []
    name = os.path.basename(conf_path)[: -len(".conf")]
    ifaces = xml_interfaces(ET.parse(xml_path).getroot())
    methods = {m for i in ifaces.values() for (kind, m) in i if kind == "method"}
    readers = {m for m in methods if is_reader_method(m)}
    policies = ET.parse(conf_path).getroot().findall("policy")

    def rules(pred):
        return [(r.tag, r.attrib) for p in policies if pred(p.attrib) for r in p]

    owner = rules(lambda a: a.get("user") == "callcenter")
    if ("allow", {"own": name}) not in owner:
        problems.append("user callcenter may not own %s" % name)
    for who, pred in (("user root", lambda a: a.get("user") == "root"),
                      ("group callcenter", lambda a: a.get("group") == "callcenter")):
        if ("allow", {"send_destination": name}) not in rules(pred):
            problems.append("%s may not call every method of %s" % (who, name))
    for p in policies:
        for r in p:
            if r.tag == "allow" and r.get("own") and p.attrib != {"user": "callcenter"}:
                problems.append("policy %s allows owning %s" % (p.attrib, r.get("own")))

    default = rules(lambda a: a.get("context") == "default")
    if ("deny", {"own": name}) not in default:
        problems.append("default context does not deny owning %s" % name)
    if ("deny", {"send_destination": name}) not in default:
        problems.append("default context does not deny sending to %s" % name)
    allowed = set()
    for tag, a in default:
        if tag != "allow" or a.get("send_destination") != name:
            continue
        iface, member = a.get("send_interface"), a.get("send_member")
        if iface in READ_INTERFACES and member is None:
            continue
        if iface in READ_MEMBERS and member in READ_MEMBERS[iface]:
            continue
        if iface in ifaces and member is not None and is_reader_method(member):
            if member not in methods:
                problems.append("default context allows %s.%s, which %s does not have"
                                % (iface, member, os.path.basename(xml_path)))
            allowed.add(member)
            continue
        problems.append("default context allows a non-reading call: %s" % a)
    for m in sorted(readers - allowed):
        problems.append("everyone may read, but %s is not allowed to the default context" % m)
    return problems


def check_activation(service_path, unitdir):
    problems = []
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read(service_path)
    sec = cp["D-BUS Service"]
    name = os.path.basename(service_path)[: -len(".service")]
    if sec.get("Name") != name:
        problems.append("%s: Name=%s, expected %s" % (service_path, sec.get("Name"), name))
    if sec.get("Exec") != "/bin/false":
        problems.append("%s: Exec= should be /bin/false (systemd starts it)" % service_path)
    unit = sec.get("SystemdService")
    if not unit:
        return problems + ["%s: no SystemdService=" % service_path]
    cands = [os.path.join(unitdir, unit), os.path.join(unitdir, unit + ".in")]
    found = [c for c in cands if os.path.exists(c)]
    if not found:
        return problems + ["%s: SystemdService=%s not in %s" % (service_path, unit, unitdir)]
    with open(found[0]) as f:
        if "BusName=%s\n" % name not in f.read():
            problems.append("%s has no BusName=%s" % (unit, name))
    return problems


def introspect(busctl, dest, path):
    out = subprocess.run(busctl + ["call", dest, path, "org.freedesktop.DBus.Introspectable",
                                   "Introspect", "--json=short"],
                         check=True, capture_output=True, text=True).stdout
    import json
    return ET.fromstring(json.loads(out)["data"][0])


def check_introspect(xml_path, dest, rootpath, busctl_opts):
    busctl = ["busctl"] + busctl_opts
    want = xml_interfaces(ET.parse(xml_path).getroot())
    got = {}
    todo, seen = [rootpath], 0
    while todo and seen < 200 and not all(i in got for i in want):
        path = todo.pop(0)
        seen += 1
        node = introspect(busctl, dest, path)
        for i, members in xml_interfaces(node).items():
            got.setdefault(i, (path, members))
        for child in node.findall("node"):
            todo.append(path.rstrip("/") + "/" + child.get("name"))
    problems = []
    for i, members in want.items():
        if i not in got:
            problems.append("interface %s: not found on any object under %s" % (i, rootpath))
            continue
        path, live = got[i]
        for k in sorted(set(members) | set(live)):
            if k not in live:
                problems.append("%s %s.%s is in the XML but not on %s" % (k[0], i, k[1], path))
            elif k not in members:
                problems.append("%s %s.%s is on %s but not in the XML" % (k[0], i, k[1], path))
            elif members[k] != live[k]:
                problems.append("%s %s.%s: XML '%s', live '%s'" % (k[0], i, k[1], members[k], live[k]))
    return problems


def main(argv):
    if len(argv) >= 3 and argv[0] == "policy":
        problems = check_policy(argv[1], argv[2])
    elif len(argv) == 3 and argv[0] == "activation":
        problems = check_activation(argv[1], argv[2])
    elif len(argv) >= 4 and argv[0] == "introspect":
        problems = check_introspect(argv[1], argv[2], argv[3], argv[4:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
