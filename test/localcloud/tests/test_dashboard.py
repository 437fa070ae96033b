"""The construct's dashboard drawn from a local-cloud run (`dashboard.py`): the renderer lays the
body's widgets out on CloudWatch's grid, draws each metric's saved datapoints, the horizontal
annotations and "no data"; the save step reads the body back with GetDashboard and each widget's
data with GetMetricData; PutDashboard refuses what CloudWatch refuses."""
import json
import math
import re
import time
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from localcloud import stalls
from localcloud import dashboard
from localcloud.cloud import LocalCloud
from localcloud.dashboard import COL_W, MARGIN, ROW_H, main, metric_rows, render, save

ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:"


def graph(x, y, width, height, title, metrics, **props):
    return {"type": "metric", "x": x, "y": y, "width": width, "height": height,
            "properties": {"view": "timeSeries", "title": title, "region": "us-east-1", "metrics": metrics, **props}}


def series(label, points, y_axis="left"):
    return {"id": label, "label": label, "yAxis": y_axis, "color": None, "stat": "Sum", "period": 60, "points": points}


def run_of(widgets, data, start=1_700_000_000.0, end=1_700_000_180.0):
    return {"title": "t", "dashboardName": "board", "start": start, "end": end,
            "body": {"widgets": widgets}, "data": data}


def frames(page):
    """(x, y, width, height) of every widget's frame."""
    return [tuple(float(v) for v in m) for m in
            re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" class="frame"/>', page)]


def test_widgets_are_laid_out_by_the_bodys_grid_coordinates():
    widgets = [{"type": "text", "x": 0, "y": 0, "width": 24, "height": 1, "properties": {"markdown": "### circuit `orders`"}},
               graph(0, 1, 12, 6, "left", []), graph(12, 1, 12, 6, "right", []), graph(8, 7, 8, 6, "middle", [])]
    page = render(run_of(widgets, [{"series": [], "alarms": []}] * 4))
    cell = lambda x, y, w, h: (round(MARGIN + COL_W * x + 4, 1), round(MARGIN + ROW_H * y + 4, 1),  # noqa: E731
                               round(COL_W * w - 8, 1), round(ROW_H * h - 8, 1))
    assert frames(page) == [cell(0, 1, 12, 6), cell(12, 1, 12, 6), cell(8, 7, 8, 6)]
    # the text widget at the top, over the full width, its markdown as text
    assert (f'<foreignObject x="{MARGIN + 4:.1f}" y="{MARGIN + 4:.1f}" width="{COL_W * 24 - 8:.1f}" '
            f'height="{ROW_H - 8:.1f}">') in page
    assert "circuit <code>orders</code>" in page
    # the drawing is as tall as the lowest widget reaches (13 rows)
    assert f'height="{int(13 * ROW_H + 2 * MARGIN)}"' in page


def test_each_metric_is_drawn_from_its_saved_datapoints_with_its_label_and_axis():
    w = graph(0, 0, 24, 6, "Queue", [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "q", {"label": "visible"}],
                                     ["AWS/SQS", "NumberOfMessagesSent", "QueueName", "q", {"label": "sent", "yAxis": "right"}]])
    data = {"series": [series("visible", [[0, 0.0], [60, 40.0], [120, 10.0]]),
                       series("sent", [[0, 5.0], [60, 7.0]], "right")], "alarms": []}
    page = render(run_of([w], [data]))
    lines = re.findall(r'<polyline points="([^"]+)"', page)
    assert len(lines) == 2
    visible = [tuple(map(float, p.split(","))) for p in lines[0].split()]
    assert len(visible) == 3
    xs, ys = [p[0] for p in visible], [p[1] for p in visible]
    assert xs[1] - xs[0] == pytest.approx(xs[2] - xs[1], abs=0.2)  # equal time steps, equal distances
    assert ys[1] < ys[2] < ys[0]  # 40 highest, then 10, then 0 at the bottom
    assert ">visible</text>" in page and ">sent</text>" in page
    # the right axis has its own scale (up to a round number above 7), the left one above 40
    assert 'text-anchor="start">10</text>' in page and 'text-anchor="end">50</text>' in page
    # the time axis reads the run's clock
    assert ">22:14:00</text>" in page and ">22:15:00</text>" in page and ">22:13:20</text>" not in page


def test_the_alarm_threshold_annotation_is_a_labelled_horizontal_line_at_its_value():
    w = graph(0, 0, 12, 6, "Consumer error rate vs. alarm threshold", [[{"expression": "e / i", "label": "error rate"}]],
              annotations={"horizontal": [{"label": "alarm threshold", "value": 0.5, "yAxis": "left"}]},
              yAxis={"left": {"min": 0, "max": 1}})
    page = render(run_of([w], [{"series": [series("error rate", [[0, 0.0], [10, 1.0], [20, 0.0]])], "alarms": []}]))
    line = re.search(r'<line x1="[\d.]+" x2="[\d.]+" y1="([\d.]+)" y2="([\d.]+)" stroke="#d13212" class="annotation"/>', page)
    assert line is not None and line.group(1) == line.group(2)
    points = [tuple(map(float, p.split(","))) for p in re.search(r'<polyline points="([^"]+)"', page).group(1).split()]
    zero, one = points[0][1], points[1][1]
    assert float(line.group(1)) == pytest.approx((zero + one) / 2, abs=0.2)  # 0.5: half-way between 0 and 1
    assert ">alarm threshold 0.5</text>" in page


def test_a_metric_without_data_says_no_data_instead_of_disappearing():
    empty = graph(0, 0, 12, 6, "Recoveries", [["AWS/States", "ExecutionsStarted", {"label": "started"}],
                                              ["AWS/States", "ExecutionsFailed", {"label": "failed"}]])
    half = graph(12, 0, 12, 6, "Events", [["N", "Opens", {"label": "opens"}], ["N", "Closes", {"label": "closes"}]])
    single = {"type": "metric", "x": 0, "y": 6, "width": 6, "height": 3,
              "properties": {"view": "singleValue", "title": "now", "metrics": [["N", "Depth"]]}}
    data = [{"series": [series("started", []), series("failed", [])], "alarms": []},
            {"series": [series("opens", [[0, 1.0], [60, 0.0]]), series("closes", [])], "alarms": []},
            {"series": [series("Depth", [])], "alarms": []}]
    page = render(run_of([empty, half, single], data))
    assert ">started (no data)</text>" in page and ">failed (no data)</text>" in page
    assert ">closes (no data)</text>" in page and ">opens</text>" in page
    # the empty graph and the empty single value say it in their plot area; the half-empty graph does not
    assert page.count('class="nodata" text-anchor="middle">no data</text>') == 2
    assert page.count("<polyline") == 1


def test_alarm_status_and_single_value_widgets_show_the_latest_state_and_value():
    alarms = {"type": "alarm", "x": 0, "y": 0, "width": 24, "height": 2,
              "properties": {"title": "Alarms", "alarms": [ARN + "a", ARN + "b"]}}
    single = {"type": "metric", "x": 0, "y": 2, "width": 6, "height": 3,
              "properties": {"view": "singleValue", "title": "depth", "metrics": [["N", "Depth"]]}}
    data = [{"series": [], "alarms": [{"arn": ARN + "a", "name": "a", "state": "ALARM"},
                                      {"arn": ARN + "b", "name": "b", "state": "OK"}]},
            {"series": [series("Depth", [[0, 3.0], [60, 12.0]])], "alarms": []}]
    page = render(run_of([alarms, single], data))
    assert 'fill="#d13212">ALARM</text>' in page and 'fill="#1d8102">OK</text>' in page
    assert 'class="big" text-anchor="middle">12</text>' in page


def test_metric_rows_read_the_console_format_with_the_widgets_defaults():
    rows = metric_rows({"period": 60, "stat": "Sum", "metrics": [
        [{"expression": "FILL(s, REPEAT)", "label": "state"}],
        ["NS", "CircuitState", "Circuit", "c1", {"id": "s", "stat": "Maximum", "visible": False}],
        [".", "Opens", ".", ".", {"period": 10}],
        ["AWS/SQS", "NumberOfMessagesSent"]]})
    assert rows[0]["expression"] == "FILL(s, REPEAT)" and rows[0]["label"] == "state" and rows[0]["id"] == "m1"
    assert rows[1]["metric"] == {"Namespace": "NS", "MetricName": "CircuitState", "Dimensions": [{"Name": "Circuit", "Value": "c1"}]}
    assert (rows[1]["id"], rows[1]["stat"], rows[1]["period"], rows[1]["visible"]) == ("s", "Maximum", 60, False)
    assert rows[2]["metric"]["Namespace"] == "NS" and rows[2]["metric"]["Dimensions"] == [{"Name": "Circuit", "Value": "c1"}]
    assert (rows[2]["stat"], rows[2]["period"], rows[2]["label"]) == ("Sum", 10, "Opens")
    assert metric_rows({"metrics": [["AWS/SQS", "X"]]})[0]["period"] == 300  # CloudWatch's defaults
    assert metric_rows({"metrics": [["AWS/SQS", "X"]]})[0]["stat"] == "Average"


def test_main_renders_a_saved_run_and_names_the_demo_when_there_is_none(tmp_path, capsys):
    assert main([str(tmp_path / "missing.json")]) == 2
    assert "npm run demo" in capsys.readouterr().err
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run_of([graph(0, 0, 6, 6, "g", [])], [{"series": [], "alarms": []}])))
    assert main([str(path)]) == 0
    assert "<svg" in (tmp_path / "run.html").read_text()


# -- against the local cloud -----------------------------------------------------------------
@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    c = LocalCloud(work_dir=str(tmp_path_factory.mktemp("cloud")), alarm_tick_s=3600).start()
    c.service_metrics.stop()  # before its first look: the test below drives its own publisher
    yield c
    c.stop()


def test_save_reads_the_body_back_and_each_metrics_datapoints_per_period(cloud, tmp_path):
    cw = cloud.client("cloudwatch")
    period = 60
    start = math.floor(time.time() / period) * period - 3 * period  # three whole periods ago
    dims = [{"Name": "Circuit", "Value": "c1"}]
    for offset, metric, value in [(5, "Opens", 1), (20, "Opens", 1), (65, "Closes", 1),
                                  (10, "CircuitState", 2), (130, "CircuitState", 0)]:
        cw.put_metric_data(Namespace="Test/Dash", MetricData=[{
            "MetricName": metric, "Dimensions": dims, "Value": value, "Unit": "Count",
            "Timestamp": datetime.fromtimestamp(start + offset, tz=timezone.utc)}])
    cw.put_metric_alarm(AlarmName="opens", Namespace="Test/Dash", MetricName="Opens", Dimensions=dims, Statistic="Sum",
                        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold")
    cw.set_alarm_state(AlarmName="opens", StateValue="ALARM", StateReason="test")
    alarm_arn = cw.describe_alarms(AlarmNames=["opens"])["MetricAlarms"][0]["AlarmArn"]
    body = {"widgets": [
        {"type": "text", "x": 0, "y": 0, "width": 24, "height": 1, "properties": {"markdown": "# test"}},
        graph(0, 1, 12, 6, "events", [["Test/Dash", "Opens", "Circuit", "c1", {"label": "opens", "stat": "Sum"}],
                                      ["Test/Dash", "Closes", "Circuit", "c1", {"label": "closes", "stat": "Sum"}],
                                      ["Test/Dash", "StuckOpens", "Circuit", "c1", {"label": "stuck", "stat": "Sum"}]],
              period=60, annotations={"horizontal": [{"label": "alarm threshold", "value": 1}]}),
        graph(12, 1, 12, 6, "state", [[{"expression": "FILL(s, REPEAT)", "label": "circuit state"}],
                                      ["Test/Dash", "CircuitState", "Circuit", "c1", {"id": "s", "stat": "Maximum", "visible": False}]],
              period=60),
        {"type": "alarm", "x": 0, "y": 7, "width": 24, "height": 2, "properties": {"title": "alarms", "alarms": [alarm_arn]}},
        {"type": "metric", "x": 0, "y": 9, "width": 12, "height": 6,  # CloudWatch's alarm graph (cdk AlarmWidget)
         "properties": {"view": "timeSeries", "title": "alarm graph", "annotations": {"alarms": [alarm_arn]}}},
    ]}
    cw.put_dashboard(DashboardName="test-board", DashboardBody=json.dumps(body))
    run = save(cw, "test-board", start, start + 3 * period, str(tmp_path / "run.json"), "title")
    assert json.loads((tmp_path / "run.json").read_text()) == run
    assert run["body"] == body and run["dashboardName"] == "test-board"
    events, state, alarms = run["data"][1], run["data"][2], run["data"][3]
    by_label = {s["label"]: s["points"] for s in events["series"]}
    assert by_label == {"opens": [[0, 2.0]], "closes": [[60, 1.0]], "stuck": []}
    # the math row over the hidden metric: FILL(s, REPEAT) holds the state through the period without a datapoint
    assert [s["label"] for s in state["series"]] == ["circuit state"]
    assert state["series"][0]["points"] == [[0, 2.0], [60, 2.0], [120, 0.0]]
    assert alarms["alarms"] == [{"arn": alarm_arn, "name": "opens", "state": "ALARM"}]
    # the alarm graph: the alarm's own metric and statistic in its period, its threshold as a line
    alarm_graph = run["data"][4]
    assert [(s["label"], s["points"]) for s in alarm_graph["series"]] == [("Opens", [[0, 2.0]])]
    assert alarm_graph["annotations"] == [{"label": "opens", "value": 1.0}]
    assert ">opens 1</text>" in render(run)
    assert "no data" not in render(run).split("stuck")[0][-200:]  # rendered without raising
    assert ">stuck (no data)</text>" in render(run)


@pytest.mark.parametrize("name, body, problem", [
    ("ok name", {"widgets": []}, "DashboardName"),
    ("board", {"widget": []}, "/widgets"),
    ("board", {"widgets": [{"type": "metric", "width": 25, "properties": {}}]}, "/widgets/0/width"),
    ("board", {"widgets": [{"type": "chart", "properties": {}}]}, "/widgets/0/type"),
    ("board", {"widgets": [{"type": "text", "x": 24, "properties": {"markdown": "m"}}]}, "/widgets/0/x"),
    ("board", {"widgets": [{"type": "text", "height": 0, "properties": {"markdown": "m"}}]}, "/widgets/0/height"),
    ("board", {"widgets": [{"type": "text"}]}, "/widgets/0/properties"),
])
def test_put_dashboard_refuses_what_cloudwatch_refuses(cloud, name, body, problem):
    cw = cloud.client("cloudwatch")
    with pytest.raises(ClientError) as err:
        cw.put_dashboard(DashboardName=name, DashboardBody=json.dumps(body))
    assert err.value.response["Error"]["Code"] == "InvalidParameterInput"
    assert problem in err.value.response["Error"]["Message"]


def test_put_dashboard_accepts_a_valid_body(cloud):
    cw = cloud.client("cloudwatch")
    body = {"widgets": [{"type": "text", "x": 0, "y": 0, "width": 24, "height": 1, "properties": {"markdown": "m"}}]}
    cw.put_dashboard(DashboardName="valid_board-1", DashboardBody=json.dumps(body))
    assert json.loads(cw.get_dashboard(DashboardName="valid_board-1")["DashboardBody"]) == body


def test_time_labels_are_round_clock_times_that_fit_the_widget():
    assert dashboard.time_step(180, 1000) == 15 and dashboard.time_step(180, 500) == 30
    assert dashboard.time_step(3600, 500) == 600


# -- the service metrics the dashboard graphs (servicemetrics.py) ----------------------------
def test_the_local_cloud_publishes_sqs_depth_and_age_once_a_minute_and_step_functions_executions(cloud):
    from localcloud.servicemetrics import ServiceMetrics

    sqs, cw, sfn = cloud.client("sqs"), cloud.client("cloudwatch"), cloud.client("stepfunctions")
    url = sqs.create_queue(QueueName="dash-q")["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=300)
    clock = [time.time()]
    publisher = ServiceMetrics(cloud, now=lambda: clock[0])
    publisher.publish(cw, sfn)  # the same minute: no SQS sample yet
    clock[0] += 120  # a later minute: one sample, at that minute
    role = cloud.client("iam").create_role(RoleName="sfn-dash", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    machine = sfn.create_state_machine(name="dash-sm", roleArn=role, definition=json.dumps(
        {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    sfn.start_execution(stateMachineArn=machine, name="one", input="{}")
    deadline = stalls.Deadline(20)
    while sfn.list_executions(stateMachineArn=machine)["executions"][0]["status"] == "RUNNING":
        assert not deadline.expired()
        time.sleep(0.2)
    publisher.publish(cw, sfn)
    publisher.publish(cw, sfn)  # nothing twice
    at = clock[0] // 60 * 60

    def values(namespace, name, dims, start, end, stat="Sum"):
        got = cw.get_metric_statistics(Namespace=namespace, MetricName=name, Dimensions=dims, Statistics=[stat],
                                       StartTime=datetime.fromtimestamp(start, tz=timezone.utc),
                                       EndTime=datetime.fromtimestamp(end, tz=timezone.utc), Period=60)
        return sorted((p["Timestamp"].timestamp(), p[stat]) for p in got["Datapoints"])

    q = [{"Name": "QueueName", "Value": "dash-q"}]
    assert values("AWS/SQS", "ApproximateNumberOfMessagesVisible", q, at - 120, at + 60) == [(at, 2.0)]
    assert values("AWS/SQS", "ApproximateNumberOfMessagesNotVisible", q, at - 120, at + 60) == [(at, 1.0)]
    (stamp, age), = values("AWS/SQS", "ApproximateAgeOfOldestMessage", q, at - 120, at + 60, "Maximum")
    assert stamp == at and 60 <= age <= 121  # seconds from the first send to that minute
    m = [{"Name": "StateMachineArn", "Value": machine}]
    now = time.time()
    assert sum(v for _, v in values("AWS/States", "ExecutionsStarted", m, now - 300, now + 60)) == 1
    assert sum(v for _, v in values("AWS/States", "ExecutionsSucceeded", m, now - 300, now + 60)) == 1
    assert values("AWS/States", "ExecutionsFailed", m, now - 300, now + 60) == []
