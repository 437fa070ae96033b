//! `sqs-circuit-breaker-telemetry`: the external extension's process. Registers with the
//! Extensions API (`INVOKE`, `SHUTDOWN`), subscribes to the Telemetry API for `platform` events
//! with the minimum buffering, prints the EMF lines of every batch (see the library's docs), and
//! on `SHUTDOWN` waits (bounded) for the last invocation's record, then exits 0.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use breaker_extension::{
    Config, Progress, TELEMETRY_TYPES, buffering, emf_lines, runtime_done_ids, shutdown_budget,
};
use lambda_extension::{
    Error, Extension, LambdaEvent, LambdaTelemetry, NextEvent, SharedService, service_fn,
};
use tokio::sync::Notify;

/// State shared by the events processor and the telemetry listener.
struct Shared {
    function_name: String,
    progress: Mutex<Progress>,
    /// Woken after every telemetry batch.
    batch_seen: Notify,
    /// Set once `SHUTDOWN` has been handled: `main` returns.
    finished: Notify,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = Config::from_env()?;
    let shared = Arc::new(Shared {
        function_name: config.function_name,
        progress: Mutex::new(Progress::default()),
        batch_seen: Notify::new(),
        finished: Notify::new(),
    });

    let on_event = {
        let shared = shared.clone();
        service_fn(move |event: LambdaEvent| on_event(shared.clone(), event))
    };
    let on_batch = {
        let shared = shared.clone();
        SharedService::new(service_fn(move |batch: Vec<LambdaTelemetry>| {
            let shared = shared.clone();
            async move { on_batch(&shared, &batch) }
        }))
    };
    let extension = Extension::new()
        .with_events(&["INVOKE", "SHUTDOWN"])
        .with_events_processor(on_event)
        .with_telemetry_types(TELEMETRY_TYPES)
        .with_telemetry_buffering(buffering())
        .with_telemetry_port_number(config.telemetry_port)
        .with_telemetry_processor(on_batch);

    // The crate's run loop asks for the next event again after `SHUTDOWN`; the process ends
    // here instead once the shutdown handling is done.
    tokio::select! {
        res = extension.run() => res,
        () = shared.finished.notified() => Ok(()),
    }
}

/// Prints the batch's EMF lines, then records which invocations are done.
fn on_batch(shared: &Shared, batch: &[LambdaTelemetry]) -> Result<(), Error> {
    let lines = emf_lines(batch, &shared.function_name);
    if !lines.is_empty() {
        let mut out = std::io::stdout().lock();
        for line in &lines {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    shared
        .progress
        .lock()
        .expect("progress lock")
        .done(runtime_done_ids(batch));
    shared.batch_seen.notify_waiters();
    Ok(())
}

/// `INVOKE`: note the request id. `SHUTDOWN`: wait for the last invocation's record, then end.
async fn on_event(shared: Arc<Shared>, event: LambdaEvent) -> Result<(), Error> {
    match event.next {
        NextEvent::Invoke(invoke) => {
            shared
                .progress
                .lock()
                .expect("progress lock")
                .invoked(&invoke.request_id);
        }
        NextEvent::Shutdown(shutdown) => {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            wait_for_last_invoke(&shared, shutdown_budget(shutdown.deadline_ms, now_ms)).await;
            shared.finished.notify_one();
        }
    }
    Ok(())
}

/// Returns when the last invocation's `runtimeDone` has been printed, or after `budget`.
async fn wait_for_last_invoke(shared: &Shared, budget: Duration) {
    let deadline = tokio::time::Instant::now() + budget;
    loop {
        let notified = shared.batch_seen.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if shared
            .progress
            .lock()
            .expect("progress lock")
            .last_invoke_done()
        {
            return;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return;
        }
    }
}
