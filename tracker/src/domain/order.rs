//! An order as the tracker accepts it: `OrderPlaced` after every field passed its rule.

use chrono::{DateTime, Utc};
use contracts::{OrderItem, OrderPlaced, OrderSource, ProductCategory};
use uuid::Uuid;

use super::{CustomerName, ProductName, Quantity, ValidationError};

/// Bounds the work one order can put on a kitchen (and the size of one transaction).
const MAX_PRODUCTS: u32 = 200;
const MAX_MODIFIERS: usize = 20;
/// More than the EU's fourteen, for codes a source adds beyond them.
const MAX_ALLERGENS: usize = 20;
const MAX_NUMBER: u32 = 999_999;
/// A promised time may lie this little before the order was placed (clocks differ).
const PROMISE_GRACE: chrono::Duration = chrono::Duration::minutes(5);
/// A pre-order is for this week, not for next year: further ahead is a typo.
const PROMISE_HORIZON: chrono::Duration = chrono::Duration::days(7);

#[derive(Debug, Clone)]
pub struct NewItem {
    pub product_id: Uuid,
    pub name: ProductName,
    pub category: ProductCategory,
    pub size: Option<String>,
    pub quantity: Quantity,
    pub modifiers: Vec<String>,
    /// Allergen codes, each checked by [`allergen_code`], without repeats, in the order sent.
    pub allergens: Vec<String>,
}

/// An allergen code: lowercase ASCII letters and `_`, 1 to 32 of them (`nuts`, `sulphites`).
/// Codes outside the EU's fourteen are kept, not refused: an order must reach the kitchen, and
/// the tablet shows an unknown code as it is, still highlighted.
fn allergen_code(raw: &str) -> Option<String> {
    let code = raw.trim();
    (!code.is_empty()
        && code.len() <= 32
        && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    .then(|| code.to_owned())
}

impl NewItem {
    /// The item as it goes back on the bus, with the cleaned-up text.
    pub fn to_contract(&self) -> OrderItem {
        OrderItem {
            product_id: self.product_id,
            name: self.name.as_str().to_owned(),
            category: self.category,
            size: self.size.clone(),
            quantity: self.quantity.get(),
            modifiers: self.modifiers.clone(),
            allergens: self.allergens.clone(),
        }
    }
}

impl TryFrom<OrderItem> for NewItem {
    type Error = ValidationError;

    fn try_from(item: OrderItem) -> Result<Self, Self::Error> {
        let size = match item.size.as_deref().map(str::trim) {
            None => None,
            Some(s) if !s.is_empty() && s.chars().count() <= 32 => Some(s.to_owned()),
            Some(_) => return Err(ValidationError::new("size", "must be 1 to 32 characters")),
        };
        if item.modifiers.len() > MAX_MODIFIERS {
            return Err(ValidationError::new(
                "modifiers",
                format!("must have at most {MAX_MODIFIERS} entries"),
            ));
        }
        let mut modifiers = Vec::with_capacity(item.modifiers.len());
        for (i, m) in item.modifiers.iter().enumerate() {
            let m = m.trim();
            if m.is_empty() || m.chars().count() > 64 {
                return Err(ValidationError::new(
                    format!("modifiers[{i}]"),
                    "must be 1 to 64 characters",
                ));
            }
            modifiers.push(m.to_owned());
        }
        if item.allergens.len() > MAX_ALLERGENS {
            return Err(ValidationError::new(
                "allergens",
                format!("must have at most {MAX_ALLERGENS} entries"),
            ));
        }
        let mut allergens: Vec<String> = Vec::with_capacity(item.allergens.len());
        for (i, a) in item.allergens.iter().enumerate() {
            let code = allergen_code(a).ok_or_else(|| {
                ValidationError::new(
                    format!("allergens[{i}]"),
                    "must be an allergen code: 1 to 32 lowercase letters or _, such as nuts",
                )
            })?;
            if !allergens.contains(&code) {
                allergens.push(code);
            }
        }
        Ok(NewItem {
            product_id: item.product_id,
            name: ProductName::parse(&item.name)?,
            category: item.category,
            size,
            quantity: Quantity::parse(item.quantity)?,
            modifiers,
            allergens,
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: Uuid,
    pub pizzeria_id: Uuid,
    pub number: u32,
    pub customer_name: CustomerName,
    pub show_number_only: bool,
    pub source: OrderSource,
    pub placed_at: DateTime<Utc>,
    pub items: Vec<NewItem>,
    /// A pre-order's promised time (see [`promised_at`]).
    pub promised_at: Option<DateTime<Utc>>,
}

/// The promised time of a pre-order, checked against when the order was placed rather than
/// against the clock: an order the bus delivers late (after an outage) must still be accepted
/// and simply fire at once, and replaying an event must give the same answer.
fn promised_at(
    placed_at: DateTime<Utc>,
    promised: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, ValidationError> {
    // Checked: a date at the edge of the calendar must be refused, not overflow.
    let earliest = placed_at.checked_sub_signed(PROMISE_GRACE);
    let latest = placed_at.checked_add_signed(PROMISE_HORIZON);
    match promised {
        Some(at) if earliest.is_none_or(|earliest| at < earliest) => Err(ValidationError::new(
            "promised_at",
            "must not be before placed_at (5 minutes of grace)",
        )),
        Some(at) if latest.is_none_or(|latest| at > latest) => Err(ValidationError::new(
            "promised_at",
            "must be at most 7 days after placed_at",
        )),
        promised => Ok(promised),
    }
}

impl NewOrder {
    pub fn product_count(&self) -> u32 {
        self.items.iter().map(|i| i.quantity.get()).sum()
    }
}

impl TryFrom<OrderPlaced> for NewOrder {
    type Error = ValidationError;

    fn try_from(placed: OrderPlaced) -> Result<Self, Self::Error> {
        if !(1..=MAX_NUMBER).contains(&placed.number) {
            return Err(ValidationError::new(
                "number",
                format!("must be between 1 and {MAX_NUMBER}"),
            ));
        }
        let customer_name = CustomerName::parse(&placed.customer_name)?;
        if placed.items.is_empty() {
            return Err(ValidationError::new("items", "must not be empty"));
        }
        let items = placed
            .items
            .into_iter()
            .enumerate()
            .map(|(i, item)| NewItem::try_from(item).map_err(|e| e.under(&format!("items[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        let order = NewOrder {
            id: placed.order_id,
            pizzeria_id: placed.pizzeria_id,
            number: placed.number,
            customer_name,
            show_number_only: placed.show_number_only,
            source: placed.source,
            placed_at: placed.placed_at,
            items,
            promised_at: promised_at(placed.placed_at, placed.promised_at)?,
        };
        if order.product_count() > MAX_PRODUCTS {
            return Err(ValidationError::new(
                "items",
                format!("must add up to at most {MAX_PRODUCTS} products"),
            ));
        }
        Ok(order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed() -> OrderPlaced {
        OrderPlaced {
            promised_at: None,
            order_id: Uuid::now_v7(),
            pizzeria_id: Uuid::now_v7(),
            number: 17,
            customer_name: " Anna ".into(),
            show_number_only: false,
            source: OrderSource::Restaurant,
            placed_at: Utc::now(),
            items: vec![OrderItem {
                product_id: Uuid::now_v7(),
                name: "Pepperoni".into(),
                category: ProductCategory::Pizza,
                size: Some("30 cm".into()),
                quantity: 3,
                modifiers: vec![" no onion ".into()],
                allergens: vec!["nuts".into(), "nuts".into(), " milk".into()],
            }],
        }
    }

    #[test]
    fn a_promised_time_is_at_most_a_week_ahead_and_not_in_the_past() {
        let mut order = placed();
        let at = order.placed_at;
        for (promised, ok) in [
            (at + chrono::Duration::hours(3), true),
            (at - chrono::Duration::minutes(4), true),
            (at + chrono::Duration::days(7), true),
            (at - chrono::Duration::minutes(6), false),
            (at + chrono::Duration::days(8), false),
        ] {
            order.promised_at = Some(promised);
            match NewOrder::try_from(order.clone()) {
                Ok(accepted) => {
                    assert!(ok, "{promised} was accepted");
                    assert_eq!(accepted.promised_at, Some(promised));
                }
                Err(e) => {
                    assert!(!ok, "{promised} was refused: {e}");
                    assert_eq!(e.field, "promised_at");
                }
            }
        } // At the edge of the calendar: refused, not an overflow.
        order.placed_at = DateTime::<Utc>::MAX_UTC;
        order.promised_at = Some(DateTime::<Utc>::MAX_UTC);
        let refused = NewOrder::try_from(order).map(drop).unwrap_err();
        assert_eq!(refused.field, "promised_at");
    }

    #[test]
    fn a_valid_order_is_cleaned_up() {
        let order = NewOrder::try_from(placed()).unwrap();
        assert_eq!(order.customer_name.as_str(), "Anna");
        assert_eq!(order.items[0].modifiers, vec!["no onion".to_owned()]);
        assert_eq!(order.items[0].allergens, ["nuts", "milk"]);
        assert_eq!(order.product_count(), 3);
    }

    #[test]
    fn an_allergen_must_be_a_code() {
        for bad in ["", "Nuts", "орехи", "nut allergy", &"x".repeat(33)] {
            let mut p = placed();
            p.items[0].allergens = vec!["milk".into(), bad.into()];
            assert_eq!(
                NewOrder::try_from(p).unwrap_err().field,
                "items[0].allergens[1]",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn no_items_is_rejected() {
        let mut p = placed();
        p.items.clear();
        assert_eq!(NewOrder::try_from(p).unwrap_err().field, "items");
    }

    #[test]
    fn quantity_zero_names_the_item() {
        let mut p = placed();
        p.items[0].quantity = 0;
        assert_eq!(
            NewOrder::try_from(p).unwrap_err().field,
            "items[0].quantity"
        );
    }

    #[test]
    fn an_empty_product_name_names_the_item() {
        let mut p = placed();
        p.items.push(OrderItem {
            name: "  ".into(),
            ..p.items[0].clone()
        });
        assert_eq!(NewOrder::try_from(p).unwrap_err().field, "items[1].name");
    }

    #[test]
    fn too_many_products_are_rejected() {
        let mut p = placed();
        p.items[0].quantity = 50;
        p.items = vec![p.items[0].clone(); 5];
        assert_eq!(NewOrder::try_from(p).unwrap_err().field, "items");
    }

    #[test]
    fn a_long_customer_name_is_rejected() {
        let mut p = placed();
        p.customer_name = "x".repeat(65);
        assert_eq!(NewOrder::try_from(p).unwrap_err().field, "customer_name");
    }
}
