//! The one rule-breaking value every service's domain returns: `ValidationError` names the field
//! (its path in the request, such as `items[0].quantity`) and the rule it broke, and becomes a
//! 422 `invalid_field` body through [`ClientError`]. The rules that several services share live
//! here too, so that a name means the same length in auth, devices and the tracker.

use crate::http::ClientError;

/// A value that breaks a rule: `field` is the path the caller sent it under, `rule` says what
/// it must be, in words that follow the field (`quantity must be between 1 and 99`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {rule}")]
pub struct ValidationError {
    pub field: String,
    pub rule: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            rule: rule.into(),
        }
    }

    /// The same rule, under the path of the value that contains the field: `role` becomes
    /// `roles[2].role`.
    pub fn under(self, prefix: &str) -> Self {
        ValidationError {
            field: format!("{prefix}.{}", self.field),
            ..self
        }
    }
}

impl From<ValidationError> for ClientError {
    fn from(e: ValidationError) -> Self {
        ClientError::invalid(e.field, e.rule)
    }
}

/// A name people type: trimmed, 1 to `max` characters (counted as characters, not bytes: names
/// are often Cyrillic), and no control characters, which would break a screen or a log line.
pub fn bounded_text(raw: &str, field: &str, max: usize) -> Result<String, ValidationError> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if chars == 0 {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if chars > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A station code such as `oven`: 1 to 32 lowercase ASCII letters, digits, `-` or `_`, so it is
/// safe in URLs and routing keys as it is. The tracker defines a pizzeria's stations with it,
/// and devices binds a station tablet to one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StationCode(String);

impl StationCode {
    pub const RULE: &'static str = "must be 1 to 32 characters of a-z, 0-9, - or _";

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let ok = (1..=32).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(StationCode(raw.to_owned()))
        } else {
            Err(ValidationError::new("station", Self::RULE))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for StationCode {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl std::fmt::Display for StationCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_counted_in_characters() {
        assert_eq!(bounded_text("  Anna ", "name", 64).unwrap(), "Anna");
        assert!(bounded_text(&"Я".repeat(64), "name", 64).is_ok());
        let long = bounded_text(&"Я".repeat(65), "name", 64).unwrap_err();
        assert_eq!(long.rule, "must be at most 64 characters");
    }

    #[test]
    fn blank_text_and_control_characters_are_refused_by_their_own_rule() {
        assert_eq!(
            bounded_text("   ", "customer_name", 64).unwrap_err(),
            ValidationError::new("customer_name", "must not be empty")
        );
        assert_eq!(
            bounded_text("Pep\u{0}peroni", "name", 64).unwrap_err().rule,
            "must not contain control characters"
        );
    }

    #[test]
    fn a_station_code_is_lowercase_ascii_and_at_most_32_bytes() {
        assert_eq!(StationCode::parse("oven-2_b").unwrap().as_str(), "oven-2_b");
        for bad in ["", "Oven", "oven/1", "печь", "a b", &"a".repeat(33)] {
            assert_eq!(
                StationCode::parse(bad).unwrap_err(),
                ValidationError::new("station", StationCode::RULE),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_error_moves_under_its_parent_and_becomes_a_422() {
        let e = ValidationError::new("role", "must be one of: manager").under("roles[2]");
        assert_eq!(e.field, "roles[2].role");
        let client = ClientError::from(e);
        assert_eq!(client.status.as_u16(), 422);
        assert_eq!(client.field.as_deref(), Some("roles[2].role"));
        assert_eq!(client.rule.as_deref(), Some("must be one of: manager"));
    }
}
