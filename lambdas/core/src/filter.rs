//! The event-source mapping's `FilterCriteria`, applied to an SQS record as Lambda applies it, so
//! that the probe hands the consumer only messages the mapping would deliver.
//!
//! The rules (Lambda developer guide, "Lambda event filtering"; EventBridge user guide, content
//! filtering, arrays, null values; the documented cases are the table in
//! `lambdas/core/fixtures/sqs-filter-cases.json`, which the local cloud's poller also runs):
//! - `FilterCriteria.Filters` holds up to 5 (10 with a quota increase) patterns, OR-ed: a record
//!   is delivered when it matches at least one; no filter delivers every record. A record that
//!   matches none is discarded — for SQS, "Lambda automatically removes the message from the
//!   queue".
//! - A pattern is a JSON object. Its fields are AND-ed; a field's value is a nested object (match
//!   inside) or a list of rules, OR-ed. `"$or": [ {...}, {...} ]` ORs whole sub-patterns.
//! - Rules: a string, number, boolean or `null` (exact: characters without case folding; numbers by
//!   their representation, so 300 and 300.0 differ), `""` (empty), `{"equals-ignore-case": s}`,
//!   `{"prefix": s}` and `{"suffix": s}` (each also `{"equals-ignore-case": s}` inside),
//!   `{"anything-but": v | [v, ...]}` (strings only or numbers only; a missing field matches
//!   nothing), `{"numeric": [op, n]}` or `[op, n, op, n]` (`=`, `<`, `<=`, `>`, `>=`; JSON
//!   numbers only), `{"exists": true | false}` (leaves only: an object counts as absent).
//!   When the record's value is a list, the field matches when any element does.
//! - The record is the one the consumer gets ([`crate::sqs_event`]): `messageId`, `attributes`,
//!   `messageAttributes`, ... and `body`. A `body` pattern that is an object applies to the body
//!   parsed as JSON; a `body` pattern that is a list applies to the body as a plain string. A
//!   body whose format differs from its pattern's (plain text against an object pattern, JSON
//!   against a list) is dropped, as Lambda drops it; a pattern without `body` ignores the body.
//!   (The SQS page of the guide says SQS mappings support filtering on `body` only; metadata
//!   fields are matched against the record as delivered.)
//!
//! Anything else is refused ([`FilterError::Invalid`]): operators Lambda's mappings do not
//! support (`wildcard`, `cidr`, `anything-but` with `prefix`/`suffix`/`equals-ignore-case`,
//! none of which EventBridge Pipes — which filters "the same way" as a mapping — supports), the
//! fields the poller adds (`eventSource`, `eventSourceARN`, `awsRegion`), malformed JSON. The probe
//! then fails without touching the queue: guessing could delete messages the mapping would
//! deliver.

use serde_json::{Map, Number, Value};

/// Record fields the poller adds, which a pattern cannot use (EventBridge Pipes filtering: "you
/// can filter based on the fields sent by the source API, and not on fields added by the
/// polling operation").
pub const POLLER_FIELDS: [&str; 3] = ["eventSource", "eventSourceARN", "awsRegion"];

/// The mapping's filter could not be applied; the probe changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A pattern the matcher does not accept.
    #[error(
        "filter pattern {index} of the event-source mapping's FilterCriteria cannot be applied \
         ({reason}): {pattern}; the probe hands the consumer only messages the mapping would \
         deliver, so it leaves the queue untouched"
    )]
    Invalid {
        /// Position of the pattern in `FilterCriteria.Filters` (from 0).
        index: usize,
        /// The pattern as the mapping reports it.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `GetEventSourceMapping` reported a `FilterCriteriaError` instead of the patterns (e.g. they
    /// are encrypted with a KMS key the breaker may not decrypt with).
    #[error(
        "the event-source mapping's FilterCriteria cannot be read ({0}); the probe hands the \
         consumer only messages the mapping would deliver, so it leaves the queue untouched \
         (grant the probe kms:Decrypt on the mapping's KMSKeyArn)"
    )]
    Unreadable(String),
}

/// A parsed `FilterCriteria`: no pattern means every record is delivered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilterCriteria {
    patterns: Vec<Object>,
}

impl FilterCriteria {
    /// Parse the mapping's `Filters[].Pattern` strings (in order).
    pub fn parse(patterns: &[String]) -> Result<Self, FilterError> {
        let patterns = patterns
            .iter()
            .enumerate()
            .map(|(index, pattern)| {
                parse_pattern(pattern).map_err(|reason| FilterError::Invalid {
                    index,
                    pattern: pattern.clone(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// True when there is no filter (every record is delivered).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the mapping delivers `record` (an SQS record as the consumer gets it, `body` a
    /// string).
    pub fn matches(&self, record: &Value) -> bool {
        self.is_empty() || self.patterns.iter().any(|p| p.matches_record(record))
    }
}

/// A pattern object: fields AND-ed, each `$or` group satisfied by one of its branches.
#[derive(Debug, Clone, PartialEq)]
struct Object {
    fields: Vec<(String, Field)>,
    ors: Vec<Vec<Object>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Nested(Object),
    Rules(Vec<Rule>),
}

#[derive(Debug, Clone, PartialEq)]
enum Rule {
    /// A string, number, boolean or null, compared exactly.
    Exact(Value),
    EqualsIgnoreCase(String),
    Prefix {
        text: String,
        ignore_case: bool,
    },
    Suffix {
        text: String,
        ignore_case: bool,
    },
    AnythingBut(Vec<Value>),
    Numeric(Vec<(Comparison, f64)>),
    Exists(bool),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Comparison {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

fn parse_pattern(pattern: &str) -> Result<Object, String> {
    let value: Value = serde_json::from_str(pattern).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err("a pattern must be a JSON object".into());
    };
    if let Some(field) = POLLER_FIELDS.iter().find(|f| map.contains_key(**f)) {
        return Err(format!(
            "{field} is added by the poller and cannot be filtered on"
        ));
    }
    parse_object(&map, "")
}

fn parse_object(map: &Map<String, Value>, path: &str) -> Result<Object, String> {
    let mut object = Object {
        fields: Vec::new(),
        ors: Vec::new(),
    };
    for (key, value) in map {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        if key == "$or" {
            let branches = value
                .as_array()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| format!("{here} must be a non-empty list of objects"))?;
            let branches = branches
                .iter()
                .map(|b| match b {
                    Value::Object(m) => parse_object(m, path),
                    _ => Err(format!("{here} must be a non-empty list of objects")),
                })
                .collect::<Result<_, _>>()?;
            object.ors.push(branches);
            continue;
        }
        let field = match value {
            Value::Object(m) => Field::Nested(parse_object(m, &here)?),
            Value::Array(rules) if rules.is_empty() => {
                return Err(format!("{here}: an empty list matches nothing"));
            }
            Value::Array(rules) => Field::Rules(
                rules
                    .iter()
                    .map(|r| parse_rule(r).map_err(|e| format!("{here}: {e}")))
                    .collect::<Result<_, _>>()?,
            ),
            other => {
                return Err(format!(
                    "{here}: {other} must be a list of rules or an object"
                ));
            }
        };
        object.fields.push((key.clone(), field));
    }
    Ok(object)
}

fn parse_rule(rule: &Value) -> Result<Rule, String> {
    let map = match rule {
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => {
            return Ok(Rule::Exact(rule.clone()));
        }
        Value::Array(_) => return Err(format!("{rule} is a list inside a list")),
        Value::Object(map) => map,
    };
    let mut entries = map.iter();
    let (Some((operator, operand)), None) = (entries.next(), entries.next()) else {
        return Err(format!("{rule} must hold exactly one operator"));
    };
    let string = |v: &Value| {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{operator} needs a string, not {v}"))
    };
    // `prefix`/`suffix`: a string, or `{"equals-ignore-case": string}`.
    let affix = |v: &Value| -> Result<(String, bool), String> {
        match v {
            Value::Object(m) if m.len() == 1 && m.contains_key("equals-ignore-case") => {
                Ok((string(&m["equals-ignore-case"])?, true))
            }
            _ => Ok((string(v)?, false)),
        }
    };
    match operator.as_str() {
        "equals-ignore-case" => Ok(Rule::EqualsIgnoreCase(string(operand)?)),
        "prefix" => affix(operand).map(|(text, ignore_case)| Rule::Prefix { text, ignore_case }),
        "suffix" => affix(operand).map(|(text, ignore_case)| Rule::Suffix { text, ignore_case }),
        "exists" => operand
            .as_bool()
            .map(Rule::Exists)
            .ok_or_else(|| format!("exists needs true or false, not {operand}")),
        "anything-but" => parse_anything_but(operand),
        "numeric" => parse_numeric(operand),
        "wildcard" | "cidr" => Err(format!(
            "{operator} is not among the operators of Lambda event filtering"
        )),
        other => Err(format!("unknown operator {other}")),
    }
}

fn parse_anything_but(operand: &Value) -> Result<Rule, String> {
    let values = match operand {
        Value::String(_) | Value::Number(_) => vec![operand.clone()],
        Value::Array(values) if !values.is_empty() => {
            let all_strings = values.iter().all(Value::is_string);
            let all_numbers = values.iter().all(Value::is_number);
            if !all_strings && !all_numbers {
                return Err(format!(
                    "anything-but takes only strings or only numbers, not {operand}"
                ));
            }
            values.clone()
        }
        Value::Object(_) => {
            return Err(format!(
                "anything-but with {operand} is not supported by event-source mapping filters"
            ));
        }
        _ => {
            return Err(format!(
                "anything-but needs a string, a number or a list, not {operand}"
            ));
        }
    };
    Ok(Rule::AnythingBut(values))
}

fn parse_numeric(operand: &Value) -> Result<Rule, String> {
    let parts = operand
        .as_array()
        .filter(|p| p.len() == 2 || p.len() == 4)
        .ok_or_else(|| format!("numeric needs [op, n] or [op, n, op, n], not {operand}"))?;
    let comparisons = parts
        .chunks(2)
        .map(|pair| {
            let op = match pair[0].as_str() {
                Some("=") => Comparison::Eq,
                Some("<") => Comparison::Lt,
                Some("<=") => Comparison::Le,
                Some(">") => Comparison::Gt,
                Some(">=") => Comparison::Ge,
                _ => return Err(format!("numeric: unknown comparison {}", pair[0])),
            };
            let n = pair[1]
                .as_f64()
                .ok_or_else(|| format!("numeric: {} is not a number", pair[1]))?;
            Ok((op, n))
        })
        .collect::<Result<Vec<_>, String>>()?;
    if comparisons.len() == 2 && comparisons.iter().any(|(op, _)| *op == Comparison::Eq) {
        return Err(format!("numeric: = cannot be part of a range: {operand}"));
    }
    Ok(Rule::Numeric(comparisons))
}

impl Object {
    /// Match the top of an SQS record, where `body` follows Lambda's body-format rules.
    fn matches_record(&self, record: &Value) -> bool {
        let fields = self.fields.iter().all(|(key, field)| {
            if key != "body" {
                return field.matches(record.get(key));
            }
            let Some(body) = record.get("body").and_then(Value::as_str) else {
                return field.matches(None);
            };
            let parsed = serde_json::from_str::<Value>(body).ok();
            match (field, parsed) {
                (Field::Nested(object), Some(json)) => object.matches(Some(&json)),
                (Field::Rules(rules), None) => {
                    matches_rules(rules, Some(&Value::String(body.to_owned())))
                }
                // The body's format differs from its pattern's: Lambda drops the message.
                _ => false,
            }
        });
        fields
            && self
                .ors
                .iter()
                .all(|branches| branches.iter().any(|b| b.matches_record(record)))
    }

    /// Match a nested object (`None`: absent, which only `exists: false` rules accept).
    fn matches(&self, value: Option<&Value>) -> bool {
        match value {
            Some(Value::Array(items)) => items.iter().any(|item| self.matches(Some(item))),
            Some(Value::Object(map)) => self.matches_map(Some(map)),
            _ => self.matches_map(None),
        }
    }

    fn matches_map(&self, map: Option<&Map<String, Value>>) -> bool {
        let get = |key: &str| map.and_then(|m| m.get(key));
        self.fields
            .iter()
            .all(|(key, field)| field.matches(get(key)))
            && self
                .ors
                .iter()
                .all(|branches| branches.iter().any(|b| b.matches_map(map)))
    }
}

impl Field {
    fn matches(&self, value: Option<&Value>) -> bool {
        match self {
            Self::Nested(object) => object.matches(value),
            Self::Rules(rules) => matches_rules(rules, value),
        }
    }
}

/// A list of rules against a field's value: the leaves it holds (itself, or the elements of a
/// list; objects are not leaves) and any rule that accepts one of them (`exists` looks at
/// whether there is a leaf at all).
fn matches_rules(rules: &[Rule], value: Option<&Value>) -> bool {
    let leaves: Vec<&Value> = match value {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().filter(|v| is_leaf(v)).collect(),
        Some(v) if is_leaf(v) => vec![v],
        Some(_) => Vec::new(),
    };
    rules.iter().any(|rule| match rule {
        Rule::Exists(wanted) => leaves.is_empty() != *wanted,
        rule => leaves.iter().any(|leaf| rule.accepts(leaf)),
    })
}

fn is_leaf(v: &Value) -> bool {
    !v.is_object() && !v.is_array()
}

impl Rule {
    fn accepts(&self, leaf: &Value) -> bool {
        let text = leaf.as_str();
        match self {
            Self::Exact(expected) => exact(expected, leaf),
            Self::EqualsIgnoreCase(s) => text.is_some_and(|t| t.to_lowercase() == s.to_lowercase()),
            Self::Prefix {
                text: p,
                ignore_case,
            } => text.is_some_and(|t| {
                if *ignore_case {
                    t.to_lowercase().starts_with(&p.to_lowercase())
                } else {
                    t.starts_with(p.as_str())
                }
            }),
            Self::Suffix {
                text: s,
                ignore_case,
            } => text.is_some_and(|t| {
                if *ignore_case {
                    t.to_lowercase().ends_with(&s.to_lowercase())
                } else {
                    t.ends_with(s.as_str())
                }
            }),
            Self::AnythingBut(excluded) => !excluded.iter().any(|e| exact(e, leaf)),
            Self::Numeric(comparisons) => leaf.as_f64().is_some_and(|n| {
                comparisons.iter().all(|(op, bound)| match op {
                    Comparison::Eq => n == *bound,
                    Comparison::Lt => n < *bound,
                    Comparison::Le => n <= *bound,
                    Comparison::Gt => n > *bound,
                    Comparison::Ge => n >= *bound,
                })
            }),
            Self::Exists(_) => unreachable!("exists is judged on the field, not a leaf"),
        }
    }
}

/// Exact equality of a rule value and a leaf: same type, same characters; numbers by their
/// representation (Lambda: "300, 300.0, and 3.0e2 are not considered equal").
fn exact(expected: &Value, leaf: &Value) -> bool {
    match (expected, leaf) {
        (Value::Number(a), Value::Number(b)) => number_text(a) == number_text(b),
        (a, b) => a == b,
    }
}

fn number_text(n: &Number) -> String {
    n.to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The documented rule cases, shared with the local cloud's poller.
    const CASES: &str = include_str!("../fixtures/sqs-filter-cases.json");

    fn cases() -> Value {
        serde_json::from_str(CASES).unwrap()
    }

    /// An SQS record as the consumer gets it, with the case's body and attributes.
    fn record(case: &Value) -> Value {
        json!({
            "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
            "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
            "body": case["body"],
            "attributes": case.get("attributes").cloned().unwrap_or_else(|| json!({
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1545082649183",
                "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                "ApproximateFirstReceiveTimestamp": "1545082649185"
            })),
            "messageAttributes": case.get("messageAttributes").cloned().unwrap_or_else(|| json!({})),
            "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-west-2:123456789012:my-queue",
            "awsRegion": "us-west-2"
        })
    }

    #[test]
    fn every_documented_rule_case_delivers_or_drops_the_message_as_lambda_does() {
        let cases = cases();
        let matching = cases["matching"].as_array().unwrap();
        assert!(matching.len() > 50, "the table is read");
        let mut wrong = Vec::new();
        for case in matching {
            let patterns: Vec<String> = case["filters"]
                .as_array()
                .unwrap()
                .iter()
                .map(Value::to_string)
                .collect();
            let name = case["case"].as_str().unwrap();
            let criteria =
                FilterCriteria::parse(&patterns).unwrap_or_else(|e| panic!("{name}: {e}"));
            let expected = case["matches"].as_bool().unwrap();
            if criteria.matches(&record(case)) != expected {
                wrong.push(format!("{name} (expected {expected})"));
            }
        }
        assert!(wrong.is_empty(), "cases the matcher gets wrong: {wrong:#?}");
    }

    #[test]
    fn every_pattern_the_matcher_cannot_apply_is_refused_naming_the_pattern() {
        for case in cases()["invalid"].as_array().unwrap() {
            let name = case["case"].as_str().unwrap();
            let patterns: Vec<String> = case["patterns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_owned())
                .collect();
            match FilterCriteria::parse(&patterns) {
                Ok(parsed) => panic!("{name}: accepted as {parsed:?}"),
                Err(e @ FilterError::Invalid { .. }) => {
                    let FilterError::Invalid { index, pattern, .. } = &e else {
                        unreachable!()
                    };
                    assert_eq!(pattern, &patterns[*index], "{name}");
                    let text = e.to_string();
                    assert!(
                        text.contains(&format!("filter pattern {index} "))
                            && text.contains(pattern.as_str()),
                        "{name}: {text}"
                    );
                }
                Err(other) => panic!("{name}: {other}"),
            }
        }
    }

    #[test]
    fn the_reason_says_what_is_wrong() {
        let reason = |p: &str| match FilterCriteria::parse(&[p.to_owned()]) {
            Err(FilterError::Invalid { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert!(reason("{ body").starts_with("not valid JSON"));
        assert_eq!(
            reason(r#"{"body":{"kind":"a"}}"#),
            r#"body.kind: "a" must be a list of rules or an object"#
        );
        assert_eq!(
            reason(r#"{"body":{"f":[{"wildcard":"*.png"}]}}"#),
            "body.f: wildcard is not among the operators of Lambda event filtering"
        );
        assert_eq!(
            reason(r#"{"eventSourceARN":["x"]}"#),
            "eventSourceARN is added by the poller and cannot be filtered on"
        );
    }

    #[test]
    fn no_filter_criteria_delivers_everything() {
        let none = FilterCriteria::parse(&[]).unwrap();
        assert!(none.is_empty());
        assert!(none.matches(&json!({ "body": "x" })));
        assert_eq!(none, FilterCriteria::default());
    }
}
