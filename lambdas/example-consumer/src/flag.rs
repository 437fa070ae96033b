//! The failure flag: the decision it implies for one invocation. Its text format is
//! `breaker_core::example::Flag` (shared with the `breaker` CLI, which writes it):
//!
//! Format (case-insensitive, surrounding whitespace ignored):
//! - `ok`: the downstream is healthy, every message succeeds;
//! - `fail`: the downstream is down, every invocation fails fast;
//! - `slow`: the downstream hangs, every invocation runs past the function timeout;
//! - `percent:N` (N in 0–100, `N%` accepted too): each invocation finds the downstream down with
//!   probability N %;
//! - `partial`: the downstream rejects every order: each message is reported failed in
//!   `batchItemFailures` and the invocation succeeds, so Lambda's `Errors` stays 0 and only the
//!   consumer's `PartialFailures` metric (the EMF line of [`crate::handler::partial_failure_line`])
//!   shows the outage.
//!
//! The decision is per invocation, not per message, because the breaker's alarm counts Lambda's
//! `Errors` metric, which only counts failed *invocations*: with `percent:N` the consumer's error
//! rate is N %, directly comparable with the alarm's error-rate threshold. Per-message partial
//! failures (`batchItemFailures`) come from malformed orders, as in real life, and from `partial`.

use rand::{Rng, RngExt};

pub use breaker_core::example::{Flag, FlagParseError};

/// What the downstream does during one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It answers: well-formed orders are processed (deleted from the queue by the ESM).
    Process,
    /// It is down: the invocation fails, the whole batch is redelivered after the visibility timeout.
    Fail,
    /// It does not answer: the invocation times out.
    Hang,
    /// It answers, rejecting every order: each message is reported failed in `batchItemFailures`.
    RejectEach,
}

/// What a flag makes the downstream do (the flag itself is the core's, this is the consumer's).
pub trait Decide {
    /// The downstream's behaviour for one invocation under this flag; `rng` decides percentages.
    fn decide(&self, rng: &mut impl Rng) -> Outcome;
}

impl Decide for Flag {
    fn decide(&self, rng: &mut impl Rng) -> Outcome {
        match *self {
            Flag::Ok => Outcome::Process,
            Flag::Fail => Outcome::Fail,
            Flag::Slow => Outcome::Hang,
            Flag::Partial => Outcome::RejectEach,
            Flag::Percent(n) => {
                if rng.random_range(0..100u8) < n {
                    Outcome::Fail
                } else {
                    Outcome::Process
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn parses_every_mode_case_insensitively_with_whitespace() {
        assert_eq!(" OK\n".parse::<Flag>(), Ok(Flag::Ok));
        assert_eq!("fail".parse::<Flag>(), Ok(Flag::Fail));
        assert_eq!("Slow".parse::<Flag>(), Ok(Flag::Slow));
        assert_eq!("percent:30".parse::<Flag>(), Ok(Flag::Percent(30)));
        assert_eq!("25%".parse::<Flag>(), Ok(Flag::Percent(25)));
        assert_eq!("percent:100".parse::<Flag>(), Ok(Flag::Percent(100)));
    }

    /// Issue 15: a partial-failure mode, so that the example shows a consumer whose errors Lambda's
    /// `Errors` never sees (every message reported in `batchItemFailures`, the invocation a
    /// success).
    #[test]
    fn partial_rejects_every_message_of_every_invocation() {
        assert_eq!(" Partial ".parse::<Flag>(), Ok(Flag::Partial));
        assert_eq!(Flag::Partial.to_string(), "partial");
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..20 {
            assert_eq!(Flag::Partial.decide(&mut rng), Outcome::RejectEach);
        }
    }

    #[test]
    fn rejects_unknown_words_and_out_of_range_percentages() {
        for bad in [
            "",
            "on",
            "percent:",
            "percent:101",
            "percent:-1",
            "percent:x",
            "150%",
        ] {
            let err = bad.parse::<Flag>().unwrap_err();
            assert_eq!(err.value, bad);
        }
        assert_eq!(
            "nope".parse::<Flag>().unwrap_err().to_string(),
            "invalid failure flag \"nope\": expected ok, fail, slow, partial or percent:N with N in 0-100"
        );
    }

    #[test]
    fn display_round_trips_through_parse() {
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
    }

    #[test]
    fn fixed_modes_decide_the_same_for_every_message() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..50 {
            assert_eq!(Flag::Ok.decide(&mut rng), Outcome::Process);
            assert_eq!(Flag::Fail.decide(&mut rng), Outcome::Fail);
            assert_eq!(Flag::Slow.decide(&mut rng), Outcome::Hang);
            assert_eq!(Flag::Percent(0).decide(&mut rng), Outcome::Process);
            assert_eq!(Flag::Percent(100).decide(&mut rng), Outcome::Fail);
        }
    }

    #[test]
    fn percentage_fails_about_that_share_of_invocations() {
        let mut rng = StdRng::seed_from_u64(7);
        let failed = (0..10_000)
            .filter(|_| Flag::Percent(30).decide(&mut rng) == Outcome::Fail)
            .count();
        assert!(
            (2_800..=3_200).contains(&failed),
            "failed {failed} of 10000 at 30 %"
        );
    }
}
