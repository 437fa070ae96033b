//! `breaker`: operator CLI for the SQS circuit breaker. See `breaker --help`.

use std::process::ExitCode;

use breaker_cli::{Cli, Output, run};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli).await {
        Ok(output) => {
            println!("{}", if json { output.json() } else { output.human() });
            ExitCode::SUCCESS
        }
        Err(error) => {
            if json {
                println!("{}", Output::error_json(&error));
            }
            eprintln!("breaker: {error}");
            ExitCode::FAILURE
        }
    }
}
