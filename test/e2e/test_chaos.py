"""The fault campaign's CI subset (issue 14): the fixed schedules of ``chaos.SUBSET``, which
between them inject every fault kind, run against the example stack deployed with the real CDK
CLI on the local cloud; the checker's invariants must hold in every one. The full campaign is
``npm run chaos -- --schedules 50``."""
import os

import pytest

from localcloud import chaos
from localcloud.scenario import lambda_binaries


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("chaos"))
    schedules = [chaos.generate(seed, force) for seed, force in chaos.SUBSET]
    doc = chaos.campaign(schedules, workers=1, out=out, binaries=lambda_binaries())
    doc["out"] = out
    return doc


def test_every_schedule_keeps_every_invariant(campaign):
    bad = {v["seed"]: v.get("violations") for v in campaign["schedules"] if v.get("violations")}
    report = open(os.path.join(campaign["out"], "chaos-report.md")).read()
    assert not bad, report


def test_the_subset_injected_every_fault_kind(campaign):
    fired = campaign["totals"]["fired"]
    assert sorted(k for k in chaos.FAULT_KINDS if k.startswith(("aws-", "kill-", "eb-", "alarm-", "op-")) and not fired.get(k)) == []
    kinds = {k for v in campaign["schedules"] for k in v["kinds"]}
    assert kinds >= set(chaos.FAULT_KINDS)


def test_the_report_counts_messages_faults_and_duplicates(campaign):
    t = campaign["totals"]
    assert t["schedules"] == len(chaos.SUBSET)
    assert t["messages"] > 0 and t["faults"] > 0 and t["recoveries"] >= len(chaos.SUBSET)
    assert t["duplicates"] >= 0
