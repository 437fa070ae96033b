//! The example consumer's wire formats, shared by the consumer (`lambdas/example-consumer`),
//! which reads them, and the `breaker` CLI, which writes them: one source of truth.
//!
//! - [`Flag`]: the failure flag's text (an SSM String parameter the example consumer reads).
//!   Format (case-insensitive, surrounding whitespace ignored): `ok`, `fail`, `slow`,
//!   `percent:N` (N in 0–100, `N%` accepted too) and `partial`; [`Flag`]'s `Display` writes the
//!   canonical form, which `FromStr` reads back. What each value makes the consumer do is the
//!   consumer's (`example_consumer::flag`).
//! - [`Order`]: the body of a test order (`breaker send`).
//!
//! Nothing here is part of the breaker itself: these are the example's, kept in the core so
//! that the CLI does not depend on the example consumer's crate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The downstream's simulated health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// Every call succeeds.
    Ok,
    /// Every call fails.
    Fail,
    /// Every call hangs past the function's deadline.
    Slow,
    /// Each call fails with this probability, in percent (0–100).
    Percent(u8),
    /// Every order is rejected on its own: all messages reported failed, the invocation succeeds.
    Partial,
}

/// A flag value that is not one of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid failure flag {value:?}: expected ok, fail, slow, partial or percent:N with N in 0-100"
)]
pub struct FlagParseError {
    /// The rejected text.
    pub value: String,
}

impl FromStr for Flag {
    type Err = FlagParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim().to_ascii_lowercase();
        let err = || FlagParseError {
            value: s.to_owned(),
        };
        match text.as_str() {
            "ok" => Ok(Flag::Ok),
            "fail" => Ok(Flag::Fail),
            "slow" => Ok(Flag::Slow),
            "partial" => Ok(Flag::Partial),
            _ => {
                let number = text
                    .strip_prefix("percent:")
                    .or_else(|| text.strip_suffix('%'))
                    .ok_or_else(err)?;
                match number.trim().parse::<u8>() {
                    Ok(n) if n <= 100 => Ok(Flag::Percent(n)),
                    _ => Err(err()),
                }
            }
        }
    }
}

impl fmt::Display for Flag {
    /// The canonical text form, which [`Flag::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flag::Ok => f.write_str("ok"),
            Flag::Fail => f.write_str("fail"),
            Flag::Slow => f.write_str("slow"),
            Flag::Percent(n) => write!(f, "percent:{n}"),
            Flag::Partial => f.write_str("partial"),
        }
    }
}

/// An order as `breaker send` enqueues it. Only `orderId` is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Unique order id.
    pub order_id: String,
    /// Amount in cents.
    #[serde(default)]
    pub amount_cents: u64,
    /// When the order was created, epoch milliseconds.
    #[serde(default)]
    pub created_at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_forms_parse_case_insensitively() {
        assert_eq!(" OK\n".parse::<Flag>(), Ok(Flag::Ok));
        assert_eq!("fail".parse::<Flag>(), Ok(Flag::Fail));
        assert_eq!("Slow".parse::<Flag>(), Ok(Flag::Slow));
        assert_eq!(" Partial ".parse::<Flag>(), Ok(Flag::Partial));
        assert_eq!("percent:30".parse::<Flag>(), Ok(Flag::Percent(30)));
        assert_eq!("25%".parse::<Flag>(), Ok(Flag::Percent(25)));
        assert_eq!("percent:100".parse::<Flag>(), Ok(Flag::Percent(100)));
    }

    #[test]
    fn invalid_flags_are_named() {
        for bad in ["", "percent:101", "percent:-1", "percent:", "maybe", "50"] {
            assert_eq!(bad.parse::<Flag>().unwrap_err().value, bad);
        }
    }

    #[test]
    fn the_canonical_form_reads_back() {
        for flag in [
            Flag::Ok,
            Flag::Fail,
            Flag::Slow,
            Flag::Partial,
            Flag::Percent(0),
            Flag::Percent(42),
        ] {
            assert_eq!(flag.to_string().parse::<Flag>(), Ok(flag));
        }
        assert_eq!(Flag::Percent(7).to_string(), "percent:7");
    }

    #[test]
    fn an_order_needs_only_its_id() {
        let order: Order = serde_json::from_str(r#"{"orderId":"o-1"}"#).unwrap();
        assert_eq!((order.order_id.as_str(), order.amount_cents), ("o-1", 0));
        let body = serde_json::to_value(Order {
            order_id: "o-2".into(),
            amount_cents: 125,
            created_at_ms: 7,
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"orderId": "o-2", "amountCents": 125, "createdAtMs": 7})
        );
    }
}
