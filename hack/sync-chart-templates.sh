#!/usr/bin/env bash
# Copies deploy/manifests/templates.yaml into the chart's default templates.file value, so the chart
# and the kustomize base ship the same templates (deploy/chart_test.go checks they are equal).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PY'
import re
vals = "charts/jenkins-agent-provisioner/values.yaml"
src = open("deploy/manifests/templates.yaml").read()
s = open(vals).read()
start = s.index("  file: |\n") + len("  file: |\n")
# the block ends at the first line that is not indented by at least 4 spaces (or is blank then top-level)
lines = s[start:].split("\n")
end = 0
for i, l in enumerate(lines):
    if l.strip() == "" or l.startswith("    "):
        continue
    end = i
    break
body = "\n".join(("    " + l) if l else "" for l in src.rstrip("\n").split("\n")) + "\n"
rest = "\n".join(lines[end:])
# keep one blank line before the next top-level key
s = s[:start] + body + "\n" + rest.lstrip("\n")
open(vals, "w").write(s)
PY
