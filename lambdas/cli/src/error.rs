//! Errors an operator can act on. SDK errors are classified into these in [`crate::aws`].

/// Everything that can go wrong, phrased for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// No region anywhere.
    #[error("no AWS region: pass --region or set AWS_REGION")]
    NoRegion,
    /// The stack does not exist in this account and region.
    #[error(
        "stack {stack} does not exist in region {region} (check --stack-name and --region; deploy it with `npx cdk deploy` in example-stack)"
    )]
    NoSuchStack {
        /// The stack name.
        stack: String,
        /// The region searched.
        region: String,
    },
    /// The stack lacks an output the CLI needs.
    #[error(
        "stack {stack} has no output {output}: is it a stack with an SqsCircuitBreaker (like the example stack), fully deployed?"
    )]
    MissingOutput {
        /// The stack name.
        stack: String,
        /// The missing output key.
        output: &'static str,
    },
    /// A descriptor output that this CLI cannot read.
    #[error("stack {stack}: output {output} is not a valid breaker descriptor: {problem}")]
    InvalidDescriptor {
        /// The stack name.
        stack: String,
        /// The output key.
        output: String,
        /// What is wrong, naming the field.
        problem: String,
    },
    /// The stack has no breaker at all.
    #[error(
        "stack {stack} has no circuit breaker: none of its outputs is a breaker descriptor (description starting \"sqs-circuit-breaker descriptor v1\"), nor does it have the example stack's outputs (check --stack-name; `breaker list --all` finds every breaker)"
    )]
    NoBreaker {
        /// The stack name.
        stack: String,
    },
    /// The stack has several breakers and `--circuit` was not given.
    #[error(
        "stack {stack} has {} circuit breakers ({}): pick one with --circuit NAME (`breaker list` lists them)",
        .names.len(),
        .names.join(", ")
    )]
    SeveralCircuits {
        /// The stack name.
        stack: String,
        /// Its circuits.
        names: Vec<String>,
    },
    /// `--circuit` names no breaker of the stack.
    #[error(
        "stack {stack} has no circuit {circuit}; its circuits: {} (pass one of them to --circuit)",
        .names.join(", ")
    )]
    UnknownCircuit {
        /// The stack name.
        stack: String,
        /// The circuit asked for.
        circuit: String,
        /// Its circuits.
        names: Vec<String>,
    },
    /// `breaker flag` on a stack without the example's failure flag.
    #[error(
        "stack {stack} has no output FlagParameterName: `breaker flag` works with the example stack only (its consumer reads that failure flag)"
    )]
    NoFlag {
        /// The stack name.
        stack: String,
    },
    /// No credentials could be loaded.
    #[error(
        "no AWS credentials found: configure a profile or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (any values work against the local cloud)"
    )]
    NoCredentials,
    /// The credentials were rejected.
    #[error("AWS rejected the credentials ({code}): {message}")]
    BadCredentials {
        /// The error code, e.g. `InvalidClientTokenId`.
        code: String,
        /// What AWS said.
        message: String,
    },
    /// The caller lacks a permission.
    #[error("{operation}: access denied: {message}")]
    AccessDenied {
        /// The API operation.
        operation: &'static str,
        /// What AWS said.
        message: String,
    },
    /// The endpoint could not be reached.
    #[error(
        "cannot reach {endpoint}: {detail} (check --endpoint-url and --region; is the local cloud running?)"
    )]
    Unreachable {
        /// The endpoint (or the region's default endpoint).
        endpoint: String,
        /// The transport error.
        detail: String,
    },
    /// Any other service error, with its code.
    #[error("{operation} failed ({code}): {message}")]
    Service {
        /// The API operation.
        operation: &'static str,
        /// The error code.
        code: String,
        /// What the service said.
        message: String,
    },
    /// The flag parameter holds something the consumer would ignore.
    #[error("{0}")]
    Invalid(String),
}

impl CliError {
    /// A short, stable kind for `--json` error output.
    pub fn kind(&self) -> &'static str {
        match self {
            CliError::NoRegion => "NoRegion",
            CliError::NoSuchStack { .. } => "NoSuchStack",
            CliError::MissingOutput { .. } => "MissingOutput",
            CliError::InvalidDescriptor { .. } => "InvalidDescriptor",
            CliError::NoBreaker { .. } => "NoBreaker",
            CliError::SeveralCircuits { .. } => "SeveralCircuits",
            CliError::UnknownCircuit { .. } => "UnknownCircuit",
            CliError::NoFlag { .. } => "NoFlag",
            CliError::NoCredentials => "NoCredentials",
            CliError::BadCredentials { .. } => "BadCredentials",
            CliError::AccessDenied { .. } => "AccessDenied",
            CliError::Unreachable { .. } => "Unreachable",
            CliError::Service { .. } => "Service",
            CliError::Invalid(_) => "Invalid",
        }
    }
}
