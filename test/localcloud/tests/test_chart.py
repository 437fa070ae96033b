from localcloud.chart import render


def sample(t, esm, alarm, step, queue, inv, err):
    return {"t": t, "esm": esm, "alarm": alarm, "step": step, "queue": queue, "inflight": 0, "dlq": 0,
            "invocations": inv, "errors": err, "concurrency": 5, "processed": 0, "running": 0}


def test_chart_is_self_contained_and_shows_states_series_and_summary():
    samples = [sample(0, "Enabled", "OK", "-", 10, 0, 0), sample(10, "Disabled", "ALARM", "Back Off", 50, 40, 30),
               sample(20, "Enabled", "OK", "-", 0, 80, 30)]
    page = render(samples, [(5.0, "flag fail")], {"sent": 90, "lost": 0}, "run")
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert page.count("<polyline") == 5
    assert "Disabled" in page and "ALARM" in page and "Back Off" in page
    assert "flag fail" in page and "<td>lost</td><td>0</td>" in page


def test_chart_needs_two_samples():
    import pytest
    with pytest.raises(ValueError):
        render([sample(0, "Enabled", "OK", "-", 0, 0, 0)], [], {}, "run")
