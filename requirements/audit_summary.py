"""
`make audit`'s verdict on pip-audit's JSON report: pip-audit alone prints "No known
vulnerabilities found" and exits 0 even when the advisory service answered for none of the
packages. Exit 0: no known advisory; 1: advisories found (listed); 2: the service could not be
reached or answered for only some packages; 3: pip-audit failed otherwise.

    python requirements/audit_summary.py REPORT.json STDERR.txt SERVICE
"""
import json, os, re, sys
out, err, service = sys.argv[1:4]
errtext = open(err).read() if os.path.exists(err) else ""
tail = "\n  ".join(line.strip() for line in errtext.strip().splitlines()[-2:])
try:
    data = json.load(open(out))
except (OSError, ValueError):
    data = None
if data is None:
    if re.search("ConnectionError|ProxyError|NameResolution|Max retries exceeded|Timeout|timed out|SSLError|Name or service not known|name resolution|Connection refused", errtext):
        print("make audit: CANNOT REACH THE ADVISORY SERVICE (" + service + ") from this machine; nothing was audited.\n  " + tail)
        sys.exit(2)
    print("make audit: pip-audit failed without a report:\n  " + tail)
    sys.exit(3)
deps = data.get("dependencies", [])
skipped = [d for d in deps if d.get("skip_reason")]
vulnerable = [d for d in deps if d.get("vulns")]
count = sum(len(d["vulns"]) for d in vulnerable)
for d in vulnerable:
    for v in d["vulns"]:
        ids = " ".join([v["id"]] + list(v.get("aliases", [])))
        fixed = ", ".join(v.get("fix_versions", [])) or "no fixed version"
        print("  %s %s: %s (fixed in: %s)" % (d["name"], d["version"], ids, fixed))
audited = len(deps) - len(skipped)
if skipped:
    print("make audit: the advisory service (%s) gave no answer for %d of %d locked packages (%s: %s)" % (service, len(skipped), len(deps), skipped[0]["name"], skipped[0]["skip_reason"]))
if vulnerable:
    print("make audit: VULNERABILITIES FOUND: %d advisories in %d of the %d audited packages" % (count, len(vulnerable), audited))
    sys.exit(1)
if skipped and not audited:
    print("make audit: CANNOT REACH THE ADVISORY SERVICE (" + service + "): it answered for none of the packages, so nothing was audited (pip-audit itself reports this as 'No known vulnerabilities found').")
    sys.exit(2)
if skipped:
    print("make audit: INCOMPLETE: no known advisories in the %d packages audited; the %d others were not audited." % (audited, len(skipped)))
    sys.exit(2)
print("make audit: no known advisories in the %d locked packages (%s)." % (audited, service))
