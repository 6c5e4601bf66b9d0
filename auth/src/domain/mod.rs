//! The auth service's domain: parsed, valid values only. A handler turns its DTO into these
//! with `parse`, and a `ValidationError` names the field and the rule it broke.

pub use access::Language;
use access::Role;
pub use service_kit::validation::ValidationError;
use service_kit::validation::bounded_text;
use uuid::Uuid;

/// What a user signs in with: 1 to 64 characters of a-z, 0-9, `.`, `_`, `-` and `@`, compared
/// in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login(String);

impl Login {
    pub const RULE: &'static str = "must be 1 to 64 characters of a-z, 0-9, '.', '_', '-' or '@'";

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let login = raw.trim().to_lowercase();
        let valid = !login.is_empty()
            && login.chars().count() <= 64
            && login
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_@".contains(c));
        if valid {
            Ok(Login(login))
        } else {
            Err(ValidationError::new("login", Self::RULE))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How colleagues and screens name a user: 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        bounded_text(raw, "display_name", 100).map(DisplayName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: 10 to 128 characters. Long passphrases are welcome; the upper bound keeps
/// one request from costing much more hashing than another.
pub struct Password(String);

impl Password {
    pub const MIN: usize = 10;
    pub const MAX: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let length = raw.chars().count();
        if length < Self::MIN {
            return Err(ValidationError::new(
                "password",
                format!("must be at least {} characters", Self::MIN),
            ));
        }
        if length > Self::MAX {
            return Err(ValidationError::new(
                "password",
                format!("must be at most {} characters", Self::MAX),
            ));
        }
        Ok(Password(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// A role where it holds: a chain admin everywhere, any other role in one pizzeria.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RoleGrant {
    pub role: Role,
    pub pizzeria_id: Option<Uuid>,
}

impl RoleGrant {
    pub fn parse(role: &str, pizzeria_id: Option<Uuid>) -> Result<Self, ValidationError> {
        let role = Role::parse(role).ok_or_else(|| {
            let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            ValidationError::new("role", format!("must be one of {}", names.join(", ")))
        })?;
        match (role.is_chain_wide(), pizzeria_id) {
            (true, Some(_)) => Err(ValidationError::new(
                "pizzeria_id",
                format!("must be left out for {role}, which holds in every pizzeria"),
            )),
            (false, None) => Err(ValidationError::new(
                "pizzeria_id",
                format!("is required for {role}"),
            )),
            _ => Ok(RoleGrant { role, pizzeria_id }),
        }
    }

    pub fn to_contract(self) -> contracts::StaffRoleGrant {
        contracts::StaffRoleGrant {
            role: self.role.as_str().to_owned(),
            pizzeria_id: self.pizzeria_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_lower_case_and_plain() {
        assert_eq!(Login::parse(" Anna.K ").map(|l| l.0), Ok("anna.k".into()));
        assert!(Login::parse("manager@pizzeria-1").is_ok());
        for bad in ["", "   ", "anna k", "anna;drop", &"a".repeat(65), "анна"] {
            assert_eq!(
                Login::parse(bad).map_err(|e| e.field),
                Err("login".into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn display_names_are_bounded() {
        assert!(DisplayName::parse("Анна Петрова").is_ok());
        assert!(DisplayName::parse(" ").is_err());
        assert!(DisplayName::parse("a\u{0}b").is_err());
        assert!(DisplayName::parse(&"x".repeat(101)).is_err());
    }

    #[test]
    fn passwords_are_between_10_and_128_characters() {
        assert!(Password::parse("123456789").is_err());
        assert!(Password::parse("1234567890").is_ok());
        assert!(Password::parse(&"ж".repeat(128)).is_ok());
        let err = Password::parse(&"x".repeat(129)).unwrap_err();
        assert_eq!(err.field, "password");
        assert!(err.rule.contains("at most"));
        assert_eq!(
            format!("{:?}", Password::parse("secret-secret").expect("valid")),
            "Password(..)"
        );
    }

    #[test]
    fn a_language_is_one_the_screens_speak() {
        assert_eq!(Language::parse("RU").map(Language::as_str), Ok("ru"));
        let err = Language::parse("klingon").unwrap_err();
        assert_eq!(err.field, "language");
        assert!(err.rule.contains("en, ru"));
    }

    #[test]
    fn grants_hold_in_a_pizzeria_except_chain_admin() {
        let p = Uuid::new_v4();
        assert!(RoleGrant::parse("kitchen_staff", Some(p)).is_ok());
        assert!(RoleGrant::parse("chain_admin", None).is_ok());
        assert!(RoleGrant::parse("on_call", None).is_ok());
        assert_eq!(
            RoleGrant::parse("operations_viewer", Some(p))
                .unwrap_err()
                .field,
            "pizzeria_id"
        );
        assert_eq!(
            RoleGrant::parse("kitchen_staff", None).unwrap_err().field,
            "pizzeria_id"
        );
        assert_eq!(
            RoleGrant::parse("chain_admin", Some(p)).unwrap_err().field,
            "pizzeria_id"
        );
        let err = RoleGrant::parse("owner", Some(p)).unwrap_err();
        assert_eq!(err.field, "role");
        assert!(err.rule.contains("kitchen_staff"));
        assert_eq!(err.under("roles[1]").field, "roles[1].role");
    }
}
