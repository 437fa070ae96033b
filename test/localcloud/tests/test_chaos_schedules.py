"""The fault campaign's schedules (chaos.py): a seed names one schedule whatever the interpreter's
hash seed, and the CI subset forces every fault kind."""
import json
import os
import subprocess
import sys

from localcloud import chaos

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def schedules_under(hash_seed: str) -> str:
    code = ("import json, sys; sys.path.insert(0, %r); from localcloud import chaos; "
            "print(json.dumps([chaos.generate(s, dict(chaos.SUBSET).get(s, ())).__dict__ for s in [*range(1, 31), 101, 102, 103, 104]], default=str))"
            % ROOT)
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_a_seed_replays_the_same_schedule_under_any_hash_seed():
    assert schedules_under("1") == schedules_under("2") == schedules_under("3")


def test_the_subset_forces_every_fault_kind_and_each_schedule_heals_and_stops_its_faults():
    forced = {k for _, force in chaos.SUBSET for k in force}
    assert forced == set(chaos.FAULT_KINDS)
    for seed, force in chaos.SUBSET:
        s = chaos.generate(seed, force)
        assert set(force) <= set(s.kinds)
        assert s.actions[-1][1:] == ["flag", "ok"] and s.actions[-1][0] == s.end_at
        assert all(r["active_until"] <= s.faults_until for r in s.rules if r["kind"] != "kill")
        assert json.dumps(s.__dict__, default=str)
