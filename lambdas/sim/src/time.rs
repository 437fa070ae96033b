//! Virtual time: milliseconds since the start of a run.

/// A point in (or a span of) virtual time, in milliseconds.
pub type Millis = u64;

/// One second.
pub const SECOND: Millis = 1_000;
/// One minute.
pub const MINUTE: Millis = 60 * SECOND;
/// One hour.
pub const HOUR: Millis = 60 * MINUTE;
/// One day.
pub const DAY: Millis = 24 * HOUR;

/// Seconds (fractional) of a span, for reports.
pub fn secs(t: Millis) -> f64 {
    t as f64 / SECOND as f64
}
