//! Small parsed values. Each has a private field, so holding one means it passed its rule.

use uuid::Uuid;

use service_kit::validation::bounded_text;

use super::ValidationError;

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, ValidationError> {
                bounded_text(raw, $field, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_newtype!(
    /// The name on the TV board: 1 to 64 characters after trimming.
    CustomerName,
    "customer_name",
    64
);
text_newtype!(
    /// A menu product's name as the kitchen sees it.
    ProductName,
    "name",
    128
);
text_newtype!(
    /// A pizzeria's name.
    PizzeriaName,
    "name",
    128
);
text_newtype!(
    /// A station's human name, such as `Oven`.
    StationName,
    "name",
    64
);
text_newtype!(
    /// Why an order was cancelled or a product remade.
    Reason,
    "reason",
    500
);
/// Whoever tapped, cancelled or handed over: the name the screens show (a staff member, a
/// tablet, or an order source), and, when a person or device was signed in, who exactly: the
/// staff member behind it and the principal whose token made the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    name: String,
    user_id: Option<Uuid>,
    principal: Option<Principal>,
}

/// The authenticated caller behind an action, as stored beside the name: `user:<id>` or
/// `device:<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    User(Uuid),
    Device(Uuid),
}

impl Principal {
    pub fn as_text(&self) -> String {
        match self {
            Principal::User(id) => format!("user:{id}"),
            Principal::Device(id) => format!("device:{id}"),
        }
    }
}

impl Actor {
    /// A name alone: what an order source says did it.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Ok(Actor {
            name: bounded_text(raw, "actor", 128)?,
            user_id: None,
            principal: None,
        })
    }

    /// A signed-in caller: `name` is what the screens show, `user_id` the staff member who did
    /// it (the signed-in user, or the person checked in at a tablet; none for a tablet alone).
    pub fn signed_in(
        name: &str,
        user_id: Option<Uuid>,
        principal: Principal,
    ) -> Result<Self, ValidationError> {
        Ok(Actor {
            user_id,
            principal: Some(principal),
            ..Actor::parse(name)?
        })
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    pub fn user_id(&self) -> Option<Uuid> {
        self.user_id
    }

    pub fn principal(&self) -> Option<String> {
        self.principal.as_ref().map(Principal::as_text)
    }
}

/// How many units of one item: 1 to 50. Each unit becomes a product of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: u32 = 50;

    pub fn parse(raw: u32) -> Result<Self, ValidationError> {
        if (1..=Self::MAX).contains(&raw) {
            Ok(Quantity(raw))
        } else {
            Err(ValidationError::new(
                "quantity",
                format!("must be between 1 and {}", Self::MAX),
            ))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_name_is_trimmed() {
        assert_eq!(CustomerName::parse("  Anna ").unwrap().as_str(), "Anna");
    }

    #[test]
    fn blank_customer_name_is_rejected() {
        let err = CustomerName::parse("   ").unwrap_err();
        assert_eq!(err.field, "customer_name");
    }

    #[test]
    fn customer_name_length_counts_characters_not_bytes() {
        assert!(CustomerName::parse(&"Я".repeat(64)).is_ok());
        assert!(CustomerName::parse(&"Я".repeat(65)).is_err());
    }

    #[test]
    fn control_characters_are_rejected() {
        assert!(ProductName::parse("Pep\u{0}peroni").is_err());
    }

    #[test]
    fn quantity_bounds() {
        assert!(Quantity::parse(0).is_err());
        assert_eq!(Quantity::parse(1).unwrap().get(), 1);
        assert_eq!(Quantity::parse(50).unwrap().get(), 50);
        assert!(Quantity::parse(51).is_err());
    }
}
