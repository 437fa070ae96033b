from localcloud.chart import main, recovery_intervals, render, save_run


def sample(t, esm, alarm, step, queue, inv, err):
    return {"t": t, "esm": esm, "alarm": alarm, "step": step, "queue": queue, "inflight": 0, "dlq": 0,
            "invocations": inv, "errors": err, "concurrency": 5, "processed": 0, "running": 0}


def test_chart_is_self_contained_and_shows_states_series_and_summary():
    samples = [sample(0, "Enabled", "OK", "-", 10, 0, 0), sample(10, "Disabled", "ALARM", "Back Off", 50, 40, 30),
               sample(20, "Enabled", "OK", "-", 0, 80, 30)]
    page = render(samples, [(5.0, "flag fail")], {"sent": 90, "lost": 0}, "run")
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert page.count("<polyline") == 6  # queue, inflight, dlq; invocations, errors; MaximumConcurrency
    assert "Disabled" in page and "ALARM" in page and "Back Off" in page
    assert "flag fail" in page and "<td>lost</td><td>0</td>" in page


def test_chart_needs_two_samples():
    import pytest
    with pytest.raises(ValueError):
        render([sample(0, "Enabled", "OK", "-", 0, 0, 0)], [], {}, "run")


def test_chart_draws_the_mappings_concurrency_with_gaps_where_it_has_none():
    samples = [sample(0, "Enabled", "OK", "-", 0, 0, 0), sample(10, "Disabled", "ALARM", "Back Off", 5, 2, 2),
               sample(20, "Enabled", "OK", "-", 0, 4, 2), sample(30, "Enabled", "OK", "-", 0, 6, 2)]
    samples[1]["concurrency"] = None  # a mapping without ScalingConfig
    samples[2]["concurrency"], samples[3]["concurrency"] = 2, 10
    page = render(samples, [], {}, "run")
    assert "MaximumConcurrency" in page
    # 3 queue series + 2 consumer series + the concurrency line in two stretches around the gap
    assert page.count("<polyline") == 7
    assert '<text x="64" y="430" class="axis" text-anchor="end">10</text>' in page  # its scale: the highest level


def test_recovery_band_shows_every_state_from_the_history_and_each_ramp_step_with_its_level():
    samples = [sample(0, "Enabled", "OK", "-", 0, 0, 0), sample(10, "Disabled", "ALARM", "Back Off", 5, 2, 2),
               sample(20, "Enabled", "OK", "Hold Ramp Step", 0, 4, 2), sample(30, "Enabled", "OK", "Hold Ramp Step", 0, 6, 2),
               sample(40, "Enabled", "OK", "-", 0, 8, 2)]
    samples[2]["concurrency"], samples[3]["concurrency"], samples[4]["concurrency"] = 2, 5, 10
    steps = [(8.0, 9.0, "Open Circuit"), (9.0, 12.0, "Back Off"), (12.0, 12.4, "Probe Consumer"),
             (12.4, 13.0, "Re-jitter Slice"), (13.0, 13.5, "Ramp Up Consumer"), (13.5, 25.0, "Hold Ramp Step"),
             (25.0, 25.5, "Ramp Up Consumer"), (25.5, 35.0, "Hold Ramp Step"), (35.0, 36.0, "Close Circuit")]
    page = render(samples, [], {}, "run", steps)
    # a state shorter than the sampling interval is there (no sample saw "Probe Consumer")
    for name in ("Open Circuit", "Probe Consumer", "Re-jitter Slice", "Close Circuit"):
        assert f"<title>{name} " in page
    # each hold of the ramp names the level the mapping had during it
    assert "<title>Hold Ramp Step @2 13.5-25.0 s</title>" in page
    assert "<title>Hold Ramp Step @5 25.5-35.0 s</title>" in page
    assert "Ramp Up Consumer @" not in page


def test_recovery_intervals_take_the_level_seen_inside_the_hold_else_just_before_it():
    samples = [{"t": 0, "concurrency": 10}, {"t": 5, "concurrency": 2}, {"t": 20, "concurrency": 4}]
    assert recovery_intervals([(6, 8, "Hold Ramp Step")], samples) == [(6, 8, "Hold Ramp Step @2")]
    assert recovery_intervals([(6, 21, "Hold Ramp Step")], samples) == [(6, 21, "Hold Ramp Step @4")]
    assert recovery_intervals([(1, 2, "Back Off")], samples) == [(1, 2, "Back Off")]


def test_a_saved_run_renders_again_and_the_command_names_what_is_missing(tmp_path, capsys):
    samples = [sample(0, "Enabled", "OK", "-", 10, 0, 0), sample(10, "Disabled", "ALARM", "Back Off", 50, 40, 30)]
    run = tmp_path / "run.json"
    save_run(str(run), samples, [(5.0, "flag fail")], {"lost": 0}, "saved run", [(6.0, 10.0, "Back Off")])
    assert main([str(run), "--html", str(tmp_path / "out.html")]) == 0
    page = (tmp_path / "out.html").read_text()
    assert "saved run" in page and "<title>Back Off 6.0-10.0 s</title>" in page and "flag fail" in page
    assert main([str(tmp_path / "none.json")]) == 2
    assert "run `npm run demo` first" in capsys.readouterr().err
