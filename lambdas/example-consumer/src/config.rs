//! The consumer's configuration, read from the environment in one place.

use std::time::Duration;

/// What the consumer reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `FLAG_PARAMETER_NAME` (required): the SSM parameter holding the failure flag.
    pub flag_parameter_name: String,
    /// `FLAG_CACHE_SECONDS` (default 2, at most 300): how long a read flag value is reused.
    pub flag_cache: Duration,
    /// `DOWNSTREAM_LATENCY_MS` (default 20, at most 10,000): simulated time of one downstream call.
    pub downstream_latency: Duration,
    /// `AWS_LAMBDA_FUNCTION_NAME` (set by Lambda; default `example-consumer`): the `FunctionName`
    /// dimension of the partial-failure metrics.
    pub function_name: String,
}

/// A missing or malformed environment variable, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set or empty.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// A variable is set but not a valid value.
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What a valid value looks like.
        reason: &'static str,
    },
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment in production, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let flag_parameter_name = lookup("FLAG_PARAMETER_NAME")
            .filter(|v| !v.trim().is_empty())
            .ok_or(ConfigError::Missing("FLAG_PARAMETER_NAME"))?;
        let flag_cache = number(&lookup, "FLAG_CACHE_SECONDS", 2, 300, "whole seconds 0-300")?;
        let latency = number(
            &lookup,
            "DOWNSTREAM_LATENCY_MS",
            20,
            10_000,
            "milliseconds 0-10000",
        )?;
        let function_name = lookup("AWS_LAMBDA_FUNCTION_NAME")
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "example-consumer".to_owned());
        Ok(Self {
            function_name,
            flag_parameter_name,
            flag_cache: Duration::from_secs(flag_cache),
            downstream_latency: Duration::from_millis(latency),
        })
    }
}

fn number(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    max: u64,
    reason: &'static str,
) -> Result<u64, ConfigError> {
    match lookup(name) {
        None => Ok(default),
        Some(value) => match value.trim().parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(ConfigError::Invalid {
                name,
                value,
                reason,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_apply_when_only_the_parameter_name_is_set() {
        let config = Config::from_lookup(env(&[("FLAG_PARAMETER_NAME", "/orders/flag")])).unwrap();
        assert_eq!(config.flag_parameter_name, "/orders/flag");
        assert_eq!(config.flag_cache, Duration::from_secs(2));
        assert_eq!(config.downstream_latency, Duration::from_millis(20));
        assert_eq!(config.function_name, "example-consumer");
        let named = Config::from_lookup(env(&[
            ("FLAG_PARAMETER_NAME", "/f"),
            ("AWS_LAMBDA_FUNCTION_NAME", "orders-consumer"),
        ]))
        .unwrap();
        assert_eq!(named.function_name, "orders-consumer");
    }

    #[test]
    fn missing_parameter_name_is_named() {
        let err = Config::from_lookup(env(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable FLAG_PARAMETER_NAME is required"
        );
    }

    #[test]
    fn malformed_cache_seconds_is_named_with_its_value() {
        let err = Config::from_lookup(env(&[
            ("FLAG_PARAMETER_NAME", "/f"),
            ("FLAG_CACHE_SECONDS", "soon"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable FLAG_CACHE_SECONDS=\"soon\" is invalid: whole seconds 0-300"
        );
    }

    #[test]
    fn latency_above_the_cap_is_rejected() {
        let err = Config::from_lookup(env(&[
            ("FLAG_PARAMETER_NAME", "/f"),
            ("DOWNSTREAM_LATENCY_MS", "10001"),
        ]))
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                name: "DOWNSTREAM_LATENCY_MS",
                ..
            }
        ));
    }
}
