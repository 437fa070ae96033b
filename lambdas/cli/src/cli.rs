//! The command line.

use breaker_core::example::Flag;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Operate the SQS circuit breakers of a CloudFormation stack: list them, show a circuit's state,
/// open or close it by hand, enqueue test orders, and flip the example consumer's failure flag.
/// Breakers are found by the descriptor output every `SqsCircuitBreaker` adds (falling back to
/// the example stack's fixed outputs).
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "breaker", version, about, long_about = None)]
pub struct Cli {
    /// CloudFormation stack whose outputs describe the breakers.
    #[arg(
        long,
        global = true,
        env = "BREAKER_STACK_NAME",
        default_value = "SqsCircuitBreakerExample"
    )]
    pub stack_name: String,

    /// The circuit to operate, when the stack has several breakers (see `breaker list`).
    #[arg(long, global = true, env = "BREAKER_CIRCUIT")]
    pub circuit: Option<String>,

    /// AWS region (default: from AWS_REGION / the AWS profile).
    #[arg(long, global = true, env = "AWS_REGION")]
    pub region: Option<String>,

    /// Endpoint for every AWS call, e.g. the local cloud's `http://localhost:5000`.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,

    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// The breakers of `--stack-name` (or, with `--all`, of every stack in the account/region).
    List {
        /// Every stack of the account and region, not only `--stack-name`.
        #[arg(long)]
        all: bool,
    },
    /// Circuit phase, event-source mapping, alarm, running recovery and its step, queue depths.
    Status,
    /// Open the circuit now: start a recovery with `{"trigger":"manual"}` (no-op if one runs).
    Open,
    /// Close the circuit now: hand the running recovery over to a manual-close execution that
    /// skips backoff and probing, re-jitters the backlog and re-enables the consumer gradually
    /// (see lambdas/CONTRACT.md, "Manual triggers").
    Close,
    /// Set the example consumer's failure flag (seen by the consumer within ~2 s); the example
    /// stack only (it needs its `FlagParameterName` output).
    Flag(FlagArgs),
    /// Enqueue N test orders on the orders queue.
    Send {
        /// How many orders (1 to 100000).
        #[arg(value_parser = clap::value_parser!(u32).range(1..=100_000))]
        count: u32,
    },
}

/// `breaker flag ok|fail|slow|partial` or `breaker flag --percent N`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
#[group(required = true, multiple = false)]
pub struct FlagArgs {
    /// The downstream's behaviour: every call succeeds, fails, hangs past the timeout, or rejects
    /// every message on its own (reported in batchItemFailures, the invocation succeeds).
    #[arg(value_enum)]
    pub mode: Option<FlagMode>,

    /// Fail this percentage (0 to 100) of consumer invocations.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub percent: Option<u8>,
}

/// Fixed flag modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlagMode {
    /// Healthy downstream.
    Ok,
    /// Every invocation fails.
    Fail,
    /// Every invocation times out.
    Slow,
    /// Every message is reported failed (`batchItemFailures`); the invocation succeeds.
    Partial,
}

impl FlagArgs {
    /// The flag value these arguments ask for.
    pub fn flag(&self) -> Flag {
        match (self.mode, self.percent) {
            (Some(FlagMode::Ok), _) => Flag::Ok,
            (Some(FlagMode::Fail), _) => Flag::Fail,
            (Some(FlagMode::Slow), _) => Flag::Slow,
            (Some(FlagMode::Partial), _) => Flag::Partial,
            (None, Some(n)) => Flag::Percent(n),
            // clap's required group makes this unreachable; `ok` is the harmless answer.
            (None, None) => Flag::Ok,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("breaker").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn status_takes_global_options_before_or_after_the_subcommand() {
        let cli = parse(&[
            "--stack-name",
            "Orders",
            "status",
            "--json",
            "--region",
            "eu-west-1",
        ])
        .unwrap();
        assert_eq!(cli.command, Command::Status);
        assert_eq!(cli.stack_name, "Orders");
        assert_eq!(cli.region.as_deref(), Some("eu-west-1"));
        assert!(cli.json);
    }

    #[test]
    fn circuit_is_global_and_optional() {
        let cli = parse(&["status", "--circuit", "payments"]).unwrap();
        assert_eq!(cli.circuit.as_deref(), Some("payments"));
        let cli = parse(&["--circuit", "orders", "open"]).unwrap();
        assert_eq!(
            (cli.circuit.as_deref(), cli.command),
            (Some("orders"), Command::Open)
        );
        assert_eq!(parse(&["status"]).unwrap().circuit, None);
    }

    #[test]
    fn list_takes_all() {
        assert_eq!(
            parse(&["list"]).unwrap().command,
            Command::List { all: false }
        );
        assert_eq!(
            parse(&["list", "--all", "--json"]).unwrap().command,
            Command::List { all: true }
        );
    }

    #[test]
    fn endpoint_url_is_taken_as_given() {
        let cli = parse(&["status", "--endpoint-url", "http://localhost:5400"]).unwrap();
        assert_eq!(cli.endpoint_url.as_deref(), Some("http://localhost:5400"));
    }

    #[test]
    fn flag_accepts_a_mode_or_a_percentage() {
        let flag = |args: &[&str]| match parse(args).unwrap().command {
            Command::Flag(f) => f.flag(),
            other => panic!("parsed {other:?}"),
        };
        assert_eq!(flag(&["flag", "ok"]), Flag::Ok);
        assert_eq!(flag(&["flag", "fail"]), Flag::Fail);
        assert_eq!(flag(&["flag", "slow"]), Flag::Slow);
        assert_eq!(flag(&["flag", "partial"]), Flag::Partial);
        assert_eq!(flag(&["flag", "--percent", "35"]), Flag::Percent(35));
    }

    #[test]
    fn flag_needs_exactly_one_of_mode_and_percent() {
        assert_eq!(
            parse(&["flag"]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            parse(&["flag", "fail", "--percent", "5"])
                .unwrap_err()
                .kind(),
            ErrorKind::ArgumentConflict
        );
    }

    #[test]
    fn flag_rejects_unknown_modes_and_percentages_above_100() {
        assert_eq!(
            parse(&["flag", "broken"]).unwrap_err().kind(),
            ErrorKind::InvalidValue
        );
        let err = parse(&["flag", "--percent", "101"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
        assert!(err.to_string().contains("101 is not in 0..=100"), "{err}");
    }

    #[test]
    fn send_needs_a_positive_count() {
        assert_eq!(
            parse(&["send", "25"]).unwrap().command,
            Command::Send { count: 25 }
        );
        assert_eq!(
            parse(&["send", "0"]).unwrap_err().kind(),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            parse(&["send"]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
    }
}
