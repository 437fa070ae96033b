//! `sqs-circuit-breaker-telemetry`: the external extension's process. Registers with the
//! Extensions API (`INVOKE`, `SHUTDOWN`) through the `lambda-extension` crate, binds its telemetry
//! listener on `0.0.0.0:<port>`, subscribes to the Telemetry API for `platform` events with the
//! minimum buffering (destination `http://sandbox.localdomain:<port>`), prints the EMF lines of
//! every batch (see the library's docs), and on `SHUTDOWN` waits (bounded) for the last
//! invocation's record, then exits 0.
//!
//! The listener and the subscription are this crate's, not `lambda-extension`'s: the crate's
//! listener parses a batch into its closed enum of record types and answers 400 to the whole
//! batch when one record has a type it does not know (SnapStart's `platform.restore*` today,
//! any type Lambda adds tomorrow), which would lose that batch's `runtimeDone` records. It also
//! binds after subscribing and re-binds between connections; this listener is bound before the
//! subscription and accepts connections for as long as the process lives.

use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use breaker_extension::{
    Config, Progress, emf_lines, runtime_dones, shutdown_budget, subscription,
};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use lambda_extension::{Error, Extension, LambdaEvent, NextEvent, service_fn};
use lambda_runtime_api_client::body::Body;
use tokio::net::TcpListener;
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
    let registered = Extension::new()
        .with_events(&["INVOKE", "SHUTDOWN"])
        .with_events_processor(on_event)
        .register()
        .await?;

    // Still in the Init phase (no `next` yet): listen, then subscribe.
    let listener = TcpListener::bind(("0.0.0.0", config.telemetry_port)).await?;
    tokio::spawn(serve_telemetry(listener, shared.clone()));
    subscribe(&registered.extension_id, config.telemetry_port).await?;

    // The crate's run loop asks for the next event again after `SHUTDOWN`; the process ends
    // here instead once the shutdown handling is done.
    tokio::select! {
        res = registered.run() => res,
        () = shared.finished.notified() => Ok(()),
    }
}

/// `PUT /2022-07-01/telemetry` with the extension's identifier.
async fn subscribe(extension_id: &str, port: u16) -> Result<(), Error> {
    let req = lambda_runtime_api_client::build_request()
        .method(Method::PUT)
        .uri("/2022-07-01/telemetry")
        .header("Lambda-Extension-Identifier", extension_id)
        .header("Content-Type", "application/json")
        .body(Body::from(subscription(port).to_string()))?;
    let res = lambda_runtime_api_client::Client::builder()
        .build()?
        .call(req)
        .await?;
    if !res.status().is_success() {
        let body = res.into_body().collect().await?.to_bytes();
        return Err(format!(
            "Telemetry API subscription refused: {}",
            String::from_utf8_lossy(&body)
        )
        .into());
    }
    Ok(())
}

/// Accepts the Telemetry API's connections (HTTP/1.1, keep-alive) for as long as the process
/// lives; every request is one batch.
async fn serve_telemetry(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(on_request(&shared, req).await) }
            });
            // A connection that breaks mid-request loses nothing: Lambda retries the batch.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

/// One batch: 200 once its lines are printed; 400 when the body is not a JSON array.
async fn on_request(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let status = match req.into_body().collect().await {
        Ok(body) => match runtime_dones(&body.to_bytes()) {
            Some(records) => match on_batch(shared, &records) {
                Ok(()) => StatusCode::OK,
                Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            None => StatusCode::BAD_REQUEST,
        },
        Err(_) => StatusCode::BAD_REQUEST,
    };
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = status;
    res
}

/// Prints the batch's EMF lines, then records which invocations are done.
fn on_batch(shared: &Shared, records: &[breaker_extension::RuntimeDone]) -> std::io::Result<()> {
    let lines = emf_lines(records, &shared.function_name);
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
        .done(records.iter().map(|r| r.request_id.as_str()));
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
