import json
import os
import sys
import threading

import pytest

from localcloud import stalls
from localcloud.runtime import FunctionSpec, RuntimeHost

FAKE = os.path.join(os.path.dirname(__file__), "fixtures", "fake_lambda.py")


def spec(handler, **kw):
    base = dict(name=f"fn-{handler}", arn=f"arn:aws:lambda:us-east-1:123456789012:function:fn-{handler}",
                command=(sys.executable, FAKE), handler=handler, timeout_s=5.0, concurrency=2)
    base.update(kw)
    return FunctionSpec(**base)


@pytest.fixture
def host():
    metrics = []
    h = RuntimeHost({"PATH": os.environ["PATH"], "AWS_REGION": "us-east-1"},
                    metrics=lambda fn, d: metrics.append((fn, d))).start()
    h.recorded = metrics
    yield h
    h.stop()


def test_invoke_returns_the_handler_response_and_reuses_the_environment(host):
    s = spec("echo")
    assert json.loads(host.invoke(s, b'{"a": 1}').payload) == {"a": 1}
    assert json.loads(host.invoke(s, b'{"a": 2}').payload) == {"a": 2}
    assert host.running_environments("fn-echo") == 1


def test_environment_gets_handler_function_env_and_runtime_api(host):
    s = spec("env", env=(("CIRCUIT_NAME", "orders"),))
    env = json.loads(host.invoke(s, b"{}").payload)
    assert env["_HANDLER"] == "env"
    assert env["CIRCUIT_NAME"] == "orders"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith("http://127.0.0.1:")


def test_handler_error_is_reported_with_its_error_type_and_counted(host):
    r = host.invoke(spec("fail"), b"{}")
    assert r.error_type == "Boom"
    names = {n: v for _, d in host.recorded for n, v, _ in d}
    assert names["Errors"] == 1 and names["Invocations"] == 1


def test_invocation_longer_than_timeout_fails_and_kills_the_environment(host):
    r = host.invoke(spec("sleep", timeout_s=0.5), b'{"seconds": 5}')
    assert r.error_type == "Sandbox.Timedout"
    assert host.running_environments("fn-sleep") == 0


def test_process_exit_during_invocation_is_a_runtime_exit_error(host):
    r = host.invoke(spec("crash"), b"{}")
    assert r.error_type == "Runtime.ExitError"


def test_invokes_beyond_concurrency_are_throttled(host):
    s = spec("sleep", concurrency=1)
    first = threading.Thread(target=host.invoke, args=(s, b'{"seconds": 1}'))
    first.start()
    import time
    for _ in range(100):
        if host.running_environments("fn-sleep"):
            break
        time.sleep(0.01)
    r = host.invoke(s, b'{"seconds": 0}')
    first.join()
    assert r.throttled
    assert any(n == "Throttles" for _, d in host.recorded for n, _, _ in d)


def test_a_machine_stopped_mid_invocation_does_not_time_the_function_out(host):
    """The timeout counts running time (stalls.py): the process tree stopped for 4 s during a 1 s
    invocation with a 2 s timeout, as a paused CI machine stops it, and the invocation still
    succeeds when it runs again. Measured on the wall clock it would have timed out: 4.3 s > 2 s."""
    s = spec("sleep", timeout_s=2.0)
    assert host.invoke(s, b'{"seconds": 0}').error_type is None  # the environment is warm
    pause = stalls.pause_tree(os.getpid(), seconds=4.0, after=0.3)
    r = host.invoke(s, b'{"seconds": 1}')
    pause.wait()
    assert r.error_type is None, r.payload
    assert host.running_environments("fn-sleep") == 1
