//! Synthetic orders: what a cashier sells, and the events the tracker announces as the kitchen
//! makes it.

use chrono::{DateTime, Duration as TimeDelta, Utc};
use contracts::{
    Envelope, Event, OrderAcceptedByTracker, OrderHandedOver, OrderInWork, OrderItem, OrderPacked,
    OrderPlaced, OrderSource, ProductCategory, ProductStageCompleted, TrackedProduct, routing_key,
};
use uuid::Uuid;

/// Deterministic pizzeria ids, so a rerun reuses the pizzerias it created:
/// `10adce00-0000-4000-8000-<index as 12 hex digits>`.
pub fn pizzeria_id(index: u32) -> Uuid {
    Uuid::from_u128(0x10ad_ce00_0000_4000_8000_0000_0000_0000 | u128::from(index))
}

const PEPPERONI: Uuid = Uuid::from_u128(0x10ad_ce00_0000_4000_8000_0001_0000_0001);
const MARGHERITA: Uuid = Uuid::from_u128(0x10ad_ce00_0000_4000_8000_0001_0000_0002);
const COLA: Uuid = Uuid::from_u128(0x10ad_ce00_0000_4000_8000_0001_0000_0003);

/// A typical small order: one or two pizzas and a drink, so most taps are pizza stages and the
/// packing station sees every order.
pub fn order_placed(pizzeria_id: Uuid, number: u32, placed_at: DateTime<Utc>) -> OrderPlaced {
    let pizzas = if number.is_multiple_of(3) { 2 } else { 1 };
    OrderPlaced {
        promised_at: None,
        order_id: Uuid::now_v7(),
        pizzeria_id,
        number,
        customer_name: format!("Guest {number}"),
        show_number_only: false,
        source: if number.is_multiple_of(2) {
            OrderSource::Delivery
        } else {
            OrderSource::Restaurant
        },
        placed_at,
        items: vec![
            OrderItem {
                product_id: if number.is_multiple_of(2) {
                    PEPPERONI
                } else {
                    MARGHERITA
                },
                name: if number.is_multiple_of(2) {
                    "Pepperoni".to_owned()
                } else {
                    "Margherita".to_owned()
                },
                category: ProductCategory::Pizza,
                size: Some("30 cm".to_owned()),
                quantity: pizzas,
                modifiers: Vec::new(),
                allergens: Vec::new(),
            },
            OrderItem {
                product_id: COLA,
                name: "Cola".to_owned(),
                category: ProductCategory::Drink,
                size: Some("0.5 l".to_owned()),
                quantity: 1,
                modifiers: Vec::new(),
                allergens: Vec::new(),
            },
        ],
    }
}

/// The stations of the tracker's default routes, as the tracker's `default_routes` sets them.
fn route_of(category: ProductCategory) -> &'static [(&'static str, u32)] {
    match category {
        ProductCategory::Pizza => &[
            ("dough", 60),
            ("topping", 90),
            ("oven", 300),
            ("packing", 60),
        ],
        ProductCategory::Side => &[("oven", 240), ("packing", 60)],
        ProductCategory::Drink | ProductCategory::Sauce | ProductCategory::Dessert => {
            &[("packing", 30)]
        }
    }
}

/// One event ready to publish: routing key and envelope.
pub struct Outgoing {
    pub routing_key: String,
    pub envelope: Envelope,
}

fn outgoing<E: Event>(event: &E, sequence: i64) -> Result<Outgoing, serde_json::Error> {
    Ok(Outgoing {
        routing_key: routing_key::<E>("tracker"),
        envelope: Envelope::wrap("tracker", event, sequence, None)?,
    })
}

/// Everything the tracker announces for one order from acceptance to hand-over, with
/// `sequence` counting up from 1: accepted, in work, each product's stages, packed, handed
/// over. Times are spread a few seconds apart from `start`.
pub fn tracker_lifecycle(
    pizzeria_id: Uuid,
    number: u32,
    start: DateTime<Utc>,
) -> Result<Vec<Outgoing>, serde_json::Error> {
    let placed = order_placed(pizzeria_id, number, start);
    let order_id = placed.order_id;
    let mut products = Vec::new();
    for (item_index, item) in placed.items.iter().enumerate() {
        for _ in 0..item.quantity {
            products.push(TrackedProduct {
                id: Uuid::now_v7(),
                item_index: u32::try_from(item_index).unwrap_or(u32::MAX),
                route: route_of(item.category)
                    .iter()
                    .map(|(s, _)| (*s).to_owned())
                    .collect(),
            });
        }
    }
    let target_seconds = products
        .iter()
        .map(|p| {
            route_of(placed.items[p.item_index as usize].category)
                .iter()
                .map(|(_, t)| t)
                .sum::<u32>()
        })
        .sum();
    let mut clock = start;
    let mut tick = || {
        clock += TimeDelta::seconds(5);
        clock
    };
    let accepted_at = tick();
    let mut events = vec![outgoing(
        &OrderAcceptedByTracker {
            order_id,
            pizzeria_id,
            number,
            customer_name: placed.customer_name.clone(),
            show_number_only: placed.show_number_only,
            source: placed.source,
            placed_at: placed.placed_at,
            accepted_at,
            target_seconds,
            items: placed.items.clone(),
            products: products.clone(),
        },
        1,
    )?];
    events.push(outgoing(
        &OrderInWork {
            order_id,
            pizzeria_id,
            at: tick(),
        },
        2,
    )?);
    for product in &products {
        let item = &placed.items[product.item_index as usize];
        let route = route_of(item.category);
        let mut started_at = accepted_at;
        for (stage, (station, target)) in route.iter().enumerate() {
            let completed_at = tick();
            let sequence = i64::try_from(events.len()).unwrap_or(i64::MAX) + 1;
            events.push(outgoing(
                &ProductStageCompleted {
                    order_id,
                    pizzeria_id,
                    product_id: product.id,
                    product_name: item.name.clone(),
                    station: (*station).to_owned(),
                    started_at,
                    completed_at,
                    duration_ms: u64::try_from((completed_at - started_at).num_milliseconds())
                        .unwrap_or(0),
                    target_seconds: *target,
                    actor: None,
                    next_station: route.get(stage + 1).map(|(s, _)| (*s).to_owned()),
                },
                sequence,
            )?);
            started_at = completed_at;
        }
    }
    let sequence = i64::try_from(events.len()).unwrap_or(i64::MAX) + 1;
    events.push(outgoing(
        &OrderPacked {
            order_id,
            pizzeria_id,
            at: tick(),
        },
        sequence,
    )?);
    events.push(outgoing(
        &OrderHandedOver {
            order_id,
            pizzeria_id,
            at: tick(),
            actor: None,
        },
        sequence + 1,
    )?);
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pizzeria_ids_are_stable_and_distinct() {
        assert_eq!(
            pizzeria_id(42).to_string(),
            "10adce00-0000-4000-8000-00000000002a"
        );
        assert_ne!(pizzeria_id(1), pizzeria_id(2));
        assert_eq!(pizzeria_id(7), pizzeria_id(7));
    }

    #[test]
    fn a_lifecycle_counts_up_and_ends_handed_over() {
        let events = tracker_lifecycle(pizzeria_id(1), 1, Utc::now()).unwrap_or_default();
        // One pizza (4 stages) and one drink (1 stage), plus accepted, in work, packed,
        // handed over.
        assert_eq!(events.len(), 9);
        let sequences: Vec<i64> = events.iter().map(|e| e.envelope.sequence).collect();
        assert_eq!(sequences, (1..=9).collect::<Vec<_>>());
        assert_eq!(events[0].routing_key, "tracker.order.accepted");
        assert_eq!(events[8].routing_key, "tracker.order.handed_over");
        let subject = &events[0].envelope.subject;
        assert!(events.iter().all(|e| &e.envelope.subject == subject));
        let accepted: OrderAcceptedByTracker = events[0]
            .envelope
            .decode()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(accepted.products.len(), 2);
        assert_eq!(accepted.target_seconds, 60 + 90 + 300 + 60 + 30);
        let last_pizza_stage: ProductStageCompleted = events[5]
            .envelope
            .decode()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(last_pizza_stage.station, "packing");
        assert_eq!(last_pizza_stage.next_station, None);
    }

    #[test]
    fn every_third_order_has_two_pizzas() {
        let events = tracker_lifecycle(pizzeria_id(1), 3, Utc::now()).unwrap_or_default();
        assert_eq!(events.len(), 13);
        let placed = order_placed(pizzeria_id(1), 3, Utc::now());
        assert_eq!(placed.items[0].quantity, 2);
    }
}
