//! The devices service's domain: parsed, valid values only. A handler turns its DTO into these
//! with `parse`, and a `ValidationError` names the field and the rule it broke.

use access::DeviceKind;
pub use access::Language;
use service_kit::validation::bounded_text;
pub use service_kit::validation::{StationCode, ValidationError};

/// How a TV board shows the customers whose orders are preparing or ready: their name, the
/// order number only, or a picture with the number (the privacy modes of Dodo's board).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardMode {
    Name,
    Number,
    Icon,
}

impl BoardMode {
    pub const RULE: &'static str = "must be one of: name, number, icon";

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw.trim() {
            "name" => Ok(BoardMode::Name),
            "number" => Ok(BoardMode::Number),
            "icon" => Ok(BoardMode::Icon),
            _ => Err(ValidationError::new("board_mode", Self::RULE)),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BoardMode::Name => "name",
            BoardMode::Number => "number",
            BoardMode::Icon => "icon",
        }
    }
}

/// The letters of a user code: no vowels (no words), no look-alikes (RFC 8628 §6.1).
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
pub const USER_CODE_LENGTH: usize = 8;

/// The code a staff member types: 8 letters of [`USER_CODE_ALPHABET`], shown as `XXXX-XXXX`.
/// Case, dashes and spaces do not matter when it is typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCode(String);

impl UserCode {
    pub const RULE: &'static str = "must be 8 letters of BCDFGHJKLMNPQRSTVWXZ, such as BCDF-GHJK (case, dashes and spaces do not matter)";

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid = || ValidationError::new("user_code", Self::RULE);
        if raw.len() > 64 {
            return Err(invalid());
        }
        let code: String = raw
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let valid =
            code.len() == USER_CODE_LENGTH && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
        if valid {
            Ok(UserCode(code))
        } else {
            Err(invalid())
        }
    }

    /// A code from 8 letters drawn by the caller (see `secrets::new_user_code`).
    pub(crate) fn from_letters(letters: [u8; USER_CODE_LENGTH]) -> Self {
        UserCode(letters.iter().map(|&b| char::from(b)).collect())
    }

    /// The stored form: `BCDFGHJK`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form people read: `BCDF-GHJK`.
    pub fn display(&self) -> String {
        let (a, b) = self.0.split_at(USER_CODE_LENGTH / 2);
        format!("{a}-{b}")
    }
}

/// The device code the device polls with: 256 random bits, base64url (43 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCode(String);

impl DeviceCode {
    pub const LENGTH: usize = 43;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let valid = raw.len() == Self::LENGTH
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(DeviceCode(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                "device_code",
                "must be the 43-character device_code this service issued",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What people call a device: 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceName(String);

impl DeviceName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        bounded_text(raw, "name", 100).map(DeviceName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A device kind with its station: a station tablet names one, every other kind none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub kind: DeviceKind,
    pub station: Option<StationCode>,
}

impl Binding {
    pub fn parse(kind: &str, station: Option<&str>) -> Result<Self, ValidationError> {
        let kind = DeviceKind::parse(kind).ok_or_else(|| {
            let names: Vec<&str> = DeviceKind::ALL.iter().map(|k| k.as_str()).collect();
            ValidationError::new("kind", format!("must be one of {}", names.join(", ")))
        })?;
        let station = station.map(StationCode::parse).transpose()?;
        Self::with_station(kind, station)
    }

    /// The kind with a (new) station, checked against each other.
    pub fn with_station(
        kind: DeviceKind,
        station: Option<StationCode>,
    ) -> Result<Self, ValidationError> {
        match (kind.has_station(), &station) {
            (true, None) => Err(ValidationError::new(
                "station",
                format!("is required for {kind}"),
            )),
            (false, Some(_)) => Err(ValidationError::new(
                "station",
                format!("must be left out for {kind}, which works at no single station"),
            )),
            _ => Ok(Binding { kind, station }),
        }
    }

    pub fn station_str(&self) -> Option<&str> {
        self.station.as_ref().map(StationCode::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_normalised() {
        for typed in [
            "BCDF-GHJK",
            "bcdf-ghjk",
            " bcdf ghjk ",
            "BcDfGhJk",
            "B-C-D-F-G-H-J-K",
        ] {
            let code = UserCode::parse(typed).unwrap_or_else(|e| panic!("{typed}: {e}"));
            assert_eq!(code.as_str(), "BCDFGHJK");
            assert_eq!(code.display(), "BCDF-GHJK");
        }
    }

    #[test]
    fn bad_user_codes_name_the_field() {
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "BCDF_GHJK",
            "ВCDF-GHJK",
            &"B".repeat(100),
        ] {
            let err = UserCode::parse(bad).unwrap_err();
            assert_eq!(err.field, "user_code", "{bad}");
        }
    }

    #[test]
    fn device_codes_are_43_url_safe_characters() {
        assert!(DeviceCode::parse(&"a".repeat(43)).is_ok());
        assert!(DeviceCode::parse("abc-_DEF0123456789abcdefghijklmnopqrstuvwxyz").is_err());
        for bad in [
            "",
            "short",
            &"a".repeat(44),
            &format!("{}=", "a".repeat(42)),
        ] {
            assert_eq!(DeviceCode::parse(bad).unwrap_err().field, "device_code");
        }
    }

    #[test]
    fn tablets_need_a_station_and_boards_none() {
        let tablet = Binding::parse("kitchen_station", Some("oven")).expect("valid");
        assert_eq!(tablet.kind, DeviceKind::KitchenStation);
        assert_eq!(tablet.station_str(), Some("oven"));
        assert!(Binding::parse("order_board", None).is_ok());
        assert_eq!(
            Binding::parse("kitchen_station", None).unwrap_err().field,
            "station"
        );
        assert_eq!(
            Binding::parse("order_board", Some("oven"))
                .unwrap_err()
                .field,
            "station"
        );
        assert_eq!(
            Binding::parse("kitchen_station", Some("Oven!"))
                .unwrap_err()
                .field,
            "station"
        );
        let err = Binding::parse("toaster", None).unwrap_err();
        assert_eq!(err.field, "kind");
        assert!(err.rule.contains("order_board"));
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(
            DeviceName::parse("  Oven tablet ").expect("valid").as_str(),
            "Oven tablet"
        );
        assert!(DeviceName::parse(" ").is_err());
        assert!(DeviceName::parse("a\nb").is_err());
        assert!(DeviceName::parse(&"x".repeat(101)).is_err());
    }
}
