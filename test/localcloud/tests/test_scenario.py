import json

from localcloud.runtime import InvokeResult
from localcloud.scenario import Ledger, Outage, Scenario


def event(*orders):
    return json.dumps({"Records": [{"messageId": f"m-{o}", "body": json.dumps({"orderId": o})} for o in orders]}).encode()


def test_ledger_counts_successes_per_order_and_ignores_other_functions():
    ledger = Ledger("consumer")
    ledger.observe("consumer", event("a", "b"), InvokeResult(b'{"batchItemFailures": [{"itemIdentifier": "m-b"}]}'), 1.0)
    ledger.observe("consumer", event("b"), InvokeResult(b"{}"), 2.0)
    ledger.observe("consumer", event("a"), InvokeResult(b"null"), 3.0)
    ledger.observe("probe", event("c"), InvokeResult(b"{}"), 3.0)
    assert ledger.processed == {"a": 2, "b": 1}
    assert ledger.attempts["b"] == 2 and "c" not in ledger.attempts
    # an invocation that reported failed items is a failing one (the breaker's trip signal)
    assert ledger.counts() == (3, 1)
    assert ledger.first_error_at == 1.0


def test_ledger_records_function_errors_and_the_first_error_time():
    ledger = Ledger("consumer")
    ledger.observe("consumer", event("a"), InvokeResult(b"{}"), 1.0)
    ledger.observe("consumer", event("b"), InvokeResult(b'{"errorType": "DownstreamUnavailable"}', "DownstreamUnavailable"), 2.0)
    ledger.observe("consumer", event("c"), InvokeResult(b"{}", "Sandbox.Timedout"), 3.0)
    assert ledger.counts() == (3, 2)
    assert ledger.first_error_at == 2.0
    assert ledger.processed == {"a": 1}


def test_ledger_gives_each_fifo_group_its_sequence_in_first_processing_order():
    def fifo_event(*orders):
        return json.dumps({"Records": [{"messageId": f"m-{o}", "body": json.dumps(
            {"orderId": o, "group": o[0], "seq": int(o[1:])})} for o in orders]}).encode()

    ledger = Ledger("consumer")
    ledger.observe("consumer", fifo_event("a1", "b1"), InvokeResult(b"{}"), 1.0)
    ledger.observe("consumer", fifo_event("a3"), InvokeResult(b"{}"), 2.0)  # a2 overtaken
    ledger.observe("consumer", fifo_event("a2"), InvokeResult(b"{}", "DownstreamUnavailable"), 3.0)
    ledger.observe("consumer", fifo_event("a2", "a3"), InvokeResult(b"{}"), 4.0)  # a3 again: not counted twice
    assert ledger.group_order() == {"a": [1, 3, 2], "b": [1]}


def test_drained_waits_for_every_order_sent_before_the_time_and_ignores_later_ones():
    scn = Scenario.__new__(Scenario)  # no cloud: drained_at reads only the ledger and send times
    scn.ledger = Ledger("consumer")
    scn.sent_at = {"a": 1.0, "b": 2.0, "c": 5.0}
    scn.ledger.observe("consumer", event("a"), InvokeResult(b"{}"), 3.0)
    assert scn.drained_at(4.0) is None  # b is sent before 4 and not processed yet
    scn.ledger.observe("consumer", event("b"), InvokeResult(b"{}", "DownstreamUnavailable"), 6.0)
    assert scn.drained_at(4.0) is None  # a failed attempt is not processing
    scn.ledger.observe("consumer", event("b", "a"), InvokeResult(b"{}"), 8.0)
    assert scn.ledger.first_processed() == {"a": 3.0, "b": 8.0}
    assert scn.drained_at(4.0) == 8.0  # c, sent later, does not count
    assert scn.drained_at(1.5) == 3.0
    o = Outage(failing_at=0.5, tripped_at=1.0, healed_at=4.0, closed_at=9.0, probed_at=5.0, drained_at=8.0)
    assert (o.healed_to_drained, o.probe_to_drained) == (4.0, 3.0)
    assert Outage(failing_at=0.5, healed_at=4.0).healed_to_drained is None
