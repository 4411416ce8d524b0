#!/usr/bin/env bash
# Prints the key paths an upstream chart's default values define, for the fixtures the
# installer's upstream-values test checks our values files against
# (crates/installer/tests/fixtures/upstream-values-keys/<chart>.txt):
#
#   scripts/upstream-value-keys.sh CHART > crates/installer/tests/fixtures/upstream-values-keys/NAME.txt
#
# CHART is a chart directory or a packaged .tgz (with its subcharts, as `helm dependency
# build` or the registry leaves them). The first line names the chart and its version; then
# one key path a line, sorted: keys joined by '.', a '.' inside a key written '\.'; a map
# that is empty by default ends in ' {}' and a null default in ' ~' (anything may be set
# below either); lists and scalars are leaves. A subchart's keys are under its alias (or
# name), its `global` keys under the top-level `global`. Derived data only: no values, no
# comments. Needs python3 with PyYAML.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 CHART_DIR_OR_TGZ" >&2
  exit 2
fi
exec python3 - "$1" <<'PY'
import os, sys, tarfile, tempfile
import yaml

def open_chart(path, tmp):
    """A chart directory for `path` (a .tgz is extracted into `tmp`)."""
    if os.path.isdir(path):
        return path
    with tarfile.open(path) as tgz:
        tgz.extractall(tmp, filter="data")
    tops = [d for d in os.listdir(tmp) if os.path.isdir(os.path.join(tmp, d))]
    if len(tops) != 1:
        sys.exit(f"{path}: expected one chart directory inside, found {tops}")
    return os.path.join(tmp, tops[0])

def load(path):
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return yaml.safe_load(f) or {}

def subchart(chart_dir, name, tmp):
    """The directory of dependency `name` under charts/ (directory or .tgz)."""
    base = os.path.join(chart_dir, "charts")
    if not os.path.isdir(base):
        return None
    for entry in sorted(os.listdir(base)):
        full = os.path.join(base, entry)
        if os.path.isdir(full) and load(os.path.join(full, "Chart.yaml")).get("name") == name:
            return full
        if entry.endswith(".tgz") and entry.startswith(name + "-"):
            opened = open_chart(full, tempfile.mkdtemp(dir=tmp))
            if load(os.path.join(opened, "Chart.yaml")).get("name") == name:
                return opened
    return None

def keys(value, prefix, out):
    if isinstance(value, dict):
        if not value:
            out.add(prefix + " {}")
        for k, v in value.items():
            part = str(k).replace(".", "\\.")
            keys(v, f"{prefix}.{part}" if prefix else part, out)
    elif value is None:
        out.add(prefix + " ~")
    else:
        out.add(prefix)

def chart_keys(chart_dir, prefix, out, tmp, missing):
    meta = load(os.path.join(chart_dir, "Chart.yaml"))
    values = load(os.path.join(chart_dir, "values.yaml"))
    if prefix:
        glob = values.pop("global", None)
        if glob is not None:
            keys(glob, "global", out)
    keys(values, prefix, out)
    for dep in meta.get("dependencies") or []:
        name = dep["name"]
        at = dep.get("alias") or name
        sub = subchart(chart_dir, name, tmp)
        if sub is None:
            missing.append(name)
            continue
        chart_keys(sub, f"{prefix}.{at}" if prefix else at, out, tmp, missing)
    return meta

with tempfile.TemporaryDirectory() as tmp:
    chart = open_chart(sys.argv[1], tmp)
    out, missing = set(), []
    meta = chart_keys(chart, "", out, tmp, missing)
    if missing:
        sys.exit(f"{sys.argv[1]}: subcharts missing under charts/: {', '.join(missing)}")
    print(f"# {meta['name']} {meta['version']}: key paths of the default values "
          f"(scripts/upstream-value-keys.sh)")
    for k in sorted(out):
        print(k)
PY
