#!/usr/bin/env bash
# npm run test:python: packages the construct for Python (jsii-pacmak, needs `npm run build -w cdk`
# first), installs the wheel into a venv of its own (.venv-python-cdk, with aws-cdk-lib for Python,
# kept between runs) and runs the Python-vs-TypeScript template test.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.venv-python-cdk
# aws-cdk-lib 2.276.0 (the workspace's) is not on PyPI here: the newest there, 2.275.0, stands in
# (the test names the one template difference it makes).
requirements="aws-cdk-lib==2.275.0 constructs==10.8.1 pytest"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$requirements" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q $requirements
  echo "$requirements" > "$venv/.requirements"
fi
npm run package -w cdk
# --no-deps: the wheel asks for aws-cdk-lib>=2.276.0 (our peer dependency), not installable here.
"$venv/bin/pip" install -q --no-deps --force-reinstall cdk/dist/python/sqs_circuit_breaker-*.whl
# The jsii runtime runs the construct in `node`: the workspace's Node 22, not the system's.
JSII_NODE="$(command -v node)" "$venv/bin/python" -m pytest -q -p no:cacheprovider test/python
