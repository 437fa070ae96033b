"""The construct from Python: `app.py` (built wheel, jsii) and `twin.ts` (TypeScript) synthesize the
same queue, consumer and breaker props; their templates must be equal, asset hashes aside.

Run by `npm run test:python` (test/python/run.sh), which builds the wheel and the venv.
"""

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

# Differences that come from the aws-cdk-lib versions, not from jsii: the Python side runs the
# newest aws-cdk-lib on PyPI when the workspace's exact version is not there (2.276.0 was not).
# 2.276.0 writes `"background":"transparent"` on a dashboard's text widget; 2.275.0 does not.
KNOWN_VERSION_DIFFERENCES = [',\\"background\\":\\"transparent\\"', ',"background":"transparent"']


def ts_version() -> str:
    pkg = REPO / "node_modules" / "aws-cdk-lib" / "package.json"
    return json.loads(pkg.read_text())["version"]


def normalise(template: dict, strip_version_differences: bool) -> str:
    text = json.dumps(template, indent=1, sort_keys=True)
    # Asset hashes (S3 keys, asset paths) differ with the asset staging, not with the construct.
    text = re.sub(r"[0-9a-f]{64}", "<hash>", text)
    if strip_version_differences:
        for known in KNOWN_VERSION_DIFFERENCES:
            text = text.replace(known, "")
    return text


def synth_ts(out: Path) -> dict:
    ts_node = REPO / "node_modules" / ".bin" / "ts-node"
    subprocess.run([str(ts_node), "--transpile-only", str(HERE / "twin.ts"), str(out)], cwd=REPO, check=True)
    return json.loads(out.read_text())


def synth_python(out: Path) -> dict:
    subprocess.run([sys.executable, str(HERE / "app.py"), str(out)], cwd=REPO, check=True, env=os.environ)
    return json.loads(out.read_text())


def test_python_app_synthesizes_the_same_template_as_the_typescript_twin(tmp_path: Path) -> None:
    py = synth_python(tmp_path / "python.json")
    ts = synth_ts(tmp_path / "typescript.json")
    breakers = [k for k, r in py["Resources"].items() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    assert len(breakers) == 1, "the Python app made no breaker"
    differ = version("aws-cdk-lib") != ts_version()
    assert normalise(py, differ) == normalise(ts, differ)
