//! `bootstrap`: one binary for every breaker function; Lambda's `_HANDLER` picks the handler.

fn main() {
    eprintln!("sqs-circuit-breaker bootstrap: handlers not wired yet");
    std::process::exit(1);
}
